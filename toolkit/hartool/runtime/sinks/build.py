"""Build the sinks `hartool stream` was asked for (``--publish``, ``--serve``) into one :class:`FanOut`.

Everything that can fail fatally (bad URL, unreadable password/CA file, unreachable broker without
``--reconnect``, a taken ``--serve`` port) fails here, before the stream opens its source.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ... import __version__
from . import FanOut, Sink

__all__ = ["OutputOptions", "default_device_name", "open_outputs"]


@dataclass(frozen=True)
class OutputOptions:
    """The outputs of one stream besides stdout."""

    publish: str | None = None
    device_name: str | None = None
    tls: bool = False
    tls_ca: str | None = None
    password_file: str | None = None
    ha_discovery: bool = False
    queue_size: int = 2000
    serve: str | None = None
    wait_for_broker: bool = True  # False with --reconnect: start without a broker and keep trying

    @property
    def any(self) -> bool:
        return bool(self.publish or self.serve)


def default_device_name() -> str:
    """The host name, made safe as one MQTT topic level."""
    name = socket.gethostname().split(".")[0] or "hartool"
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in name)


def open_outputs(opts: OutputOptions, labels: Sequence[str], *, title: str = "hartool", model: str = "",
                 on_status: Callable[[str], None] | None = None) -> FanOut:
    """Start the requested sinks and return them as a fan-out (call it per window; ``close(summary)`` at the end).

    A stream driver that calls ``fan.attach_live_counters(reader.stats)`` adds its running counters (bad
    lines, reconnects) to the page. Raises :class:`hartool.core.errors.WireError` with one line for anything fatal; sinks already started
    are closed again before raising.
    """
    say = on_status or (lambda _m: None)
    sinks: list[Sink] = []
    fan = FanOut(sinks)
    try:
        publisher = _open_publisher(opts, model, say) if opts.publish else None
        if publisher is not None:
            sinks.append(publisher)
        if opts.serve:
            sinks.append(_open_page(opts.serve, labels, title, publisher, fan.live_counters, say))
    except BaseException:
        for sink in reversed(sinks):
            sink.close(None)
        raise
    fan.sinks = sinks
    return fan


def _open_publisher(opts: OutputOptions, model: str, say: Callable[[str], None]) -> Sink:
    from ...wire.mqtt import parse_mqtt_url, read_password
    from .mqtt import MqttPublisher

    url = parse_mqtt_url(opts.publish or "", tls=opts.tls or opts.tls_ca is not None)
    name = opts.device_name or default_device_name()
    publisher = MqttPublisher(url, name, password=read_password(opts.password_file), ca_file=opts.tls_ca,
                              ha_discovery=opts.ha_discovery, queue_size=opts.queue_size,
                              wait_for_broker=opts.wait_for_broker, on_status=say, version=__version__,
                              model=model)
    publisher.start()
    say(f"publishing to {url.display()} as {name} ({url.topic(name, 'window')}"
        f"{', Home Assistant discovery' if opts.ha_discovery else ''})")
    return publisher


def _open_page(serve: str, labels: Sequence[str], title: str, publisher: Sink | None,
               live_counters: Callable[[], dict[str, Any]], say: Callable[[str], None]) -> Sink:
    from .page import LivePageSink, parse_host_port

    host, port = parse_host_port(serve)

    def counters() -> dict[str, Any]:
        out = live_counters()
        if publisher is not None:
            out.update({k: v for k, v in publisher.counters().items() if k != "mqtt_connected"})
        return out

    page = LivePageSink(host, port, labels, title=title, counters=counters)
    page.start()
    say(f"live page on {page.url}")
    return page
