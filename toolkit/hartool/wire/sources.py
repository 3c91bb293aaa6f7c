"""``--port`` values to byte sources: the one table of URL schemes, and :func:`open_port`.

Listening transports are imported only when their scheme is used, so a serial open never loads an HTTP
server or paho-mqtt.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from hartool.core.errors import WireError
from hartool.wire.fileports import FilePort, RecordingReplayPort, StdinPort, is_csv_recording
from hartool.wire.net import split_host_port, split_options
from hartool.wire.port import Port
from hartool.wire.serialport import DEFAULT_BAUD, SerialPort

__all__ = ["LISTEN_SCHEMES", "open_port"]


def _tcp(spec: str, timeout: float, reconnect: bool) -> Port:
    from hartool.wire.tcp import TcpListenPort

    base, options = split_options(spec)
    host, port, _ = split_host_port(base, "tcp-listen")
    return TcpListenPort(host, port, timeout, **options)


def _udp(spec: str, timeout: float, reconnect: bool) -> Port:
    from hartool.wire.udp import UdpPort

    base, options = split_options(spec)
    if "policy" in options and options["policy"].token is not None:
        raise WireError(f"{base}: a datagram carries no token; admit senders with allow=PEER[,PEER]")
    host, port, _ = split_host_port(base, "udp")
    return UdpPort(host, port, timeout, **options)


def _http(spec: str, timeout: float, reconnect: bool) -> Port:
    from hartool.wire.httppush import HttpPushPort

    base, options = split_options(spec)
    host, port, path = split_host_port(base, "http", default_port=80)
    return HttpPushPort(host, port, path or "/", timeout, **options)


def _mqtt(spec: str, timeout: float, reconnect: bool) -> Port:
    from hartool.wire.mqttsub import MqttSubscribePort

    base, options = split_options(spec)
    if "policy" in options:  # the phones talk to the broker, not to us: its logins and ACLs decide
        raise WireError(f"{base}: allow= and token-file= are for tcp-listen://, udp:// and http://; an MQTT "
                        "source hears the broker, so let the broker check who publishes (see SECURITY.md)")
    return MqttSubscribePort(base, timeout, reconnect, **options)


#: Listening sources by URL scheme: ``opener(spec, timeout, reconnect)``.
LISTEN_SCHEMES: dict[str, Callable[[str, float, bool], Port]] = {
    "tcp-listen": _tcp,
    "udp": _udp,
    "http": _http,
    "mqtt": _mqtt,
    "mqtts": _mqtt,
}


def open_port(
    spec: str,
    baud: int = DEFAULT_BAUD,
    timeout: float = 0.05,
    dtr: bool | None = True,
    rts: bool | None = None,
    reconnect: bool = False,
) -> Port:
    """Open a byte source from a ``--port`` value.

    * ``tcp-listen://``, ``udp://``, ``http://``, ``mqtt://``: a listening source (:data:`LISTEN_SCHEMES`;
      ``reconnect`` lets an MQTT broker be away at start).
    * ``-``: stdin (binary).
    * ``file:PATH`` or a path to a regular file: replay. A ``hartool record`` CSV is replayed as text lines
      with a millisecond timestamp column; any other file is replayed as the raw bytes it holds.
    * anything else: a serial device path (``/dev/ttyACM0``, ``/dev/pts/5``) or a pyserial URL
      (``socket://HOST:PORT``, ``rfc2217://HOST:PORT``, ``loop://``), opened at ``baud`` with DTR/RTS set
      before opening (``None`` leaves pyserial's default).

    Raises :class:`WireError` with one line saying why (and what to try) when it cannot be opened.
    """
    text = str(spec).strip()
    if not text:
        raise WireError("no port given (e.g. --port /dev/ttyACM0)")
    if text == "-":
        return StdinPort(timeout=timeout)
    opener = LISTEN_SCHEMES.get(text.split("://", 1)[0].lower()) if "://" in text else None
    if opener is not None:
        return opener(text, timeout, reconnect)
    path: Path | None = None
    if text.startswith("file:"):
        path = Path(text[len("file:") :]).expanduser()
        if not path.is_file():
            raise WireError(f"cannot open {text}: no such file")
    elif "://" not in text:
        candidate = Path(text).expanduser()
        try:
            if stat.S_ISREG(candidate.stat().st_mode):
                path = candidate
        except OSError:
            path = None  # not there: let the serial open produce the helpful message
    if path is not None:
        return RecordingReplayPort(path) if is_csv_recording(path) else FilePort(path, timeout=timeout)
    return SerialPort(text, baud=baud, timeout=timeout, dtr=dtr, rts=rts)
