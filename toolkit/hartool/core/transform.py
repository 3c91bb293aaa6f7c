"""A bundle's input transform: calibration -> preprocessing -> windows, configured from the manifest.

The one home of what turns samples in model units into model input, so the live stream, enrollment (the
wearer's windows), the enrollment reference windows and evaluation all see windows alike:

* calibration (``orientation.mode == "free"``, :mod:`hartool.core.orientation`): a stream turns each window
  causally (:class:`StreamTransform`); a whole recording or dataset is turned by the rotation its stream
  would lock onto (:meth:`InputTransform.recording`, :meth:`InputTransform.dataset`), as training does;
* preprocessing (:func:`hartool.core.preprocess.preprocess`, the manifest's ``preprocessing``);
* windowing: the manifest's ``window``/``stride`` (:meth:`InputTransform.windows` cuts one continuous
  recording, at another stride if asked).

numpy only: this runs on the edge device.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .orientation import (
    OrientationCalibrator,
    calibrate_recording,
    calibrated_dataset,
    calibrator_for,
    orientation_mode,
)
from .preprocess import preprocess

__all__ = ["InputTransform", "StreamTransform"]


class InputTransform:
    """The manifest's calibration, preprocessing and windowing (see the module docstring)."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.manifest = manifest
        self.window = int(manifest["window"])
        self.stride = int(manifest["stride"])
        self.sample_rate_hz = float(manifest["sample_rate_hz"])
        self.spec = manifest["preprocessing"]
        self.calibrated = orientation_mode(manifest) == "free"

    def stream(self, input_shape: tuple[int, ...] | None = None) -> StreamTransform:
        """A fresh per-stream transform (its own causal calibration); ``input_shape`` is the model input's
        shape without the batch axis (default: one window)."""
        return StreamTransform(self, calibrator_for(self.manifest), input_shape)

    def preprocess(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Raw windows (..., window, C) in model units (calibrated if the bundle is) -> model input."""
        return preprocess(x, self.spec, out=out)

    def recording(self, values: np.ndarray) -> np.ndarray:
        """One continuous recording (T, C), turned as its stream would lock onto (unchanged for fixed bundles)."""
        if not self.calibrated:
            return values
        return calibrate_recording(values, self.sample_rate_hz, self.window, self.stride)

    def stream_windows(self, windows: np.ndarray) -> np.ndarray:
        """Raw windows (N, window, C) of one stream, in order and a stride apart, turned as the stream's causal
        calibration turns them (the same windows, for fixed bundles): what `stream` feeds the model, offline."""
        calibrator = calibrator_for(self.manifest)
        if calibrator is None:
            return windows
        return np.stack([calibrator.push(w) for w in windows]) if len(windows) else windows

    def dataset(self, ds: Any) -> Any:
        """A dataset (``hartool.data.Dataset``) with each recording calibrated as its stream would be."""
        return calibrated_dataset(ds, self.window, self.stride) if self.calibrated else ds

    def windows(self, samples: np.ndarray, stride: int | None = None) -> np.ndarray:
        """Model input of every window of one continuous recording (T, C), ``stride`` apart (default the
        manifest's): calibrated, cut and preprocessed."""
        stride = stride or self.stride
        if len(samples) < self.window:
            return np.empty((0, *self.input_shape), np.float32)
        turned = self.recording(np.asarray(samples, dtype=np.float32))
        view = np.lib.stride_tricks.sliding_window_view(turned, self.window, axis=0)[::stride]
        return self.preprocess(np.ascontiguousarray(view.transpose(0, 2, 1)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The model input's shape without the batch axis, as the manifest records it."""
        shape = (self.manifest.get("input") or {}).get("shape")
        return tuple(int(v) for v in shape[1:]) if shape else (self.window, len(self.manifest["channels"]))


class StreamTransform:
    """One stream's windows -> model input, in window order: causal calibration, then preprocessing.

    :meth:`gap` where consecutive windows do not follow each other; :meth:`pop_messages` hands over the
    calibration's status lines.
    """

    def __init__(self, transform: InputTransform, calibrator: OrientationCalibrator | None,
                 input_shape: tuple[int, ...] | None) -> None:
        self.transform = transform
        self.calibrator = calibrator
        # Said once at the start: otherwise a stream that begins sitting shows only "(uncertain)" and no reason.
        self._messages = [] if calibrator is None else [
            "orientation: not calibrated yet: labels are marked uncertain until the device has seen the wearer "
            "walk a few steps (or sit, stand and lie)"]
        shape = input_shape or (transform.window, len(transform.manifest["channels"]))
        # One preallocated input (with its batch axis), filled in place when it has the window's own shape.
        self._x = np.zeros((1, *shape), dtype=np.float32)
        self._direct = self._x.shape[1:] == (transform.window, len(transform.manifest["channels"]))

    def __call__(self, window: np.ndarray) -> np.ndarray:
        """Model input (1, ...) of the next raw window (window, C); the array is reused by the next call."""
        if self.calibrator is not None:
            window = self.calibrator.push(window)
        if self._direct:
            self.transform.preprocess(window, out=self._x[0])
            return self._x
        return np.asarray(self.transform.preprocess(window), dtype=np.float32).reshape(self._x.shape)

    @property
    def calibrated(self) -> bool:
        """Whether the last window was turned by a trusted upright reference (always, for a fixed bundle)."""
        return self.calibrator is None or self.calibrator.calibrated

    def gap(self) -> None:
        if self.calibrator is not None:
            self.calibrator.gap()

    def pop_messages(self) -> list[str]:
        out, self._messages = self._messages, []
        return out + (self.calibrator.pop_messages() if self.calibrator is not None else [])
