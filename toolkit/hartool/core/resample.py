"""Causal linear resampling of device-timed samples onto the model's rate grid, across one or more sensor clocks.

A device rarely samples at the model's rate (phones: 100-500 Hz with jitter, MCUs: 52/104 Hz) and a
phone app may time each sensor on its own clock. :class:`Resampler` takes samples with times in seconds
(since the stream's first sample) per *part* (a sensor on its own clock) and returns the grid samples
``g0 + k / rate`` as soon as every part has a sample at or after them, linearly interpolated. Parts that
feed the same channels are summed (accelerometer + gravity).

It never interpolates across a hole: a step in a part's device time longer than ``max_gap_s`` ends the
segment; the grid restarts at the first time every part has data after the hole, and the caller is told
(``restart``) so that windows restart too. Timestamps that do not advance are dropped and counted
(``backwards``); a jump back by more than ``reset_s`` is a clock restart (a board reset or a 32-bit
``micros()`` wrap), as :class:`hartool.core.timebase.ClockResets` decides: it is treated as a hole and the
part's times are shifted to continue one model period after its last sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .timebase import RESET_S, ClockResets

__all__ = ["GridChunk", "Resampler"]

_EPS = 1e-9  # relative slack for grid points that fall exactly on a sample time
_FEW = 8  # batches up to this size go sample by sample through Resampler._push_one when they can
_MAX_BUFFER = 8192  # samples kept per part while another part lags (bounded memory on a stalled sensor)


@dataclass
class GridChunk:
    """Consecutive samples: times (s), values (n, channels), and whether a hole precedes them.

    ``t`` is None for a device without timestamps (samples taken as they come, one model period apart).
    ``tag`` is what the caller passed with the batch these samples came from (the recorder's label).
    """

    t: np.ndarray | None
    values: np.ndarray
    restart: bool
    tag: object = None


class _Part:
    """One sensor clock: pending samples (from the one before the next grid point on), time offset."""

    def __init__(self, channels: Sequence[int], width: int, clock: ClockResets) -> None:
        self.channels = np.asarray(channels, dtype=np.intp)
        self.t = np.zeros(0, dtype=np.float64)
        self.v = np.zeros((0, width), dtype=np.float64)
        self.last: float | None = None  # newest accepted time (after offset): later ones must advance
        self.hole_ref: float | None = None  # time a hole is measured from (None right after a restart)
        self.clock = clock  # restarts of this sensor's clock, and the shift that continues its time line


class Resampler:
    """Linear resampling onto ``t = g0 + k / rate_hz``; see the module docstring.

    ``parts`` maps a part name to the model channel indices its columns feed (default: one part "imu"
    with all ``channels``). Counters: ``backwards`` (samples dropped), ``gaps`` (holes and clock restarts),
    ``gap_samples`` (grid samples inside holes, never produced), ``clock_resets``, ``overflow`` (samples
    discarded because another part stopped sending), ``samples_in`` and ``samples_out``.
    """

    def __init__(self, rate_hz: float, channels: int, parts: Mapping[str, Sequence[int]] | None = None,
                 max_gap_s: float | None = None, reset_s: float = RESET_S) -> None:
        if rate_hz <= 0:
            raise ValueError("rate_hz must be positive")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self.channels = channels
        self.max_gap_s = max_gap_s if max_gap_s is not None else 4.0 * self.period
        self.reset_s = max(reset_s, self.max_gap_s)
        layout = parts if parts is not None else {"imu": range(channels)}
        self.parts = {name: _Part(list(idx), len(list(idx)), ClockResets(self.period, self.reset_s))
                      for name, idx in layout.items()}
        only = next(iter(self.parts.values())) if len(self.parts) == 1 else None
        self._whole = only is not None and only.channels.tolist() == list(range(channels))
        self.backwards = self.gaps = self.gap_samples = self.overflow = 0
        self.samples_in = self.samples_out = 0
        self._g0: float | None = None  # grid origin of the current segment (None: waiting for every part)
        self._k = 0  # next grid index in the segment
        self._start = -np.inf  # samples before this time belong to the previous segment
        self._restart_pending = False

    @property
    def clock_resets(self) -> int:
        """Clock restarts so far, over every part."""
        return sum(p.clock.count for p in self.parts.values())

    # ------------------------------------------------------------------------------------------------
    def push(self, name: str, t_s: np.ndarray, values: np.ndarray) -> list[GridChunk]:
        """Add samples of part ``name`` (times in s, values (n, k)); return the grid samples now covered."""
        part = self.parts[name]
        t = np.asarray(t_s, dtype=np.float64)
        if part.clock.offset:
            t = t + part.clock.offset
        v = np.asarray(values, dtype=np.float64).reshape(len(t), -1)
        self.samples_in += len(t)
        out: list[GridChunk] = []
        if self._whole and len(t) <= _FEW:
            # A live stream's few lines per read, one by one while nothing unusual happens (general path after).
            done = 0
            while done < len(t) and self._g0 is not None and part.hole_ref is not None:
                one = self._push_one(part, float(t[done]), v[done:done + 1])
                if one is None:
                    break
                out += one
                done += 1
            if done == len(t):
                return _merged(out)
            t, v = t[done:], v[done:]
        while len(t):
            t, v, hole_at, jump = self._accept(part, t, v)
            head = len(t) if hole_at is None else hole_at
            self._append(part, t[:head], v[:head])
            out.extend(self._emit())
            if hole_at is None:
                break
            before = part.last if part.last is not None else float(t[hole_at])
            t, v = t[hole_at:], v[hole_at:]
            if jump:
                t = part.clock.continue_after(before, t)
            self._hole(before, float(t[0]))
        return out

    def _push_one(self, part: _Part, tn: float, vn: np.ndarray) -> list[GridChunk] | None:
        """One sample of the only clock, advancing by less than a hole: what a live stream sends one line at
        a time. The same grid and arithmetic as :meth:`push` in a few operations (a 20x replay spent most of
        its CPU in the general path); None when the sample needs the general path (hole, jump, backwards)."""
        last = part.last
        assert last is not None and self._g0 is not None
        step = tn - last
        if not 0 < step <= self.max_gap_s:
            return None
        v_last = part.v[-1]
        # Every grid point up to ``last`` went out already, so the newest sample is all the next one needs.
        part.t, part.v = np.array([tn]), vn
        part.last = part.hole_ref = tn
        first, n = self._due(tn)
        if not n:
            return []
        if n == 1:  # the usual case at or below the model's rate: Python floats, the same IEEE arithmetic
            wf = (first - last) / step
            wf = 0.0 if abs(wf) < _EPS else 1.0 if abs(wf - 1.0) < _EPS else wf
            grid, out = np.array([first]), (v_last + (vn[0] - v_last) * wf)[None]
        else:
            grid = self._g0 + (self._k + np.arange(n)) * self.period
            w = _snapped((grid - last) / step)
            out = v_last + (vn[0] - v_last) * w[:, None]
        return self._out(grid, out)

    def _accept(self, part: _Part, t: np.ndarray, v: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, int | None, bool]:
        """Drop non-advancing samples (counted); find the first hole or clock jump.

        Returns (t, v, index, is_jump): the samples still to handle, and the index of the first sample
        after a hole (None: no hole). Samples after a clock jump are returned unfiltered.
        """
        if part.last is not None and part.hole_ref is not None and len(t):
            # The usual case, in few numpy calls: every sample advances and no step is a hole.
            first = float(t[0]) - part.last
            if len(t) == 1:
                if 0 < first <= self.max_gap_s:
                    return t, v, None, False
            else:
                steps = t[1:] - t[:-1]
                if 0 < first <= self.max_gap_s and steps.min() > 0 and steps.max() <= self.max_gap_s:
                    return t, v, None, False
        prev_max, cut = part.clock.scan(t, part.last)
        keep = t[:cut] > prev_max[:cut]
        if not keep.all():
            self.backwards += int((~keep).sum())
        tk, vk = t[:cut][keep], v[:cut][keep]
        ref = part.hole_ref if part.hole_ref is not None else (tk[0] if len(tk) else 0.0)
        steps = np.diff(np.concatenate(([ref], tk))) if len(tk) else np.zeros(0)
        holes = np.flatnonzero(steps > self.max_gap_s)
        if len(holes):
            rest_t, rest_v = np.concatenate((tk, t[cut:])), np.concatenate((vk, v[cut:]))
            return rest_t, rest_v, int(holes[0]), False
        if cut < len(t):
            return np.concatenate((tk, t[cut:])), np.concatenate((vk, v[cut:])), len(tk), True
        return tk, vk, None, False

    def _append(self, part: _Part, t: np.ndarray, v: np.ndarray) -> None:
        if not len(t):
            return
        part.t = np.concatenate((part.t, t)) if len(part.t) else t
        part.v = np.concatenate((part.v, v)) if len(part.v) else v
        part.last = part.hole_ref = float(t[-1])
        if len(part.t) > _MAX_BUFFER:
            cut = len(part.t) - _MAX_BUFFER
            self.overflow += cut
            part.t, part.v = part.t[cut:], part.v[cut:]

    def _hole(self, before: float, after: float) -> None:
        """Count a hole from ``before`` to ``after`` (s) and restart the grid after it."""
        self.gaps += 1
        self.gap_samples += max(0, int(round((after - before) * self.rate_hz)) - 1)
        self.restart(after)

    def restart(self, start: float | None = None) -> None:
        """Forget every part's samples before ``start`` (default: all) and begin a new grid segment."""
        for part in self.parts.values():
            part.hole_ref = None
            if start is None:
                part.t, part.v = part.t[:0], part.v[:0]
            else:
                keep = part.t >= start
                part.t, part.v = part.t[keep], part.v[keep]
        self._start = start if start is not None else max(
            (p.last for p in self.parts.values() if p.last is not None), default=-np.inf) + _EPS
        self._g0 = None
        self._restart_pending = True

    # ------------------------------------------------------------------------------------------------
    def _emit(self) -> list[GridChunk]:
        parts = self.parts.values()
        if any(not len(p.t) for p in parts):
            return []
        if self._g0 is None:
            for p in parts:
                keep = p.t >= self._start
                p.t, p.v = p.t[keep], p.v[keep]
            if any(not len(p.t) for p in parts):
                return []
            self._g0, self._k = max(float(p.t[0]) for p in parts), 0
        _first, n = self._due(min(float(p.t[-1]) for p in parts))
        if not n:
            return []
        grid = self._g0 + (self._k + np.arange(n)) * self.period
        out = None if self._whole else np.zeros((n, self.channels), dtype=np.float64)
        for p in parts:
            x = _interp(p.t, p.v, grid)
            if out is None:
                out = x  # one clock for every channel, in order: no scatter needed
            else:
                out[:, p.channels] += x
            keep_from = max(0, int(np.searchsorted(p.t, grid[-1] + self.period, side="right")) - 1)
            p.t, p.v = p.t[keep_from:], p.v[keep_from:]
        assert out is not None
        return self._out(grid, out)

    def _due(self, covered: float) -> tuple[float, int]:
        """The next grid time, and how many grid points from it on lie at or before ``covered`` (to rounding)."""
        assert self._g0 is not None
        first = self._g0 + self._k * self.period
        if covered < first - _EPS * max(1.0, abs(first)):
            return first, 0
        return first, int(np.floor((covered - first) * self.rate_hz
                                   + _EPS * max(1.0, abs(covered) * self.rate_hz))) + 1

    def _out(self, grid: np.ndarray, values: np.ndarray) -> list[GridChunk]:
        """Grid samples produced: advance the grid index, count them, carry a pending restart flag."""
        self._k += len(grid)
        self.samples_out += len(grid)
        restart, self._restart_pending = self._restart_pending, False
        return [GridChunk(grid, values, restart)]


def _merged(chunks: list[GridChunk]) -> list[GridChunk]:
    """Consecutive chunks as one (when no restart lies between them)."""
    if len(chunks) < 2 or any(c.restart for c in chunks[1:]):
        return chunks
    return [GridChunk(np.concatenate([c.t for c in chunks if c.t is not None]),
                      np.concatenate([c.values for c in chunks]), chunks[0].restart)]


def _snapped(w: np.ndarray) -> np.ndarray:
    """Interpolation weights, in place: a grid point on a sample time (to rounding) takes that sample exactly,
    so a device at the model's rate streams its values unchanged."""
    w[np.abs(w) < _EPS] = 0.0
    w[np.abs(w - 1.0) < _EPS] = 1.0
    return w


def _interp(t: np.ndarray, v: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Linear interpolation of the rows of ``v`` (at ``t``, increasing) at ``grid`` (inside [t0, t_end])."""
    if len(t) == 1:
        return np.repeat(v[:1], len(grid), axis=0)
    i = np.searchsorted(t, grid, side="right") - 1
    np.minimum(np.maximum(i, 0, out=i), len(t) - 2, out=i)  # np.clip costs more on tiny arrays
    t0, t1 = t[i], t[i + 1]
    w = _snapped((grid - t0) / (t1 - t0))
    v0 = v[i]
    return v0 + (v[i + 1] - v0) * w[:, None]
