"""Predictions made on the board (a classifying sketch's prediction messages) as :class:`WindowPrediction`
objects labelled with the bundle's labels, so the sinks show and publish them exactly like the host's own windows.

The session (runtime/session.py) hands every :class:`hartool.wire.batch.DevicePrediction` the reader queued to
:meth:`DevicePredictions.convert`; the sinks only see ``source == "device"`` on the result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from ..wire.batch import DevicePrediction
from .classifier import WindowPrediction

__all__ = ["DevicePredictions"]


class DevicePredictions:
    """Labels a board's predictions with ``labels``; counts them (``accepted``, ``refused``).

    A prediction over a different number of classes than the bundle has is refused and counted: its class
    indices mean nothing in these labels (the board runs another model). The first refusal is said once
    (:meth:`pop_messages`).
    """

    def __init__(self, labels: Sequence[str], min_confidence: float = 0.0, started: float | None = None) -> None:
        self.labels = list(labels)
        self.min_confidence = min_confidence
        self.started = time.perf_counter() if started is None else started
        self.accepted = 0
        self.refused = 0
        self._t0_ms: int | None = None
        self._messages: list[str] = []

    def convert(self, pred: DevicePrediction, dropped: int = 0) -> WindowPrediction | None:
        """The window the board classified, or None (counted) when its class count is not the bundle's."""
        if len(pred.counts) != len(self.labels):
            self.refused += 1
            if self.refused == 1:
                self._messages.append(f"device sends predictions over {len(pred.counts)} classes, the bundle has "
                                      f"{len(self.labels)} labels: refused (counted in refused predictions)")
            return None
        self.accepted += 1
        probs = pred.probs
        label = self.labels[pred.label]
        conf = probs[pred.label]
        t_end = 0.0
        if pred.t_ms is not None:
            if self._t0_ms is None:
                self._t0_ms = pred.t_ms
            t_end = ((pred.t_ms - self._t0_ms) & 0xFFFFFFFF) / 1000.0  # the device clock wraps at 2^32 ms
        return WindowPrediction(window=pred.window, end_sample=0, label=label, confidence=conf, probs=probs,
                                dropped=dropped, inference_us=0.0, e2e_us=0.0,
                                t_s=time.perf_counter() - self.started, uncertain=conf < self.min_confidence,
                                t_end_s=t_end, raw_probs=list(probs), raw_label=label, head="device",
                                source="device")

    def pop_messages(self) -> list[str]:
        out, self._messages = self._messages, []
        return out
