"""One call that plays a recording as a phone app or an MCU would send it: ``play_app(kind, ...)``.

``kind`` is one of :data:`APP_KINDS`; ``to`` is where the host listens, in the form the host's ``--port``
uses (``tcp-listen://HOST:PORT`` / ``udp://HOST:PORT`` / ``http://HOST:PORT/PATH`` /
``mqtt://BROKER:PORT/TOPIC``) or, for the socket kinds, plain ``HOST:PORT``.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import numpy as np

from hartool.core.errors import WireError
from hartool.sim.apps import Packet, hyperimu_packets, mcu_packets, sensorlogger_packets
from hartool.sim.senders import SendStats, post_http, publish_mqtt, send_tcp, send_udp

__all__ = ["APP_KINDS", "DEFAULT_JITTER_MS", "DEFAULT_RATES", "app_packets", "parse_host_port", "play_app"]

APP_KINDS = ("hyperimu-tcp", "hyperimu-udp", "sensorlogger-http", "sensorlogger-mqtt", "mcu-tcp")
#: The rate each sender uses when none is given (phones ~100 Hz, the LSM6DS3's 104 Hz).
DEFAULT_RATES = {"hyperimu-tcp": 100.0, "hyperimu-udp": 100.0, "sensorlogger-http": 100.0,
                 "sensorlogger-mqtt": 100.0, "mcu-tcp": 104.0}
#: Timestamp jitter when none is given: phones schedule sensor reads through the OS (ms), an MCU's timer
#: interrupt is exact to a few tens of µs.
DEFAULT_JITTER_MS = {"hyperimu-tcp": 2.0, "hyperimu-udp": 2.0, "sensorlogger-http": 2.0,
                     "sensorlogger-mqtt": 2.0, "mcu-tcp": 0.05}


def parse_host_port(to: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``SCHEME://HOST:PORT`` -> (host, port); WireError if there is no port."""
    text = to if "://" in to else f"x://{to}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise WireError(f"bad --to {to!r}: {exc}") from exc
    if port is None or not parts.hostname:
        raise WireError(f"bad --to {to!r}: expected HOST:PORT")
    return parts.hostname, port


def app_packets(kind: str, values: np.ndarray, src_rate_hz: float, *, rate_hz: float | None = None,
                jitter_ms: float | None = None, fmt: str = "csv", batch_s: float = 0.2, seed: int = 0) -> list[Packet]:
    """The packets ``kind`` sends for the recording ``values`` (g, rad/s at ``src_rate_hz``)."""
    if kind not in APP_KINDS:
        raise ValueError(f"kind must be one of {', '.join(APP_KINDS)}, got {kind!r}")
    rate = rate_hz or DEFAULT_RATES[kind]
    jitter_ms = DEFAULT_JITTER_MS[kind] if jitter_ms is None else jitter_ms
    if kind.startswith("hyperimu"):
        return hyperimu_packets(values, src_rate_hz, rate, jitter_ms, fmt=fmt if kind == "hyperimu-tcp" else "csv",
                                seed=seed)
    if kind.startswith("sensorlogger"):
        return sensorlogger_packets(values, src_rate_hz, rate, jitter_ms, batch_s=batch_s, seed=seed)
    return mcu_packets(values, src_rate_hz, rate, jitter_ms, seed=seed)


def play_app(kind: str, packets: list[Packet], to: str, *, speed: float = 1.0,
             stop: threading.Event | None = None, drop_every: int | None = None,
             connect_timeout_s: float = 10.0) -> SendStats:
    """Send ``packets`` (from :func:`app_packets`) as ``kind`` does to ``to``; returns what was sent."""
    if kind in ("hyperimu-tcp", "mcu-tcp"):
        host, port = parse_host_port(to)
        return send_tcp(packets, host, port, speed, stop, connect_timeout_s=connect_timeout_s,
                        drop_every=drop_every)
    if kind == "hyperimu-udp":
        host, port = parse_host_port(to)
        return send_udp(packets, host, port, speed, stop)
    if kind == "sensorlogger-http":
        url = to if "://" in to else f"http://{to}/"
        return post_http(packets, url, speed, stop, connect_timeout_s=connect_timeout_s)
    if kind == "sensorlogger-mqtt":
        return publish_mqtt(packets, to, speed, stop)
    raise ValueError(f"kind must be one of {', '.join(APP_KINDS)}, got {kind!r}")
