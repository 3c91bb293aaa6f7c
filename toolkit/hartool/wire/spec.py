"""One description of a sample source (``SourceSpec``) and the one way to open it (``open_source``).

`stream`, `record` and `enroll` read the same sources with the same options (port, baud, wire format,
text columns, device time unit, device units); they all take a :class:`SourceSpec` so that an option
added here reaches every command, and checks (units, columns) run once, before anything is opened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..core.ingest import IngestOptions
from ..core.timebase import channel_scales
from .batch import parse_columns
from .reader import ReaderThread
from .serialport import DEFAULT_BAUD
from .sources import open_port

if TYPE_CHECKING:
    from .batch import ColumnLayout
    from .port import Port

__all__ = ["SourceSpec", "open_source"]


@dataclass(frozen=True)
class SourceSpec:
    """Where samples come from and how to read them (the ``--port`` family of options).

    ``port``: a device path, pyserial URL, listening URL (tcp-listen://, udp://, http://, mqtt://), a file
    or ``-``. ``columns``: the text-line layout (``t,acc_x,...``). ``time_unit``: the device's timestamp
    unit (``auto``: detected). ``acc_unit``/``gyro_unit``: what the device sends (``raw`` with ``*_lsb``).
    ``reconnect``: reopen a device that disappears (and let an MQTT broker be away at start).
    ``units_confirmed``: the user vouches for the units (magnitudes that look like other units are not judged).
    """

    port: str
    baud: int = DEFAULT_BAUD
    protocol: str = "auto"
    columns: str | None = None
    time_unit: str = "auto"
    acc_unit: str = "g"
    gyro_unit: str = "rad/s"
    acc_lsb: float | None = None
    gyro_lsb: float | None = None
    reconnect: bool = False
    units_confirmed: bool = False

    @property
    def decoder_time_unit(self) -> str | None:
        """The time unit handed to decoders (None: let them detect it)."""
        return None if self.time_unit == "auto" else self.time_unit

    def check(self, channels: Sequence[Mapping[str, str]]) -> ColumnLayout | None:
        """Check the units and columns against the model's ``channels`` (one-line WireError); the text layout."""
        channel_scales([dict(c) for c in channels], self.acc_unit, self.gyro_unit, self.acc_lsb, self.gyro_lsb)
        if not self.columns:
            return None
        return parse_columns(self.columns, [c["name"] for c in channels])

    def ingest(self, max_gap_periods: float = 4.0, *, refuse_doubtful_units: bool = False) -> IngestOptions:
        """The ingest stage's options for this source (units, time unit; holes over ``max_gap_periods``;
        ``refuse_doubtful_units``: magnitudes that contradict the units raise instead of being a note)."""
        return IngestOptions(acc_unit=self.acc_unit, gyro_unit=self.gyro_unit, acc_lsb=self.acc_lsb,
                             gyro_lsb=self.gyro_lsb, time_unit=self.time_unit, max_gap_periods=max_gap_periods,
                             units_confirmed=self.units_confirmed, refuse_doubtful_units=refuse_doubtful_units)

    def open_port(self) -> Port:
        """Open the byte source (one-line WireError when it cannot be opened)."""
        return open_port(self.port, baud=self.baud, reconnect=self.reconnect)

    def reader(self, port: Port, channels: Sequence[Mapping[str, str]], *, max_queue: int = 1024) -> ReaderThread:
        """The (not started) reader thread that decodes ``port`` (this spec's, already open) into ``channels``."""
        layout = self.check(channels)
        names = [c["name"] for c in channels]
        return ReaderThread(port, protocol=self.protocol, expected_channels=len(names), max_queue=max_queue,
                            reconnect=self.reconnect, channel_names=names, columns=layout,
                            time_unit=self.decoder_time_unit)


def open_source(spec: SourceSpec, channels: Sequence[Mapping[str, str]], *, max_queue: int = 1024) -> ReaderThread:
    """Check ``spec`` against the model's ``channels``, open its port and return the (not started) reader thread."""
    spec.check(channels)  # bad units or columns: one line before anything is opened
    return spec.reader(spec.open_port(), channels, max_queue=max_queue)
