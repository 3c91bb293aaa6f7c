"""hartool: train, quantize, benchmark and stream Human Activity Recognition models on the edge."""

__version__ = "0.1.0"
