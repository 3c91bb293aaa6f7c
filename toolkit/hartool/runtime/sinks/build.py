"""The network sinks' types: ``--publish`` (MQTT, :mod:`.mqtt`) and ``--serve`` (the live page, :mod:`.page`).

Everything that can fail fatally (bad URL, unreadable password/CA file, unreachable broker without
``--reconnect``, a taken ``--serve`` port) fails when the sink opens, before the stream opens its source.
"""

from __future__ import annotations

import socket
from typing import Any

from ... import __version__
from . import Sink, SinkContext, SinkOption, SinkType

__all__ = ["MQTT", "PAGE", "default_device_name"]


def default_device_name() -> str:
    """The host name, made safe as one MQTT topic level."""
    name = socket.gethostname().split(".")[0] or "hartool"
    return "".join(c if c.isalnum() or c in "_-" else "-" for c in name)


def _open_publisher(values: dict[str, Any], ctx: SinkContext) -> Sink | None:
    if not values.get("publish"):
        return None
    from ...wire.mqtt import parse_mqtt_url, read_password
    from .mqtt import MqttPublisher

    tls_ca = values.get("tls_ca")
    url = parse_mqtt_url(values["publish"], tls=bool(values.get("tls")) or tls_ca is not None)
    name = values.get("device_name") or default_device_name()
    discovery = bool(values.get("ha_discovery"))
    publisher = MqttPublisher(url, name, password=read_password(values.get("mqtt_password_file")), ca_file=tls_ca,
                              ha_discovery=discovery, queue_size=int(values.get("mqtt_queue") or 2000),
                              wait_for_broker=not ctx.reconnect, on_status=ctx.on_status, version=__version__,
                              model=ctx.model)
    publisher.start()
    ctx.on_status(f"publishing to {url.display()} as {name} ({url.topic(name, 'window')}"
                  f"{', Home Assistant discovery' if discovery else ''})")
    return publisher


def _mqtt_summary(c: dict[str, Any]) -> list[str]:
    if "mqtt_windows" not in c:
        return []
    return [f"  mqtt: {c['mqtt_windows']} windows, delivered {c['mqtt_delivered']}, overflowed {c['mqtt_overflow']}, "
            f"undelivered at exit {c['mqtt_undelivered']}; reconnects {c['mqtt_reconnects']}, "
            f"offline {c['mqtt_offline_s']:.1f} s, refused {c.get('mqtt_refusals', 0)}, "
            f"unreachable {c.get('mqtt_connect_failures', 0)}"]


MQTT = SinkType("mqtt", (
    SinkOption("--publish", "Publish windows to MQTT: mqtt://[USER@]BROKER[:PORT]/PREFIX (mqtts:// for TLS). "
                            "Password from $HARTOOL_MQTT_PASSWORD or --mqtt-password-file.", metavar="URL"),
    SinkOption("--device-name", "Topic level for this device (PREFIX/NAME/...); default: the host name.",
               metavar="NAME"),
    SinkOption("--ha-discovery", "Also publish Home Assistant MQTT discovery config.", "flag", needs="publish"),
    SinkOption("--tls", "Use TLS with mqtt:// (port 8883 by default).", "flag", needs="publish"),
    SinkOption("--tls-ca", "CA certificate file for the broker's TLS certificate (implies --tls).", "file",
               needs="publish"),
    SinkOption("--mqtt-password-file", "File whose first line is the broker password.", "file", needs="publish"),
    SinkOption("--mqtt-queue", "Windows held while the broker is away; older ones overflow (counted).", "int",
               default=2000, minimum=1, maximum=1_000_000),
), _open_publisher, _mqtt_summary)


def _open_page(values: dict[str, Any], ctx: SinkContext) -> Sink | None:
    if not values.get("serve"):
        return None
    from ...wire.door import read_token
    from .page import LivePageSink, parse_host_port

    host, port = parse_host_port(values["serve"])
    token = read_token(values["token_file"]) if values.get("token_file") else None
    others = list(ctx.opened)  # the sinks opened before the page (the publisher): their counters show on it

    def counters() -> dict[str, Any]:
        out = ctx.live_counters()
        for sink in others:
            out.update({k: v for k, v in sink.counters().items() if k != "mqtt_connected"})
        return out

    page = LivePageSink(host, port, ctx.labels, title=ctx.title, counters=counters, token=token)
    page.start()
    ctx.on_status(f"live page on {page.url}{page.server.token_note()}")
    return page


def _page_summary(c: dict[str, Any]) -> list[str]:
    return [f"  live page: {c['page_windows']} windows shown"] if "page_windows" in c else []


PAGE = SinkType("page", (
    SinkOption("--serve", "Serve a live page (current activity, timeline, probabilities, counters) here.",
               metavar="HOST:PORT"),
    SinkOption("--token-file", "The page then needs the token in this file's first line (?token=... once, "
                               "then a cookie; or an Authorization: Bearer header).", "file", needs="serve"),
), _open_page, _page_summary)
