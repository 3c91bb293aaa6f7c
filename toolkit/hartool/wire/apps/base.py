"""What a JSON app schema is: a per-stream object that claims documents, collects them and builds batches.

An app format is one module in this package holding an :class:`AppSchema` subclass (how to recognise a
document, how to read it, and an encoder the simulators use), plus one line in :mod:`.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np

from hartool.wire.batch import DecodedBatch

__all__ = ["AppSchema", "ModelChannels", "RowSchema", "Tally", "xyz_group"]

XYZ = ("x", "y", "z")


def xyz_group(channel_names: Sequence[str], prefix: str) -> tuple[int, ...] | None:
    """Indices of ``prefix_x, _y, _z`` among the model's channels, None when the model lacks them."""
    try:
        return tuple(list(channel_names).index(f"{prefix}_{a}") for a in XYZ)
    except ValueError:
        return None


@dataclass(frozen=True)
class ModelChannels:
    """The model's channel names and where its accelerometer and gyroscope axes sit among them."""

    names: tuple[str, ...]
    acc: tuple[int, ...] | None
    gyro: tuple[int, ...] | None

    @classmethod
    def of(cls, names: Sequence[str]) -> ModelChannels:
        return cls(tuple(names), xyz_group(names, "acc"), xyz_group(names, "gyro"))


class Tally(Protocol):
    """The counters a schema adds to (the JSON decoder's)."""

    bad_lines: int
    bad_batches: int
    samples: int
    unknown_sensors: int
    unknown_names: set[str]


class AppSchema:
    """One app's JSON documents on one stream. Subclasses set the class attributes and implement the methods.

    ``time_unit``/``acc_unit``/``gyro_unit`` are the units the format defines (None: the user's options).
    """

    name: ClassVar[str]
    time_unit: ClassVar[str | None] = None
    acc_unit: ClassVar[str | None] = None
    gyro_unit: ClassVar[str | None] = None

    def __init__(self, channels: ModelChannels, tally: Tally, time_unit: str | None = None) -> None:
        self.channels = channels
        self.tally = tally
        self.user_time_unit = time_unit

    @classmethod
    def claims(cls, doc: dict[str, Any], channel_names: Sequence[str]) -> bool:
        """True when ``doc`` (a JSON object) is this app's document."""
        raise NotImplementedError

    @classmethod
    def refusal(cls, doc: dict[str, Any]) -> str | None:
        """Why a transport should refuse ``doc`` outright (a batch of this app that cannot be used), or None."""
        return None

    def add(self, doc: dict[str, Any]) -> None:
        """Read one claimed document (problems are counted in the tally)."""
        raise NotImplementedError

    def batch(self) -> DecodedBatch | None:
        """The samples of the documents added since the last call, or None."""
        raise NotImplementedError


class RowSchema(AppSchema):
    """A single-clock app: every document is one sample (``row``) with an optional time."""

    def __init__(self, channels: ModelChannels, tally: Tally, time_unit: str | None = None) -> None:
        super().__init__(channels, tally, time_unit)
        self._rows: list[tuple[Any, np.ndarray]] = []

    def row(self, doc: dict[str, Any]) -> tuple[Any, np.ndarray] | None:
        """(time or None, values in model channel order) of a document, None when it is unusable."""
        raise NotImplementedError

    def add(self, doc: dict[str, Any]) -> None:
        got = self.row(doc)
        if got is None:
            self.tally.bad_lines += 1
            return
        t, row = got
        if t is not None:
            try:
                t = int(t) if isinstance(t, int) else float(t)
            except (TypeError, ValueError):
                self.tally.bad_lines += 1
                return
        self._rows.append((t, row))
        self.tally.samples += 1

    def batch(self) -> DecodedBatch | None:
        rows, self._rows = self._rows, []
        if not rows:
            return None
        values = np.stack([r[1] for r in rows]).astype(np.float32)
        times = [r[0] for r in rows]
        # A stream either stamps every sample or none; a batch with some missing is used without times.
        t = np.asarray(times) if all(x is not None for x in times) else None
        unit = self.time_unit if self.time_unit is not None else self.user_time_unit
        return DecodedBatch(values=values, t=t, dropped=0, time_unit=unit, acc_unit=self.acc_unit,
                            gyro_unit=self.gyro_unit)
