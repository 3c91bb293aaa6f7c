"""The ingest stage (hartool.core.ingest): decoded batches -> seconds, model units, the model's grid; sans-IO."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.errors import WireError
from hartool.core.ingest import DETECT_SAMPLES, IngestOptions, IngestStage, UnitsError
from hartool.wire.batch import DecodedBatch, SensorPart

CHANNELS = [{"name": n, "unit": "g" if n.startswith("acc") else "rad/s"}
            for n in ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")]


def _batch(t: np.ndarray | None, values: np.ndarray, **kw: object) -> DecodedBatch:
    return DecodedBatch(values=values.astype(np.float32), t=t, dropped=0, **kw)  # type: ignore[arg-type]


def _rows(chunks: list) -> np.ndarray:
    return np.concatenate([c.values for c in chunks if len(c.values)])


def test_batches_wait_for_the_time_unit_then_come_out_on_the_grid_in_order() -> None:
    stage = IngestStage(CHANNELS, 50.0)
    values = np.tile(np.arange(20, dtype=np.float32)[:, None], (1, 6)) / 100
    t_ms = np.arange(20) * 20  # 50 Hz in ms, no unit given: detected from the spacing
    assert stage.feed(_batch(t_ms[:5], values[:5])) == []  # fewer than DETECT_SAMPLES stamps: held
    chunks = stage.feed(_batch(t_ms[5:], values[5:]))
    assert 5 < DETECT_SAMPLES <= 20 and stage.time_unit == "ms"
    np.testing.assert_allclose(np.concatenate([c.t for c in chunks]), np.arange(20) * 0.02, atol=1e-12)
    np.testing.assert_allclose(_rows(chunks), values, atol=1e-6)  # on the model's rate: the samples themselves
    assert stage.pop_messages() == ["device timestamps are in ms (detected from their spacing; --time-unit overrides)"]
    assert stage.pop_messages() == []


def test_units_are_scaled_and_m_s2_sent_as_g_is_told() -> None:
    stage = IngestStage(CHANNELS, 50.0, IngestOptions(gyro_unit="deg/s"))
    values = np.tile([[0.0, 0.0, 9.81, 180.0, 0.0, 0.0]], (50, 1))
    (chunk,) = stage.feed(_batch(None, values))
    assert chunk.t is None and not chunk.restart
    np.testing.assert_allclose(chunk.values[0], [0, 0, 9.81, np.pi, 0, 0], rtol=1e-6)
    assert stage.pop_messages() == ["warning: acceleration looks like m/s2 (median |acc| 9.8): pass --acc-unit m/s2, "
                                    "or --acc-unit g --units-confirmed"]
    confirmed = IngestStage(CHANNELS, 50.0, IngestOptions(gyro_unit="deg/s", units_confirmed=True,
                                                          refuse_doubtful_units=True))
    confirmed.feed(_batch(None, values))
    assert confirmed.pop_messages() == []
    refusing = IngestStage(CHANNELS, 50.0, IngestOptions(gyro_unit="deg/s", refuse_doubtful_units=True))
    with pytest.raises(UnitsError, match=r"^acceleration looks like m/s2 \(median \|acc\| 9\.8\): pass --acc-unit"):
        refusing.feed(_batch(None, values))


def test_a_sequence_break_restarts_the_grid_and_is_counted() -> None:
    stage = IngestStage(CHANNELS, 50.0, IngestOptions(time_unit="ms"))
    t_ms = np.arange(40) * 20
    chunks = stage.feed(_batch(t_ms, np.zeros((40, 6)), breaks=(20,)))
    restarts = [i for i, c in enumerate(chunks) if c.restart]
    assert restarts and stage.counters()["gaps"] >= 1
    assert sum(len(c.values) for c in chunks[:restarts[0]]) == 20  # the samples before the break, then a restart


def test_sensor_clocks_feed_the_channel_groups_their_names_say() -> None:
    stage = IngestStage(CHANNELS, 50.0)
    t = 1_700_000_000 * 10**9 + np.arange(30, dtype=np.int64) * 10_000_000  # ns, 100 Hz
    acc = SensorPart("accelerometer", (0, 1, 2), t=t + 2_000_000, values=np.tile([[0.0, 0.0, 9.80665]], (30, 1)))
    gyro = SensorPart("gyroscope", (3, 4, 5), t=t, values=np.tile([[0.5, 0.0, 0.0]], (30, 1)))
    batch = DecodedBatch(values=np.zeros((0, 6), np.float32), t=None, dropped=0, time_unit="ns", acc_unit="m/s2",
                         parts=[acc, gyro], layout=("accelerometer", "gyroscope"))
    chunks = stage.feed(batch, tag="A")
    x = _rows(chunks)
    assert len(x) == 15 and {c.tag for c in chunks} == {"A"}
    np.testing.assert_allclose(x[:, 2], 1.0, rtol=1e-6)  # m/s2 -> g
    np.testing.assert_allclose(x[:, 3], 0.5)
    assert stage.time_unit == "ns" and stage.device_samples == 60
    assert stage.pop_messages() == ["aligning 2 sensor clocks (accelerometer, gyroscope) onto 50 Hz"]


def test_recorder_mode_keeps_every_sample_and_continues_after_a_board_reset() -> None:
    stage = IngestStage(CHANNELS, 50.0, IngestOptions(time_unit="ms"), resample=False, nominal_hz=50.0)
    first = stage.feed(_batch(60_000 + np.arange(10) * 20, np.ones((10, 6))), tag="WALKING")  # a minute up
    second = stage.feed(_batch(np.arange(10) * 20, np.ones((10, 6))), tag="SITTING")  # the board reset: 0 again
    t = np.concatenate([c.t for c in first + second])
    np.testing.assert_allclose(t, np.arange(20) * 0.02, atol=1e-12)  # one period after the last sample
    assert [c.tag for c in first + second] == ["WALKING", "SITTING"] and stage.time_source == "device"
    assert first[0].values.dtype == np.float64
    assert stage.counters()["clock_resets"] == 1


def test_recorder_mode_keeps_jitter_at_the_previous_time_instead_of_shifting_the_rest() -> None:
    """A sample a few ms before its predecessor is jitter, not a restart: the later samples keep their own times."""
    stage = IngestStage(CHANNELS, 50.0, IngestOptions(time_unit="ms"), resample=False, nominal_hz=50.0)
    t_ms = np.arange(20) * 20
    t_ms[10] = 175  # 5 ms before the sample it follows (180)
    chunks = stage.feed(_batch(t_ms[:10], np.ones((10, 6)))) + stage.feed(_batch(t_ms[10:], np.ones((10, 6))))
    t = np.concatenate([c.t for c in chunks])
    expected = np.arange(20) * 0.02
    expected[10] = 0.18  # held at its predecessor's time; every sample is written
    np.testing.assert_allclose(t, expected, atol=1e-12)
    assert stage.counters()["clock_resets"] == 0


def test_recorder_mode_without_timestamps_uses_arrival_time() -> None:
    stage = IngestStage(CHANNELS, 50.0, resample=False, nominal_hz=50.0)
    (a,) = stage.feed(_batch(None, np.ones((3, 6)), received_ns=10 * 10**9))
    (b,) = stage.feed(_batch(None, np.ones((2, 6)), received_ns=11 * 10**9))
    assert stage.time_source == "host"
    np.testing.assert_allclose(np.concatenate([a.t, b.t]), [0.0, 0.02, 0.04, 1.02, 1.04], atol=1e-9)


def test_wrong_channel_count_and_unknown_time_unit_are_one_line_errors() -> None:
    stage = IngestStage(CHANNELS, 50.0)
    with pytest.raises(WireError, match="device sends 3 channels per sample; 6 expected"):
        stage.feed(_batch(None, np.zeros((4, 3))))
    stage.feed(_batch(np.arange(DETECT_SAMPLES - 1) * 0.3, np.zeros((DETECT_SAMPLES - 1, 6))))  # no IMU rate
    with pytest.raises(WireError, match="cannot tell the device's time unit"):
        stage.flush()
