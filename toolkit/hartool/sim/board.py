"""A classifying board for the virtual device: its model (injected as a callable, so this room never imports the
exporter) turns the samples the board takes into windows and labels, sent as prediction messages.

The callable is what a classifying sketch runs per sample: one sample in (the bundle's channels and units),
``(window, label, probs)`` out when a window completes, else None. `hartool simulate --classify` passes the
exported C library built for the host (bench/mcu.py ``HostLibrary.stream``): the board's own arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hartool.wire.batch import DevicePrediction
from hartool.wire.prediction import encode_prediction_frame, encode_prediction_line, prob_counts

__all__ = ["BoardModel", "ClassifyingBoard"]

BoardModel = Callable[[np.ndarray], tuple[int, int, Sequence[float]] | None]


class ClassifyingBoard:
    """Feeds samples to ``model`` and encodes each completed window as a prediction message.

    ``send_samples``: the board also streams its raw samples (``--classify both``). Counters: ``windows``
    (classified), and what the device did with their messages (the device counts sent / lost ones).
    """

    def __init__(self, model: BoardModel, send_samples: bool = False) -> None:
        self.model = model
        self.send_samples = send_samples
        self.windows = 0

    def push(self, sample: np.ndarray, t_ms: int | None, protocol: str) -> bytes | None:
        """One sample taken at device time ``t_ms``; the prediction message when it completes a window."""
        out = self.model(np.asarray(sample, dtype=np.float32))
        if out is None:
            return None
        window, label, probs = out
        self.windows += 1
        pred = DevicePrediction(int(window) & 0xFFFFFFFF, int(label), prob_counts(probs), t_ms)
        return encode_prediction_frame(pred) if protocol == "binary" else encode_prediction_line(pred)
