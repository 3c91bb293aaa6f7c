"""Benchmarking: size, load time, latency percentiles, RSS and accuracy, machine info and comparison."""
