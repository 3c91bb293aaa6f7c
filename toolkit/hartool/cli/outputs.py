"""Click options for stream outputs (``--publish``, ``--serve``, ...) and the glue that opens and closes them.

Use::

    @click.command()
    ...
    @output_options
    def stream(..., **outputs_kw):
        sinks = open_stream_outputs(bundle, outputs_kw, reconnect=reconnect)
        try:
            summary = run_stream(bundle, opts, sinks.fan_out(emit), on_status=status)
        finally:
            extra = sinks.close(summary)   # the sinks' counters; summary_lines(extra) formats them
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .common import status

__all__ = ["OUTPUT_KEYS", "StreamOutputs", "open_stream_outputs", "output_options", "summary_lines"]

OUTPUT_OPTIONS = [
    click.option("--publish", "publish", metavar="URL", default=None,
                 help="Publish windows to MQTT: mqtt://[USER@]BROKER[:PORT]/PREFIX (mqtts:// for TLS). "
                      "Password from $HARTOOL_MQTT_PASSWORD or --mqtt-password-file."),
    click.option("--device-name", default=None, metavar="NAME",
                 help="Topic level for this device (PREFIX/NAME/...); default: the host name."),
    click.option("--ha-discovery", is_flag=True, help="Also publish Home Assistant MQTT discovery config."),
    click.option("--tls", is_flag=True, help="Use TLS with mqtt:// (port 8883 by default)."),
    click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="CA certificate file for the broker's TLS certificate (implies --tls)."),
    click.option("--mqtt-password-file", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="File whose first line is the broker password."),
    click.option("--mqtt-queue", type=click.IntRange(1, 1_000_000), default=2000, show_default=True,
                 help="Windows held while the broker is away; older ones overflow (counted)."),
    click.option("--serve", metavar="HOST:PORT", default=None,
                 help="Serve a live page (current activity, timeline, probabilities, counters) here."),
]
OUTPUT_KEYS = ("publish", "device_name", "ha_discovery", "tls", "tls_ca", "mqtt_password_file", "mqtt_queue",
               "serve")


def output_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the output options to a click command (their values arrive as keyword arguments OUTPUT_KEYS)."""
    for option in reversed(OUTPUT_OPTIONS):
        fn = option(fn)
    return fn


class StreamOutputs:
    """The opened sinks of one stream: ``fan_out(primary)`` is the ``on_window``, ``close(summary)`` ends them."""

    def __init__(self, fan: Any) -> None:
        self._fan = fan
        self.closed: dict[str, Any] | None = None

    def fan_out(self, primary: Callable[[Any], None]) -> Callable[[Any], None]:
        """``primary`` (stdout printing) followed by every sink; ``primary`` itself when there are no sinks."""
        if self._fan is None or not self._fan.sinks:
            return primary
        self._fan.primary = primary
        return self._fan

    def close(self, summary: Any = None) -> dict[str, Any]:
        """Close the sinks once and return their counters (``summary_lines`` formats them)."""
        if self.closed is None:
            self.closed = {} if self._fan is None else self._fan.close(summary)
        return self.closed


def open_stream_outputs(bundle: Path, kw: dict[str, Any], *, reconnect: bool = False) -> StreamOutputs:
    """Open the outputs named by the option values in ``kw`` (fatal problems raise a one-line error)."""
    if not (kw.get("publish") or kw.get("serve")):
        return StreamOutputs(None)
    for flag in ("ha_discovery", "tls", "tls_ca", "mqtt_password_file"):
        if kw.get(flag) and not kw.get("publish"):
            raise click.UsageError(f"--{flag.replace('_', '-')} needs --publish")
    from ..core.bundle import Bundle
    from ..runtime.sinks.build import OutputOptions, open_outputs

    labels = Bundle.load(bundle).labels
    opts = OutputOptions(publish=kw.get("publish"), device_name=kw.get("device_name"), tls=bool(kw.get("tls")),
                         tls_ca=kw.get("tls_ca"), password_file=kw.get("mqtt_password_file"),
                         ha_discovery=bool(kw.get("ha_discovery")), queue_size=int(kw.get("mqtt_queue") or 2000),
                         serve=kw.get("serve"), wait_for_broker=not reconnect)
    fan = open_outputs(opts, labels, title=f"hartool - {opts.device_name or Path(bundle).name}",
                       model=Path(bundle).name, on_status=status)
    return StreamOutputs(fan)


def summary_lines(counters: dict[str, Any]) -> list[str]:
    """Human summary of the sinks' counters (empty when there were no sinks)."""
    lines = []
    if "mqtt_windows" in counters:
        c = counters
        lines.append(
            f"  mqtt: {c['mqtt_windows']} windows, delivered {c['mqtt_delivered']}, overflowed {c['mqtt_overflow']}, "
            f"undelivered at exit {c['mqtt_undelivered']}; reconnects {c['mqtt_reconnects']}, "
            f"offline {c['mqtt_offline_s']:.1f} s, refused {c.get('mqtt_refusals', 0)}, "
            f"unreachable {c.get('mqtt_connect_failures', 0)}")
    if "page_windows" in counters:
        lines.append(f"  live page: {counters['page_windows']} windows shown")
    return lines
