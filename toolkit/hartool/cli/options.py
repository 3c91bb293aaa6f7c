"""Option decorators shared by commands: the source options (``--port`` family) that `stream`, `record` and
`enroll` take, collected into one :class:`hartool.wire.spec.SourceSpec` argument named ``source``, and the
``--smooth METHOD`` type."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from ..core.timebase import ACC_UNITS, GYRO_UNITS, TIME_UNITS
from ..wire.autodetect import PROTOCOLS
from ..wire.serialport import DEFAULT_BAUD
from ..wire.spec import SourceSpec

__all__ = ["SOURCE_KEYS", "SmoothType", "source_options"]

SOURCE_KEYS = ("port", "baud", "protocol", "columns", "time_unit", "acc_unit", "gyro_unit", "acc_lsb", "gyro_lsb",
               "reconnect", "units_confirmed")

PORT_HELP = ("Device path (/dev/ttyACM0, /dev/rfcomm0), pyserial URL (socket://HOST:PORT), a listening source for "
             "phones (tcp-listen://HOST:PORT, udp://HOST:PORT, http://HOST:PORT/PATH, mqtt://BROKER:PORT/TOPIC), "
             "'-' (stdin) or a recorded file to replay. Listening sources take URL options: ?hold=S (seconds a "
             "silent sender keeps its stream), ?allow=PEER[,PEER] (only these addresses or networks) and "
             "?token-file=PATH (senders present this token; see SECURITY.md).")


def _source_option_list(port_help: str, required: bool, reconnect: bool) -> list[Callable[[Any], Any]]:
    options = [
        click.option("--port", required=required, default=None, help=port_help),
        # Serial rates in use run from 300 (old modems) to a few Mbaud (USB-CDC boards ignore it).
        click.option("--baud", type=click.IntRange(300, 4_000_000), default=DEFAULT_BAUD, show_default=True),
        click.option("--protocol", type=click.Choice(PROTOCOLS), default="auto", show_default=True,
                     help="Wire format; auto detects text, binary frames and JSON (Sensor Logger, HyperIMU, "
                          "named fields)."),
        click.option("--columns", default=None, metavar="t,acc_x,...",
                     help="Text lines: name each field in order: 't' (timestamp), a model channel, or '-' "
                          "(ignored); fields past the list are ignored. HyperIMU: "
                          "t,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"),
        click.option("--time-unit", type=click.Choice(TIME_UNITS), default="auto", show_default=True,
                     help="Unit of the device's timestamps (auto: from their spacing; Arduino micros() is us). "
                          "Timestamped samples are resampled to the model's rate."),
        click.option("--acc-unit", type=click.Choice(ACC_UNITS), default="g", show_default=True,
                     help="Unit the device sends acceleration in (phones often use m/s2)."),
        click.option("--gyro-unit", type=click.Choice(GYRO_UNITS), default="rad/s", show_default=True,
                     help="Unit the device sends angular rate in (Arduino sketches often use deg/s)."),
        click.option("--acc-lsb", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="g per count, with --acc-unit raw (MPU6050 ±2 g: 6.1035e-5)."),
        click.option("--gyro-lsb", type=click.FloatRange(min=0, min_open=True), default=None,
                     help="deg/s per count, with --gyro-unit raw (MPU6050 ±250 dps: 0.0076336)."),
        click.option("--units-confirmed", is_flag=True,
                     help="The units given are right even if the first second's magnitudes look like others "
                          "(m/s2 vs g, deg/s vs rad/s)."),
    ]
    if reconnect:
        options.append(click.option("--reconnect", is_flag=True,
                                    help="Reopen the device with backoff when it disappears."))
    return options


def source_options(port_help: str = PORT_HELP, *, required: bool = True,
                   reconnect: bool = True) -> Callable[[Callable[..., Any]], Any]:
    """Add the source options to a click command; the command receives them as one ``source: SourceSpec``
    keyword (None when ``--port`` is optional and not given). ``reconnect=False`` leaves ``--reconnect`` out
    (a command that reopens what it can by itself)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def command(*args: Any, **kw: Any) -> Any:
            values = {key: kw.pop(key) for key in SOURCE_KEYS if key in kw}
            kw["source"] = SourceSpec(**values) if values["port"] is not None else None
            return fn(*args, **kw)

        for option in reversed(_source_option_list(port_help, required, reconnect)):
            command = option(command)
        return command

    return decorate


class SmoothType(click.ParamType):
    """``--smooth METHOD`` (none, mean:K, vote:K, hysteresis, hmm, with parameters) or an integer K = mean:K."""

    name = "METHOD"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from ..runtime.classifier import parse_smooth

        try:
            return parse_smooth(value)
        except (ValueError, TypeError) as exc:
            self.fail(str(exc), param, ctx)
