"""Kept for importers of the old module: the unit tables live in :mod:`hartool.core.timebase`."""

from __future__ import annotations

from ..core.timebase import ACC_UNITS, GYRO_UNITS, STANDARD_GRAVITY, channel_scales

__all__ = ["ACC_UNITS", "GYRO_UNITS", "STANDARD_GRAVITY", "channel_scales"]
