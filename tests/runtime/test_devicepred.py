"""A board's prediction messages as windows: the bundle's labels, probabilities count/256, the board's clock
(unwrapped over 2^32 ms), uncertainty, and refusal (counted, said once) of another class count."""

from __future__ import annotations

from hartool.runtime.devicepred import DevicePredictions
from hartool.wire.batch import DevicePrediction

LABELS = ["SIT", "STAND", "WALK"]


def test_predictions_become_windows_on_the_boards_clock() -> None:
    dev = DevicePredictions(LABELS, min_confidence=0.5, started=0.0)
    first = dev.convert(DevicePrediction(7, 2, (16, 16, 224), 0xFFFFFF00), dropped=3)
    second = dev.convert(DevicePrediction(8, 1, (100, 110, 46), 0x00000400))  # the board's clock wrapped
    assert first is not None and second is not None
    assert (first.window, first.label, first.probs, first.confidence) == (7, "WALK", [0.0625, 0.0625, 0.875], 0.875)
    assert first.source == "device" and first.dropped == 3 and not first.uncertain and first.t_end_s == 0.0
    assert second.label == "STAND" and second.uncertain and second.t_end_s == (0x400 + 0x100) / 1000.0
    assert second.to_json()["source"] == "device" and dev.accepted == 2 and dev.refused == 0
    untimed = dev.convert(DevicePrediction(9, 0, (200, 50, 6), None))
    assert untimed is not None and untimed.t_end_s == 0.0


def test_another_class_count_is_refused_and_said_once() -> None:
    dev = DevicePredictions(LABELS)
    assert dev.convert(DevicePrediction(0, 0, (255, 0), 10)) is None
    assert dev.convert(DevicePrediction(1, 0, (255, 0), 20)) is None
    assert dev.pop_messages() == ["device sends predictions over 2 classes, the bundle has 3 labels: refused "
                                  "(counted in refused predictions)"]
    assert dev.pop_messages() == [] and dev.refused == 2 and dev.accepted == 0
