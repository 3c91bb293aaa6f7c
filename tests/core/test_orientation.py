"""Orientation calibration (core/orientation.py) and rotation augmentation (train/augment.py): numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.orientation import (
    REFERENCE_GRAVITY,
    OrientationCalibrator,
    StillBouts,
    calibrate_recording,
    calibrator_for,
    is_walking,
    manifest_section,
    orientation_mode,
    reads_imu,
    rotate,
    rotation_between,
)
from hartool.train.augment import augment_windows, random_rotations, rotate_windows, upright_axis

REF = np.asarray(REFERENCE_GRAVITY) / np.linalg.norm(REFERENCE_GRAVITY)


def _turn(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


RATE = 50.0


def _tilted(angle_deg: float, axis: tuple[float, float, float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """REF turned by angle_deg about an axis (a posture's gravity, device frame as trained)."""
    a = np.asarray(axis, dtype=np.float64) - np.dot(axis, REF) * REF
    a /= np.linalg.norm(a)
    return np.cos(np.radians(angle_deg)) * REF + np.sin(np.radians(angle_deg)) * a


def _still(gravity: np.ndarray, seconds: float, rng: np.random.Generator, sway: float = 0.02) -> np.ndarray:
    n = int(seconds * RATE)
    out = np.zeros((n, 6))
    out[:, :3] = gravity + rng.normal(0, 0.003, (n, 3))
    out[:, 3:] = rng.normal(0, sway, (n, 3))
    return out


def _turning(a: np.ndarray, b: np.ndarray, seconds: float = 2.0) -> np.ndarray:
    """A posture change from gravity a to b: the device turns (the gyro sees it) and gravity follows."""
    n = int(seconds * RATE)
    axis = np.cross(a, b)
    angle = np.arccos(np.clip(a @ b, -1, 1))
    out = np.zeros((n, 6))
    out[:, :3] = [_slerp(a, b, i / (n - 1)) for i in range(n)]
    out[:, 3:] = axis / np.linalg.norm(axis) * angle / seconds
    return out


def _slerp(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    angle = np.arccos(np.clip(a @ b, -1, 1))
    return (np.sin((1 - f) * angle) * a + np.sin(f * angle) * b) / np.sin(angle)


def _walk(seconds: float, rng: np.random.Generator, upright: np.ndarray = REF) -> np.ndarray:
    """Steps at 1.8 Hz: |acc| bounces along the upright, a smaller sway across it, gyro swinging at the stride."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    side = np.cross(upright, [0.0, 0.0, 1.0])
    side /= np.linalg.norm(side)
    out = np.zeros((n, 6))
    out[:, :3] = (upright * (1 + 0.3 * np.sin(2 * np.pi * 1.8 * t))[:, None]
                  + side * (0.1 * np.sin(np.pi * 1.8 * t))[:, None] + rng.normal(0, 0.03, (n, 3)))
    out[:, 3:] = np.outer(np.sin(np.pi * 1.8 * t), [0.0, 0.4, 0.2]) + rng.normal(0, 0.05, (n, 3))
    return out


def _stream(values: np.ndarray, cal: OrientationCalibrator) -> list[tuple[bool, str]]:
    """Push every window; (calibrated, source) after each."""
    out = []
    for s in range(0, values.shape[0] - 127, 64):
        cal.push(values[s:s + 128])
        out.append((cal.calibrated, cal.source))
    return out


@pytest.mark.parametrize("a", [(1, 0, 0), (0, 0, -1), (-0.9863, 0.1613, 0.0334), (0.3, -2.0, 5.0)])
def test_rotation_between_maps_a_onto_b_and_is_a_rotation(a: tuple[float, ...]) -> None:
    rot = rotation_between(a, REFERENCE_GRAVITY)
    np.testing.assert_allclose(rot @ (np.asarray(a) / np.linalg.norm(a)), REF, atol=1e-9)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_walking_is_recognised_in_any_orientation_and_stillness_or_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    for seed in range(5):
        w = rotate(_walk(2.56, rng), _turn(seed))
        assert is_walking(np.linalg.norm(w[:, :3], axis=1), RATE)
    still = _still(REF, 2.56, rng)
    assert not is_walking(np.linalg.norm(still[:, :3], axis=1), RATE)
    noise = rng.normal(0, 0.4, (128, 3)) + REF
    assert not is_walking(np.linalg.norm(noise, axis=1), RATE)


def test_a_still_start_is_never_taken_as_standing_and_walking_locks_any_turn() -> None:
    rng = np.random.default_rng(1)
    for seed in range(4):
        turn = _turn(seed)
        sitting, walking = _still(_tilted(25.0), 20.0, rng), _walk(15.0, rng)
        cal = OrientationCalibrator(RATE, 128, 64)
        states = _stream(rotate(np.concatenate([sitting, walking]), turn), cal)
        n_sit = (len(sitting) - 128) // 64 + 1
        assert not any(c for c, _ in states[:n_sit])  # 20 s of stillness: no reference
        assert states[-1] == (True, "walking")
        messages = cal.pop_messages()
        assert any("locked from walking" in m for m in messages), messages
        assert cal.pop_messages() == []
        # The walk's mean acceleration lands on the reference whatever the device turn; acc and gyro turn alike.
        out = cal.push(rotate(walking[:128], turn))
        np.testing.assert_allclose(out[:, :3].mean(axis=0) / np.linalg.norm(out[:, :3].mean(axis=0)), REF, atol=0.02)
        np.testing.assert_allclose(np.linalg.norm(out[:, 3:], axis=1), np.linalg.norm(walking[:128, 3:], axis=1),
                                   rtol=1e-5)


def test_stream_windows_turns_each_window_as_the_stream_does() -> None:
    """Offline scoring (benchmarks, enrollment checks) calls InputTransform.stream_windows: the windows a fresh
    stream of the same manifest would feed its model, in order; a fixed bundle's windows untouched."""
    from hartool.core.transform import InputTransform

    rng = np.random.default_rng(3)
    values = rotate(np.concatenate([_still(_tilted(25.0), 10.0, rng), _walk(15.0, rng)]), _turn(2))
    windows = np.stack([values[s:s + 128] for s in range(0, len(values) - 127, 64)])
    free = {"orientation": manifest_section("free"), "sample_rate_hz": RATE, "window": 128, "stride": 64,
            "preprocessing": {}, "channels": []}
    cal = calibrator_for(free)
    expected = np.stack([cal.push(w) for w in windows])
    assert cal.calibrated  # the walk locked: later windows are turned, not passed through
    np.testing.assert_array_equal(InputTransform(free).stream_windows(windows), expected)
    assert not np.array_equal(expected, windows)
    fixed = free | {"orientation": manifest_section("fixed")}
    assert InputTransform(fixed).stream_windows(windows) is windows


def test_posture_geometry_locks_before_any_walk_and_finds_standing() -> None:
    rng = np.random.default_rng(2)
    for seed in range(4):
        turn = _turn(seed)
        # Sitting 20 deg back from standing, lying 90 deg from standing (70 from sitting); standing sways more.
        sit, lie = _tilted(20.0), _tilted(90.0)
        seq = [_still(sit, 15.0, rng), _turning(sit, REF), _still(REF, 15.0, rng, sway=0.08), _turning(REF, lie),
               _still(lie, 15.0, rng)]
        cal = OrientationCalibrator(RATE, 128, 64)
        states = _stream(rotate(np.concatenate(seq), turn), cal)
        assert states[-1] == (True, "postures")
        messages = cal.pop_messages()
        assert any("postures seen" in m for m in messages)
        assert not any("re-attached" in m for m in messages)  # the gyro saw the posture changes
        standing = cal.rotation @ turn @ REF
        assert np.degrees(np.arccos(np.clip(standing @ REF, -1, 1))) < 3.0


def test_a_re_attach_between_quiet_stretches_is_carried_and_a_turned_walk_re_locks() -> None:
    rng = np.random.default_rng(3)
    first, second = _turn(10), _turn(11)
    before = rotate(np.concatenate([_walk(12.0, rng), _still(REF, 6.0, rng)]), first)
    after = rotate(_still(REF, 6.0, rng), second)
    cal = OrientationCalibrator(RATE, 128, 64)
    _stream(np.concatenate([before, after]), cal)
    assert cal.calibrated and "carried" in cal.source
    assert any("re-attached" in m for m in cal.pop_messages())
    standing = cal.rotation @ second @ REF
    assert np.degrees(np.arccos(np.clip(standing @ REF, -1, 1))) < 8.0  # the walk's lean is part of the frame
    # Turned again while moving (a gap: nothing seen of it): the next walk is far off upright and re-locks.
    cal.gap()
    third = _turn(12)
    _stream(rotate(_walk(12.0, rng), third), cal)
    assert cal.calibrated and cal.source == "walking"
    assert any("turned on the body" in m for m in cal.pop_messages())
    np.testing.assert_allclose(cal.rotation @ third @ REF, REF, atol=0.03)


def test_upside_down_after_a_lock_drops_the_calibration() -> None:
    rng = np.random.default_rng(4)
    cal = OrientationCalibrator(RATE, 128, 64)
    _stream(_walk(12.0, rng), cal)
    assert cal.calibrated
    cal.gap()
    _stream(_still(-REF, 8.0, rng), cal)
    assert not cal.calibrated and cal.source == "provisional"
    assert any("calibration dropped" in m for m in cal.pop_messages())


def test_recording_calibration_turns_each_attachment_by_its_own_rotation() -> None:
    rng = np.random.default_rng(5)
    first, second = _turn(20), _turn(21)
    a = rotate(np.concatenate([_still(_tilted(25.0), 10.0, rng), _walk(15.0, rng)]), first)
    b = rotate(_walk(15.0, rng), second)
    out = calibrate_recording(np.concatenate([a, b]), RATE, 128, 64)
    for part in (out[len(a) - 500:len(a) - 100], out[-500:]):
        g = part[:, :3].mean(axis=0)
        np.testing.assert_allclose(g / np.linalg.norm(g), REF, atol=0.03)
    # The still start, before any reference, is turned by its attachment's final rotation (hindsight).
    g = out[:300, :3].mean(axis=0)
    assert np.degrees(np.arccos(np.clip(g @ REF / np.linalg.norm(g), -1, 1))) == pytest.approx(25.0, abs=2.0)


def test_manifest_round_trip() -> None:
    assert calibrator_for({"orientation": manifest_section("fixed")}) is None
    assert calibrator_for({}) is None
    # One reading of the mode for every room: a manifest from before the field (or with it null) is fixed.
    assert [orientation_mode(m) for m in ({}, {"orientation": None}, {"orientation": manifest_section("fixed")},
                                          {"orientation": manifest_section("free")})] == ["fixed", "fixed", "fixed",
                                                                                           "free"]
    section = manifest_section("free")
    cal = calibrator_for({"orientation": section, "sample_rate_hz": 50.0, "window": 128, "stride": 64})
    assert isinstance(cal, OrientationCalibrator) and not cal.calibrated
    np.testing.assert_allclose(cal.reference, REFERENCE_GRAVITY)
    assert cal.state()["calibrated"] is False and section["reference_from"] == "walking"
    # A bundle trained before the walking calibration (still_s in its manifest) still loads.
    old = {"mode": "free", "reference": list(REFERENCE_GRAVITY), "still_s": 3.0}
    assert calibrator_for({"orientation": old, "sample_rate_hz": 50.0, "window": 128, "stride": 64}) is not None


def test_yaw_augmentation_keeps_the_vertical_component_and_norms() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(8, 128, 6)).astype(np.float32)
    rot = random_rotations(8, rng, yaw_axis=REF)
    y = rotate_windows(x, rot)
    np.testing.assert_allclose(y[..., :3] @ REF, x[..., :3] @ REF, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(y[..., 3:], axis=-1), np.linalg.norm(x[..., 3:], axis=-1), rtol=1e-5)
    assert not np.allclose(y, x)
    z = augment_windows(x, rng, scale=0.0, max_tilt_deg=0.0, yaw_axis=None)
    np.testing.assert_array_equal(z, x)


def test_bounded_yaw_turns_at_most_its_limit_and_uses_the_range() -> None:
    rng = np.random.default_rng(5)
    rot = random_rotations(2000, rng, yaw_axis=REF, max_yaw_deg=90.0)
    # The angle of a rotation matrix from its trace; every turn keeps the axis fixed.
    angles = np.degrees(np.arccos(np.clip((np.trace(rot, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    np.testing.assert_allclose(rot @ REF, np.broadcast_to(REF, (2000, 3)), atol=1e-9)
    assert angles.max() <= 90.0 + 1e-6 and angles.max() > 85.0 and np.median(angles) < 55.0


def _gravity_windows(means: np.ndarray) -> np.ndarray:
    x = np.zeros((len(means), 128, 6), np.float32)
    x[..., :3] = means[:, None, :] * 9.81  # units do not matter: only directions count
    return x


def test_upright_axis_finds_the_upright_cluster_not_the_mean_with_lying() -> None:
    rng = np.random.default_rng(6)
    up = np.array([0.2, 0.9, 0.38])
    up /= np.linalg.norm(up)
    lying = np.array([0.0, 0.0, -1.0])
    means = np.concatenate([up + rng.normal(0, 0.05, (50, 3)), lying + rng.normal(0, 0.05, (12, 3))])
    axis, share = upright_axis(_gravity_windows(means))
    plain_mean = means.mean(0) / np.linalg.norm(means.mean(0))
    assert np.degrees(np.arccos(axis @ up)) < 2.0 and share == pytest.approx(50 / 62)
    assert np.degrees(np.arccos(plain_mean @ up)) > 10.0  # the densest direction is what finds it


def test_upright_axis_of_half_walking_half_lying_is_a_posture_not_the_diagonal() -> None:
    rng = np.random.default_rng(7)
    walk, lying = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])
    means = np.concatenate([walk + rng.normal(0, 0.05, (30, 3)), lying + rng.normal(0, 0.05, (30, 3))])
    axis, share = upright_axis(_gravity_windows(means))
    # Either posture, never the diagonal between them; half the windows: too few for a fixed model to turn.
    assert max(axis @ walk, axis @ lying) > np.cos(np.deg2rad(3.0)) and share == pytest.approx(0.5)


def test_still_bouts_hold_a_posture_until_it_moves_or_turns_in_any_orientation() -> None:
    rng = np.random.default_rng(4)
    sit, other = _tilted(25.0), _tilted(70.0, (0.0, 1.0, 0.0))
    # Standing, a walk, standing, a turn to sitting, sitting, then a jump of gravity between two still stretches
    # (a re-attach the gyro did not see) and more of that.
    parts = [(_still(REF, 8, rng), "still"), (_walk(6, rng), "move"), (_still(REF, 8, rng), "still"),
             (_turning(REF, sit), "move"), (_still(sit, 8, rng), "still"), (_still(other, 6, rng), "still")]
    values = np.concatenate([v for v, _ in parts])
    bounds = np.cumsum([0] + [len(v) for v, _ in parts])
    kinds = [k for _, k in parts]

    def inside(s: int) -> int | None:
        """The part a window starting at sample s lies wholly in, if any."""
        for k in range(len(parts)):
            if bounds[k] <= s and s + 128 <= bounds[k + 1]:
                return k
        return None

    starts = list(range(0, len(values) - 127, 64))
    for turn in (np.eye(3), _turn(11)):
        bouts = StillBouts()
        held = [bouts.push(rotate(values[s:s + 128], turn)) for s in starts]
        for i, s in enumerate(starts):
            k = inside(s)
            if k is not None and kinds[k] == "still" and i > 0 and inside(starts[i - 1]) == k:
                assert held[i], (i, s)  # inside one held posture
            elif bounds[1] < s + 128 and s < bounds[2]:
                assert not held[i], (i, s)  # any window with steps in it
        jump = [i for i, s in enumerate(starts) if s < bounds[5] < s + 128]
        assert not all(held[i] for i in jump)  # gravity jumped 70 degrees: not the same posture
        assert not held[0] and sum(held) >= 12
    bouts = StillBouts()
    assert bouts.push(values[:128]) is False and bouts.push(values[64:192]) is True
    bouts.gap()
    assert bouts.push(values[128:256]) is False  # after a gap the bout starts again


def test_reads_imu_only_for_acc_in_g_and_gyro_in_rad_s() -> None:
    six = [{"name": n, "unit": u} for n, u in (("acc_x", "g"), ("acc_y", "g"), ("acc_z", "g"),
                                                ("gyro_x", "rad/s"), ("gyro_y", "rad/s"), ("gyro_z", "rad/s"))]
    assert reads_imu(six)
    assert not reads_imu(six[:3]) and not reads_imu([{**six[0], "unit": "m/s2"}, *six[1:]])
    assert not reads_imu(list(reversed(six)))


def test_a_pause_on_the_way_down_is_not_taken_for_sitting() -> None:
    # A wearer whose sitting and standing gravities lie within one posture cluster, who pauses a few seconds
    # halfway down to lying and lies fidgeting more than the upright posture sways: the pause and lying form an
    # "upright pair" 38 deg apart, with the upright cluster (57 deg from the pause) as "lying". Taking the pause
    # for sitting would lock with lying as standing (95 deg off); a sitting must be held as long as standing must.
    rng = np.random.default_rng(5)
    for seed in range(3):
        turn = _turn(seed)
        sit, pause, lie = _tilted(4.0), _tilted(57.0), _tilted(95.0)
        seq = [_still(sit, 15.0, rng, sway=0.02), _turning(sit, REF), _still(REF, 15.0, rng, sway=0.03),
               _turning(REF, pause), _still(pause, 6.5, rng, sway=0.05), _turning(pause, lie),
               _still(lie, 20.0, rng, sway=0.08)]
        cal = OrientationCalibrator(RATE, 128, 64)
        states = _stream(rotate(np.concatenate(seq), turn), cal)
        assert (True, "postures") not in states, seed
        assert not any("postures seen" in m for m in cal.pop_messages())


def test_a_walk_that_contradicts_a_posture_lock_re_locks_without_blaming_a_re_attach_alone() -> None:
    rng = np.random.default_rng(6)
    sit, lie = _tilted(20.0), _tilted(90.0)
    locked = [_still(sit, 15.0, rng), _turning(sit, REF), _still(REF, 15.0, rng, sway=0.08), _turning(REF, lie),
              _still(lie, 15.0, rng)]
    walk_up = _tilted(60.0, axis=(0.0, 1.0, 0.0))  # the device turned with the gyro watching, then a walk
    cal = OrientationCalibrator(RATE, 128, 64)
    states = _stream(np.concatenate([*locked, _turning(lie, walk_up, 3.0), _walk(20.0, rng, upright=walk_up)]), cal)
    assert (True, "postures") in states and states[-1] == (True, "walking")
    messages = cal.pop_messages()
    off = [m for m in messages if "off upright" in m]
    assert len(off) == 1 and "the lock from the postures was wrong, or the device was turned" in off[0], messages
    assert np.degrees(np.arccos(np.clip((cal.rotation @ walk_up) @ REF, -1, 1))) < 5.0
