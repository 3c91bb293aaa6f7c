"""Device orientation: the reference frame of hartool models and a causal calibration to it that asks nothing
of the wearer.

A model trained with ``--orientation free`` sees every window turned into the reference frame: the frame in
which the mean acceleration while the wearer walks points along ``REFERENCE_GRAVITY`` (numerically the HAPT
waist phone's standing direction; standing lands within a few degrees of it, sitting some 25 degrees off). The
remaining freedom (a turn about that vertical) is what training covers by turning windows about it at random:
a rotation that only brings one direction onto another leaves that turn unknown, in training as on a device.
:class:`OrientationCalibrator` finds the rotation causally from what people do anyway; a still period is never
assumed to be standing:

- **walking** (recognised in any orientation by the rhythm of |acc| at step frequency, 1.4-2.8 Hz): the mean
  acceleration over a few strides is the upright trunk's gravity, which lands on ``REFERENCE_GRAVITY``.
  Every later walk refines it.
- **the geometry of the postures seen so far**: of two upright still postures a few tens of degrees apart
  (sitting, standing) and a lying one far from both, standing is the one further from lying (a waist device
  tilts back when sitting: 40 of 42 HAPT training recordings, the other two tie) that also sways most. Sitting
  and standing must each have been held some seconds: a pause on the way down to lying is no sitting.
- **a re-attach** (the device turned on the body): a sudden change of the gravity direction within a window
  that the gyro did not see turning is carried across (the reference rotates by the jump, estimated from the
  gravity before and after, the activity being the same). A walk whose gravity lies far from the reference,
  or standing (from the postures seen since) far from the calibrated upright, re-locks from that evidence; a
  still posture upside down drops the calibration back to provisional.

Until the first reference (``calibrated`` False) the rotation is provisional: none while the recent gravity
is one a trained posture gives a device worn as in training (within ``WORN_AS_TRAINED_DEG`` of the reference:
upright or sitting; or ``LYING_BAND_DEG`` from it: lying), else the one that takes the recent gravity to the
reference (the wearer taken as upright). A device worn as in training is then classified as well as a fixed
model would; a turned one is a guess until the first reference. Status changes are queued as one-line
messages (:meth:`OrientationCalibrator.pop_messages`).
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# The reference frame's upright: where the mean acceleration of walking is turned to. Numerically the HAPT
# waist-worn phone's standing direction (the mean over the STANDING windows of the 21 UCI training subjects),
# kept from the bundles calibrated on standing; walking lies 6 deg (0-17) from standing in HAPT.
REFERENCE_GRAVITY: tuple[float, float, float] = (0.9863, -0.1613, -0.0334)
# The channels (name, unit) this module reads, in order: the input contract of every hapt/uci-har bundle
# (hartool.data.recordings builds its channel list from it).
IMU_LAYOUT: tuple[tuple[str, str], ...] = (("acc_x", "g"), ("acc_y", "g"), ("acc_z", "g"),
                                           ("gyro_x", "rad/s"), ("gyro_y", "rad/s"), ("gyro_z", "rad/s"))
ORIENTATIONS = ("fixed", "free")
# A window is still when |acc| varies by less than this (g, sd over the window) and the mean |gyro| is below
# GYRO_STILL (rad/s). HAPT training recordings, median over a posture (10-90 %): sitting 0.009 g (0.005-0.016)
# and 0.034 rad/s (0.019-0.066), lying 0.011 g and 0.039 rad/s, standing 0.016 g (0.009-0.022) and 0.076 rad/s
# (0.036-0.117): standing sways more than sitting in 95 % of them, than lying in 90 %.
ACC_STILL_SD = 0.03
GYRO_STILL = 0.2
# Walking: the normalised autocorrelation of |acc| peaks above WALK_AC at a step period of 1.4-2.8 Hz and |acc|
# varies by more than WALK_SD_G. On the 21 training subjects' windows: 90 % of walking/stairs windows, 5 of
# 2670 labelled still or transition windows (unlabelled stretches, mostly walking about, are often taken).
WALK_AC = 0.4
WALK_SD_G = 0.08
STEP_HZ = (1.4, 2.8)
WALK_WINDOWS = 3  # consecutive walking windows (about 4 s at HAPT's 2.56 s / 1.28 s) make one reference
WALK_SPREAD_DEG = 15.0  # ... whose mean accelerations agree within this
RELOCK_DEG = 25.0  # a calibrated walk further than this from the reference: the device was turned on the body
CLUSTER_DEG = 8.0  # still windows within this of a posture's mean belong to it
POSTURE_WINDOWS = 3  # still windows (about 5 s) before a posture counts ...
HELD_WINDOWS = 6  # ... and before it can be called standing or sitting (not the few still windows of a
# transition, such as a pause on the way down to lying); standing must also be one of the two postures held
# longest (lying, fidgeted, splits into several)
UPRIGHT_PAIR_DEG = (5.0, 50.0)  # sitting vs standing (HAPT training: 6-46 deg)
LYING_DEG = 55.0  # lying vs both upright postures (HAPT training: >= 51 sitting, >= 82 standing)
POSTURE_MARGIN_DEG = 5.0  # ... and standing at least this much further from lying than sitting
# A change of the mean acceleration's direction within a window larger than JUMP_DEG (JUMP_MOVING_DEG when
# either side moves: |acc| sd >= QUIET_SD_G), while the gyro's net turn over the window is less than
# JUMP_GYRO_SHARE of it: the device was turned on the body (a posture change turns the device as much as the
# gravity moves, and the gyro sees it).
JUMP_DEG = 15.0
JUMP_MOVING_DEG = 30.0
JUMP_GYRO_SHARE = 0.5
QUIET_SD_G = 0.05
UPSIDE_DOWN_DEG = 135.0  # calibrated still gravity this far from upright: not a posture
UPSIDE_DOWN_WINDOWS = 3
WORN_AS_TRAINED_DEG = 40.0
LYING_BAND_DEG = (60.0, 120.0)


def rotation_between(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """The smallest rotation matrix R with R @ a/|a| == b/|b| (Rodrigues)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = a / _norm(a), b / _norm(b)
    axis = _cross(a, b)
    s, c = _norm(axis), float(np.dot(a, b))
    if s < 1e-9:
        if c > 0:
            return np.eye(3)
        # Opposite vectors: half a turn about any axis perpendicular to a.
        perp = np.cross(a, [1.0, 0.0, 0.0] if abs(a[0]) < 0.9 else [0.0, 1.0, 0.0])
        perp /= np.linalg.norm(perp)
        return 2.0 * np.outer(perp, perp) - np.eye(3)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]]) / s
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def _norm(v: np.ndarray) -> float:
    """``np.linalg.norm`` of one float64 vector, without its dispatch (the same dot, the same sqrt)."""
    return math.sqrt(v.dot(v))


