"""Orientation calibration (core/orientation.py) and rotation augmentation (train/augment.py): numpy only."""

from __future__ import annotations

import numpy as np
import pytest

from hartool.core.orientation import (
    REFERENCE_GRAVITY,
    OrientationCalibrator,
    calibrate_recording,
    calibrator_for,
    manifest_section,
    rotate,
    rotation_between,
)
from hartool.train.augment import augment_windows, random_rotations, rotate_windows, upright_axis

REF = np.asarray(REFERENCE_GRAVITY) / np.linalg.norm(REFERENCE_GRAVITY)


def _turn(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _recording(rot: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """6 s of upright standing (gravity on the reference, sensor noise), then 10 s of vigorous motion."""
    still = np.zeros((300, 6))
    still[:, :3] = REF + rng.normal(0, 0.003, (300, 3))
    still[:, 3:] = rng.normal(0, 0.01, (300, 3))
    moving = rng.normal(0, 0.5, (500, 6))
    moving[:, :3] += REF
    return rotate(np.concatenate([still, moving]), rot)


@pytest.mark.parametrize("a", [(1, 0, 0), (0, 0, -1), (-0.9863, 0.1613, 0.0334), (0.3, -2.0, 5.0)])
def test_rotation_between_maps_a_onto_b_and_is_a_rotation(a: tuple[float, ...]) -> None:
    rot = rotation_between(a, REFERENCE_GRAVITY)
    np.testing.assert_allclose(rot @ (np.asarray(a) / np.linalg.norm(a)), REF, atol=1e-9)
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(rot) == pytest.approx(1.0)


def test_calibrator_locks_on_first_still_period_and_undoes_any_tilt() -> None:
    rng = np.random.default_rng(1)
    for seed in range(5):
        values = _recording(_turn(seed), rng)
        cal = OrientationCalibrator(50.0, 128, 64)
        outs = [cal.push(values[s:s + 128]) for s in range(0, values.shape[0] - 127, 64)]
        assert cal.locked
        messages = cal.pop_messages()
        assert any("locked" in m and "upright standing" in m for m in messages), messages
        assert cal.pop_messages() == []
        # After the lock, gravity in the standing part lands on the reference whatever the device turn was.
        standing = cal.push(values[100:228])
        np.testing.assert_allclose(standing[:, :3].mean(axis=0), REF, atol=0.01)
        # Acc and gyro turned by the same rotation: their norms are kept sample by sample.
        np.testing.assert_allclose(np.linalg.norm(outs[-1][:, 3:], axis=1),
                                   np.linalg.norm(values[(len(outs) - 1) * 64:][:128, 3:], axis=1), rtol=1e-5)


def test_calibrator_never_locks_without_three_still_seconds() -> None:
    rng = np.random.default_rng(2)
    moving = rng.normal(0, 0.5, (1000, 6))
    cal = OrientationCalibrator(50.0, 128, 64)
    for s in range(0, 1000 - 127, 64):
        cal.push(moving[s:s + 128])
    assert not cal.locked
    assert any("stand still" in m for m in cal.pop_messages())


def test_recording_calibration_matches_for_any_device_turn() -> None:
    rng = np.random.default_rng(3)
    base = _recording(np.eye(3), rng)
    for seed in range(3):
        turned = calibrate_recording(rotate(base, _turn(seed)), 50.0, 128, 64)
        np.testing.assert_allclose(turned[:300, :3].mean(axis=0), REF, atol=0.01)


def test_manifest_round_trip() -> None:
    assert calibrator_for({"orientation": manifest_section("fixed")}) is None
    assert calibrator_for({}) is None
    cal = calibrator_for({"orientation": manifest_section("free"), "sample_rate_hz": 50.0, "window": 128,
                          "stride": 64})
    assert isinstance(cal, OrientationCalibrator) and cal.still_samples == 150


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
