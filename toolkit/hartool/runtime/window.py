"""Sliding-window assembly over a preallocated buffer: samples in, (index, window) out every `stride` samples."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class WindowAssembler:
    """Collects samples and yields each complete window once, without allocating per sample.

    The buffer keeps the last ``window - stride`` samples plus room for incoming chunks; it is
    compacted in place (one memmove) instead of growing, so memory stays flat on a long stream.
    """

    def __init__(self, window: int, stride: int, channels: int, capacity: int | None = None) -> None:
        if window <= 0 or stride <= 0:
            raise ValueError("window and stride must be positive")
        self.window, self.stride, self.channels = window, stride, channels
        self._cap = max(capacity or 0, 4 * window)
        self._buf = np.zeros((self._cap, channels), dtype=np.float32)
        self._out = np.zeros((window, channels), dtype=np.float32)
        self._fill = 0          # samples currently held in _buf
        self.samples = 0        # samples pushed since start
        self.windows = 0        # windows emitted since start
        self._next_end = window  # total sample count at which the next window completes
        self._covered = 0        # samples up to here are inside at least one emitted window

    def push(self, values: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """Add samples (n, channels); yield (window_index, end_sample, window) for each window completed.

        The yielded array is reused: consume (predict on) it before advancing the iterator.
        """
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.channels:
            raise ValueError(f"expected samples of {self.channels} channels, got shape {values.shape}")
        pos = 0
        while pos < len(values):
            room = self._cap - self._fill
            if room == 0:
                self._compact()
                room = self._cap - self._fill
            take = min(room, len(values) - pos)
            self._buf[self._fill : self._fill + take] = values[pos : pos + take]
            self._fill += take
            self.samples += take
            pos += take
            while self.samples >= self._next_end:
                # Position of the window's last sample inside the buffer.
                end = self._fill - (self.samples - self._next_end)
                self._out[:] = self._buf[end - self.window : end]
                index = self.windows
                self.windows += 1
                self._covered = self._next_end
                self._next_end += self.stride
                yield index, self._covered, self._out

    def _compact(self) -> None:
        keep = min(self._fill, self.window)
        self._buf[:keep] = self._buf[self._fill - keep : self._fill]
        self._fill = keep

    @property
    def pending(self) -> int:
        """Samples received but not (yet) inside any emitted window."""
        return self.samples - self._covered

    def reset(self) -> int:
        """Start a fresh window (after a reconnect or gap); returns the samples that will never be windowed."""
        lost = self.pending
        self._fill = 0
        self._covered = self.samples
        self._next_end = self.samples + self.window
        return lost