def _row_norms(x: np.ndarray) -> np.ndarray:
    """``np.linalg.norm(x, axis=1)`` of a float64 matrix, without its dispatch (the same products and sum)."""
    return np.sqrt(np.add.reduce(x * x, axis=1))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors, written out (the same products and differences)."""
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def angle_deg(a: Sequence[float], b: Sequence[float]) -> float:
    """The angle between two vectors, in degrees."""
    # Plain floats after the dot products: this runs several times for every window of a live stream, and
    # numpy's per-call cost on a scalar is ten times the arithmetic.
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    c = float(a.dot(b)) / max(_norm(a) * _norm(b), 1e-12)
    return float(np.degrees(np.arccos(min(max(c, -1.0), 1.0))))


def rotate(values: np.ndarray, rot: np.ndarray, acc: slice = slice(0, 3), gyro: slice = slice(3, 6)) -> np.ndarray:
    """A copy of samples (..., 6) with acc and gyro turned by ``rot`` (the same physical rotation)."""
    out = np.array(values, dtype=np.float32, copy=True)
    out[..., acc] = values[..., acc] @ rot.T
    out[..., gyro] = values[..., gyro] @ rot.T
    return out


def is_walking(acc_norm: np.ndarray, sample_rate_hz: float) -> bool:
    """Whether |acc| over one window beats at step frequency (any device orientation)."""
    a = np.asarray(acc_norm, dtype=np.float64) - float(np.mean(acc_norm))
    energy = float(a.dot(a))
    n = len(a)
    if energy <= 0.0 or math.sqrt(energy / n) <= WALK_SD_G:
        return False
    lags = _step_lags(n, float(sample_rate_hz))
    if lags is None:
        return False  # too short a window to see two steps
    # Unbiased normalised autocorrelation at each step period (one C call for all lags).
    ac = np.correlate(a, a, mode="full")[n - 1 + lags]
    return float(np.max(ac / energy * n / (n - lags))) > WALK_AC


@functools.lru_cache(maxsize=16)
def _step_lags(n: int, sample_rate_hz: float) -> np.ndarray | None:
    """The lags (samples) of one step period at STEP_HZ, or None when a window of ``n`` cannot hold two steps."""
    lo, hi = int(sample_rate_hz / STEP_HZ[1]), int(np.ceil(sample_rate_hz / STEP_HZ[0]))
    if hi >= n // 2:
        return None
    lags = np.arange(max(lo, 1), hi + 1)
    lags.flags.writeable = False  # shared by every call
    return lags


@functools.lru_cache(maxsize=16)
def _split_table(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The candidate split samples of a window of ``n`` (every 4th, an eighth from each end) and the sample
    counts before and after each, as columns (read-only: shared by every call)."""
    edge = n // 8
    splits = np.arange(edge, n - edge + 1, 4)
    out = (splits, splits[:, None], (n - splits)[:, None])
    for arr in out:
        arr.flags.writeable = False
    return out


def _jump(acc: np.ndarray, gyro: np.ndarray, sample_rate_hz: float,
          mag: np.ndarray | None = None) -> tuple[int, np.ndarray, np.ndarray] | None:
    """A re-attach inside one window: (split sample, gravity before, gravity after) when the mean acceleration
    turns by more than JUMP_DEG (JUMP_MOVING_DEG if either side moves) while the gyro's net tilting turn over the
    window explains less than JUMP_GYRO_SHARE of it, else None. ``mag``: |acc| per sample, if already known."""
    n = len(acc)
    splits, count_before, count_after = _split_table(n)
    csum = np.zeros((n + 1, 3))
    np.cumsum(acc, axis=0, out=csum[1:])
    before = csum[splits] / count_before
    after = (csum[-1] - csum[splits]) / count_after
    norms = np.maximum(_row_norms(before) * _row_norms(after), 1e-12)
    cos = np.sum(before * after, axis=1) / norms
    i = int(np.argmin(cos))
    turn = float(np.arccos(min(max(float(cos[i]), -1.0), 1.0)))
    turn_deg = float(np.degrees(turn))
    if turn_deg <= JUMP_DEG:
        return None  # below either bound: most windows stop here
    p = int(splits[i])
    mag = _row_norms(acc) if mag is None else mag
    if mag[:p].std() < QUIET_SD_G and mag[p:].std() < QUIET_SD_G:
        big = True  # turn_deg > JUMP_DEG
    else:  # walking's own sway tilts short stretches' means: longer sides, a larger turn
        big = turn_deg > JUMP_MOVING_DEG and n // 4 <= p <= n - n // 4
    if not big:
        return None
    # The gyro's net turn (small-angle sum; a stride's oscillation cancels) about axes that tilt gravity: a turn
    # of heading (about gravity) leaves it where it is, a posture change moves it as far as the device turned.
    net = gyro.sum(axis=0) / sample_rate_hz
    down = before[i] / np.linalg.norm(before[i])
    tilt_seen = float(np.linalg.norm(net - np.dot(net, down) * down))
    return (p, before[i], after[i]) if tilt_seen < JUMP_GYRO_SHARE * turn else None


def stillness(mag: np.ndarray, gyro: np.ndarray) -> tuple[bool, float]:
    """Whether one window is still (|acc| sd below ACC_STILL_SD g, mean |gyro| below GYRO_STILL rad/s), and
    that mean |gyro| (the sway): ``mag`` is |acc| per sample, ``gyro`` the (T, 3) float64 gyro samples."""
    sway = float(_row_norms(gyro).mean())
    return bool(mag.std() < ACC_STILL_SD and sway < GYRO_STILL), sway


def reads_imu(channels: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a bundle's channels (``[{"name", "unit"}, ...]``) are :data:`IMU_LAYOUT`: acc in g, gyro in rad/s."""
    return [(c.get("name"), c.get("unit")) for c in channels] == [tuple(c) for c in IMU_LAYOUT]


class StillBouts:
    """Whether each window of a stream continues a held posture: it and the window before it are both still
    (:func:`stillness`) with mean gravities within CLUSTER_DEG. Such a run of windows is one posture held
    (sitting, standing or lying), which a smoother may treat apart (``hmm:...,still=P``); a gap ends it.

    ``push`` takes the raw windows (T, 6) in model units, in stream order. Only the angle between two windows'
    gravities is used, so it holds in any device orientation.
    """

    def __init__(self) -> None:
        self._prev: np.ndarray | None = None

    def push(self, window: np.ndarray) -> bool:
        """True when this window holds the posture of the one before it."""
        w = np.asarray(window, dtype=np.float64)
        acc = w[:, 0:3]
        still, _sway = stillness(_row_norms(acc), w[:, 3:6])
        g = acc.mean(axis=0)
        held = bool(still and self._prev is not None and angle_deg(self._prev, g) < CLUSTER_DEG)
        self._prev = g if still else None
        return held

    def gap(self) -> None:
        """The next window does not follow this one."""
        self._prev = None


@dataclasses.dataclass
class _Posture:
    """A still posture seen so far: the sum of its windows' unit gravity directions (device frame)."""

    total: np.ndarray
    sway: float  # sum of the windows' mean |gyro| (rad/s)
    windows: int = 1

    @property
    def direction(self) -> np.ndarray:
        return self.total / np.linalg.norm(self.total)


class OrientationCalibrator:
    """Causal device-to-body calibration for a stream of windows; ``push`` each window in order.

    ``push(window)`` takes one raw window (T, 6) in model units (acc in g, gyro in rad/s, channels acc_x..z,
    gyro_x..z) and returns it turned into the reference frame. Consecutive windows are assumed ``hop`` samples
    apart (a gap: call :meth:`gap`). ``calibrated`` says whether the rotation rests on an upright reference
    (``source``: walking, postures, or one of them carried across a re-attach); status changes are queued as
    one-line messages: :meth:`pop_messages` hands them over for stderr.
    """

    def __init__(self, sample_rate_hz: float, window: int, hop: int, *,
                 reference: Sequence[float] = REFERENCE_GRAVITY) -> None:
        self.sample_rate_hz = float(sample_rate_hz)
        self.window, self.hop = int(window), int(hop)
        self.reference = np.asarray(reference, dtype=np.float64)
        self.rotation = np.eye(3)
        self.calibrated = False
        self.source = "provisional"
        self.attachment = 0  # counts the re-attaches seen (each starts a new device frame)
        self._windows = 0
        self._last_jump: int | None = None  # stream sample (window count x hop) of the last jump carried
        self._recent = np.zeros(3)  # exponential mean of the window mean accelerations (provisional guess)
        self._walk_run: list[np.ndarray] = []
        self._walk_total = np.zeros(3)
        self._postures: list[_Posture] = []
        self._upside_down = 0
        self._messages: list[str] = []

    def push(self, window: np.ndarray) -> np.ndarray:
        """Turn one raw window into the reference frame (after learning from it)."""
        self._observe(np.asarray(window, dtype=np.float64))
        return rotate(window, self.rotation)

    def gap(self) -> None:
        """The next window does not follow this one: runs of walking start again."""
        self._walk_run.clear()
        self._last_jump = None

    def pop_messages(self) -> list[str]:
        """Status lines queued since the last call (for stderr)."""
        out, self._messages = self._messages, []
        return out

    def state(self) -> dict[str, Any]:
        """JSON-able status: calibrated or provisional, from what, and the rotation in use."""
        return {"calibrated": self.calibrated, "source": self.source, "rotation": self.rotation.round(6).tolist(),
                "windows": self._windows}

    # ------------------------------------------------------------------------------------------------
    def _now_s(self) -> float:
        return (self._windows - 1) * self.hop / self.sample_rate_hz

    def _say(self, text: str) -> None:
        self._messages.append(f"orientation: {text} at {self._now_s():.1f} s")

    def _observe(self, w: np.ndarray) -> None:
        acc, gyro = w[:, 0:3], w[:, 3:6]
        g = acc.mean(axis=0)
        mag = _row_norms(acc)
        self._windows += 1
        jump = _jump(acc, gyro, self.sample_rate_hz, mag)
        if jump is not None:
            at = (self._windows - 1) * self.hop + jump[0]
            # Windows overlap: the jump one window carried shows again in the next (in raw samples).
            if self._last_jump is None or abs(at - self._last_jump) > self.window // 8:
                self._carry(jump[1], jump[2])
                g = jump[2]
            self._last_jump = at
        self._recent = g if self._windows == 1 else 0.7 * self._recent + 0.3 * g
        if is_walking(mag, self.sample_rate_hz):
            self._on_walk(g)
        else:
            self._walk_run.clear()
        still, sway = stillness(mag, gyro)
        if still:
            self._on_still(g, sway)
        else:
            self._upside_down = 0
        if not self.calibrated:
            self._provisional()

    def _forget(self) -> None:
        """The device frame changed: evidence gathered in the old one no longer applies."""
        self.attachment += 1
        self._walk_run.clear()
        self._walk_total = np.zeros(3)
        self._postures.clear()
        self._upside_down = 0

    def _carry(self, before: np.ndarray, after: np.ndarray) -> None:
        """The device was turned on the body between two quiet stretches: turn the reference with it."""
        self._forget()
        self.rotation = self.rotation @ rotation_between(after, before)
        self._recent = after
        state = f"reference ({self.source}) carried across" if self.calibrated else "provisional rotation carried"
        if self.calibrated and "carried" not in self.source:
            self.source += ", carried"
        self._say(f"device turned by {angle_deg(before, after):.0f} deg without the gyro seeing it (re-attached): "
                  f"{state}")

    def _on_walk(self, g: np.ndarray) -> None:
        self._walk_run.append(g / np.linalg.norm(g))
        if len(self._walk_run) < WALK_WINDOWS:
            return
        run = np.asarray(self._walk_run[-WALK_WINDOWS:])
        mean = run.mean(axis=0)
        if max(angle_deg(r, mean) for r in run) > WALK_SPREAD_DEG:
            return
        if self.calibrated and angle_deg(self.rotation @ mean, self.reference) > RELOCK_DEG:
            self._forget()
            self._walk_run = list(run)
            self.calibrated = False
            # A lock from the postures can be wrong (of two upright postures that never came apart, the pair
            # read backwards); walking outranks it, and the stderr line must not blame a turn that never was.
            cause = ("the lock from the postures was wrong, or the device was turned on the body"
                     if self.source == "postures"
                     else "the device was turned on the body")
            self._say(f"walking {angle_deg(self.rotation @ mean, self.reference):.0f} deg off upright: {cause}")
        self._walk_total = self._walk_total + (run.sum(axis=0) if len(self._walk_run) == WALK_WINDOWS else run[-1])
        was = self.rotation
        self.rotation = rotation_between(self._walk_total, self.reference)
        if not self.calibrated or self.source != "walking":
            self._say(f"calibration locked from walking (was {self.source}; turned by "
                      f"{_turn_deg(was.T @ self.rotation):.0f} deg; device tilt {_turn_deg(self.rotation):.0f} deg)")
        self.calibrated, self.source = True, "walking"

    def _on_still(self, g: np.ndarray, sway: float) -> None:
        if self.calibrated and angle_deg(self.rotation @ g, self.reference) > UPSIDE_DOWN_DEG:
            self._upside_down += 1
            if self._upside_down >= UPSIDE_DOWN_WINDOWS:
                self._forget()
                self.calibrated, self.source = False, "provisional"
                self._say("still upside down in the calibrated frame: the device was turned on the body, "
                          "calibration dropped")
        else:
            self._upside_down = 0
        d = g / np.linalg.norm(g)
        angles = [angle_deg(p.direction, d) for p in self._postures]
        near = self._postures[angles.index(min(angles))] if angles else None
        if near is not None and min(angles) < CLUSTER_DEG:
            near.total, near.sway, near.windows = near.total + d, near.sway + sway, near.windows + 1
        else:
            self._postures = sorted(self._postures, key=lambda p: -p.windows)[:11] + [_Posture(d, sway)]
        self._posture_lock()

    def _standing(self) -> tuple[float, np.ndarray] | None:
        """Standing from the geometry of the postures seen: of an upright pair (both held ``HELD_WINDOWS``), the one
        further from lying, which also sways more than the other two (balance); (its margin over sitting in
        degrees, its direction)."""
        seen = [p for p in self._postures if p.windows >= POSTURE_WINDOWS]
        if len(seen) < 3:
            return None
        # One angle matrix, then plain floats: this runs for every still window of a live stream.
        dirs = np.asarray([p.direction for p in seen])
        ang = np.degrees(np.arccos(np.clip(dirs @ dirs.T, -1.0, 1.0))).tolist()
        sway = [p.sway / p.windows for p in seen]
        wins = [p.windows for p in seen]
        least = max(HELD_WINDOWS, sorted(wins)[-2])  # standing: one of the two postures held longest
        best: tuple[float, int] | None = None
        for i, j in itertools.combinations(range(len(seen)), 2):
            if not UPRIGHT_PAIR_DEG[0] <= ang[i][j] <= UPRIGHT_PAIR_DEG[1]:
                continue
            for lie in range(len(seen)):
                di, dj = ang[i][lie], ang[j][lie]
                stand, sit = (i, j) if di > dj else (j, i)
                if (min(di, dj) >= LYING_DEG and abs(di - dj) >= POSTURE_MARGIN_DEG
                        and sway[stand] > max(sway[sit], sway[lie]) and wins[stand] >= least
                        and wins[sit] >= HELD_WINDOWS
                        and (best is None or abs(di - dj) > best[0])):
                    best = (abs(di - dj), stand)
        return None if best is None else (best[0], dirs[best[1]])

    def _posture_lock(self) -> None:
        """Lock on standing from the postures; once calibrated, re-lock when their standing lies far off."""
        found = self._standing()
        if found is None:
            return
        margin, standing = found
        if self.calibrated:
            off = angle_deg(self.rotation @ standing, self.reference)
            if off <= RELOCK_DEG:
                return
            # Turned on the body with the gyro watching (a handled re-attach): the walk evidence is another frame's.
            self._walk_run.clear()
            self._walk_total = np.zeros(3)
            self.attachment += 1
            self._say(f"standing (from the postures) lies {off:.0f} deg off the calibrated upright: the device was "
                      "turned on the body")
        self.rotation = rotation_between(standing, self.reference)
        self.calibrated, self.source = True, "postures"
        self._say(f"calibration locked from the postures seen (standing = the upright posture {margin:.0f} deg "
                  f"further from lying, swaying most; device tilt {_turn_deg(self.rotation):.0f} deg)")

    def _provisional(self) -> None:
        """Before any reference: as trained when gravity looks it, else the recent gravity taken as upright."""
        tilt = angle_deg(self._recent, self.reference)
        if tilt < WORN_AS_TRAINED_DEG or LYING_BAND_DEG[0] <= tilt <= LYING_BAND_DEG[1]:
            self.rotation = np.eye(3)
        else:
            self.rotation = rotation_between(self._recent, self.reference)


def _turn_deg(rot: np.ndarray) -> float:
    """The angle of a rotation matrix, in degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0))))


def orientation_mode(manifest: Mapping[str, Any]) -> str:
    """A bundle manifest's orientation mode: ``"free"`` or ``"fixed"`` (bundles from before the field: fixed)."""
    return str((manifest.get("orientation") or {}).get("mode", "fixed"))


def calibrator_for(manifest: Mapping[str, Any], hop: int | None = None) -> OrientationCalibrator | None:
    """The calibrator a bundle's manifest asks for (``orientation.mode == "free"``), else None."""
    if orientation_mode(manifest) != "free":
        return None
    spec = manifest["orientation"]
    return OrientationCalibrator(manifest["sample_rate_hz"], manifest["window"], hop or manifest["stride"],
                                 reference=spec.get("reference", REFERENCE_GRAVITY))


def manifest_section(mode: str) -> dict[str, Any]:
    """What the manifest records about orientation (read back by :func:`calibrator_for`)."""
    if mode == "fixed":
        return {"mode": "fixed"}
    return {"mode": "free", "reference": list(REFERENCE_GRAVITY), "reference_from": "walking",
            "calibration": "causal, nothing asked of the wearer: upright from walking (|acc| at step frequency), "
                           "from the geometry of the still postures seen, carried across a re-attach; rotation "
                           "about the vertical learned by augmentation"}


def worn_rotations(values: np.ndarray, sample_rate_hz: float, window: int,
                   hop: int) -> tuple[list[int], list[int], dict[int, np.ndarray]]:
    """A recording's stream with hindsight: the window starts, the attachment (device frame between the
    re-attaches the calibrator sees) of each, and the rotation the stream holds at the end of each attachment."""
    cal = OrientationCalibrator(sample_rate_hz, window, hop)
    starts = list(range(0, values.shape[0] - window + 1, hop))
    attachment, final = [], {}
    for start in starts:
        cal.push(values[start:start + window])
        attachment.append(cal.attachment)
        final[cal.attachment] = cal.rotation
    return starts, attachment, final


def calibrate_recording(values: np.ndarray, sample_rate_hz: float, window: int, hop: int) -> np.ndarray:
    """A whole recording turned as its stream would be, with hindsight: each stretch worn one way by the rotation
    its stream holds at the stretch's end (the most evidence). The training-time twin of the stream (HAPT's
    recordings end with the phone taken off the waist: a stretch of its own)."""
    starts, attachment, final = worn_rotations(values, sample_rate_hz, window, hop)
    out = np.array(values, dtype=np.float32, copy=True)
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else values.shape[0]
        out[start:end] = rotate(values[start:end], final[attachment[i]])
    return out


def calibrated_dataset(ds: Any, window: int, hop: int) -> Any:
    """A copy of a dataset (``hartool.data.Dataset``) whose recordings are each calibrated as a stream would."""
    recs = [dataclasses.replace(r, values=calibrate_recording(r.values, ds.sample_rate_hz, window, hop))
            for r in ds.recordings]
    return dataclasses.replace(ds, recordings=recs)
