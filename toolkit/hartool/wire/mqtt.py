"""MQTT plumbing shared by every MQTT user in hartool: URL parsing, secrets, TLS and a paho-mqtt client factory.

Users: the ``mqtt://`` subscribe Port (wire/mqttsub.py), the publisher sink (runtime/sinks/mqtt.py) and the
fleet monitor (runtime/monitor.py). They all go through this module so that the URL grammar, the password
rules and the error lines are the same everywhere.

URL grammar::

    mqtt://[USER@]BROKER[:PORT]/PREFIX      plain TCP, default port 1883
    mqtts://[USER@]BROKER[:PORT]/PREFIX     TLS, default port 8883 (also: mqtt:// + tls=True / a CA file)

The password is never part of the URL (nor of any command line or log line): it comes from the
``HARTOOL_MQTT_PASSWORD`` environment variable or from a file (first line, trailing newline stripped).

Typical use::

    url = parse_mqtt_url("mqtt://pi@broker.local/home/har")
    client = make_client(url, client_id="hartool-kitchen", password=read_password(pw_file),
                         will=Will("home/har/kitchen/status", "offline"))
    client.on_message = ...               # optional, before connect()
    connect(client, url, timeout_s=5.0)   # WireError (one line) if the broker is unreachable
    ...
    disconnect(client)

paho-mqtt is imported lazily (it lives in the ``edge`` extra), so importing this module costs nothing.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from hartool.core.errors import WireError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import paho.mqtt.client as paho

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TLS_PORT",
    "PASSWORD_ENV",
    "MqttUrl",
    "Will",
    "connect",
    "disconnect",
    "make_client",
    "parse_mqtt_url",
    "read_password",
]

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
PASSWORD_ENV = "HARTOOL_MQTT_PASSWORD"
DEFAULT_CONNECT_TIMEOUT_S = 5.0
KEEPALIVE_S = 30
_SCHEMES = {"mqtt": False, "mqtts": True, "tcp": False, "ssl": True}
# Topic levels may hold almost anything, but NUL and the wildcards break publishing.
_BAD_TOPIC_CHARS = re.compile(r"[\x00]")


@dataclass(frozen=True)
class MqttUrl:
    """A parsed ``mqtt://`` URL. ``prefix`` (the path) has no leading/trailing ``/``; no password is kept."""

    host: str
    port: int
    prefix: str
    username: str | None = None
    tls: bool = False

    def topic(self, *levels: str) -> str:
        """``PREFIX/level/level``; empty levels are skipped (so an empty prefix gives ``level/level``)."""
        return "/".join(p for p in (self.prefix, *levels) if p)

    def display(self) -> str:
        """The URL for humans and logs (never contains a password)."""
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}/{self.prefix}"

    def __str__(self) -> str:
        return self.display()


@dataclass(frozen=True)
class Will:
    """A last-will message the broker publishes when the client vanishes without a clean disconnect."""

    topic: str
    payload: str
    qos: int = 1
    retain: bool = True


def parse_mqtt_url(
    url: str, *, tls: bool = False, allow_wildcards: bool = False, require_prefix: bool = True
) -> MqttUrl:
    """Parse ``mqtt[s]://[USER@]BROKER[:PORT]/PREFIX`` into an :class:`MqttUrl`.

    ``tls=True`` (the ``--tls`` flag or a CA file) upgrades ``mqtt://`` to TLS and its default port to 8883.
    ``allow_wildcards`` lets ``+``/``#`` through (subscriptions); publishing prefixes must not have them.
    Raises :class:`WireError` with one line for anything malformed, including a password in the URL (whose
    text is never repeated in the message).
    """
    try:
        # '#' is the MQTT multi-level wildcard, not a URL fragment: keep it in the path.
        parts = urlsplit(url.strip().replace("#", "%23"))
        port_given = parts.port
    except ValueError as exc:  # bad port number, bad IPv6 brackets
        raise WireError(f"bad MQTT URL {_redact(url)!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: expected mqtt://[USER@]BROKER[:PORT]/PREFIX")
    if parts.password is not None:
        raise WireError(
            f"bad MQTT URL {_redact(url)!r}: do not put the password in the URL; "
            f"set {PASSWORD_ENV} or use --mqtt-password-file"
        )
    if not parts.hostname:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: no broker host")
    if parts.query:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: '?' is not allowed (the topic prefix is the path)")
    use_tls = _SCHEMES[scheme] or tls
    prefix = unquote(parts.path).strip("/")
    _check_prefix(url, prefix, allow_wildcards=allow_wildcards, require_prefix=require_prefix)
    port = port_given if port_given is not None else (DEFAULT_TLS_PORT if use_tls else DEFAULT_PORT)
    if not 0 < port < 65536:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: port {port} out of range")
    username = unquote(parts.username) if parts.username else None
    return MqttUrl(host=parts.hostname, port=port, prefix=prefix, username=username, tls=use_tls)


def _check_prefix(url: str, prefix: str, *, allow_wildcards: bool, require_prefix: bool) -> None:
    if require_prefix and not prefix:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: no topic prefix (mqtt://BROKER:PORT/PREFIX)")
    if _BAD_TOPIC_CHARS.search(prefix) or "//" in prefix:
        raise WireError(f"bad MQTT URL {_redact(url)!r}: bad topic {prefix!r}")
    if not allow_wildcards and ("+" in prefix or "#" in prefix):
        raise WireError(f"bad MQTT URL {_redact(url)!r}: wildcards '+'/'#' cannot be used in a publish prefix")


def _redact(url: str) -> str:
    """The URL with any ``user:password@`` secret replaced, safe for error lines."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", url)


def read_password(password_file: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None) -> str | None:
    """The broker password: from ``password_file`` (first line) if given, else ``$HARTOOL_MQTT_PASSWORD``.

    Returns None when neither is set. A missing/unreadable file is a :class:`WireError` (the message names
    the file, never its content).
    """
    if password_file is not None:
        path = Path(password_file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise WireError(f"cannot read MQTT password file {path}: {exc.__class__.__name__}") from exc
        lines = text.splitlines()
        return lines[0] if lines else ""
    value = (os.environ if env is None else env).get(PASSWORD_ENV)
    return value if value else None


def make_client(
    url: MqttUrl,
    *,
    client_id: str = "",
    password: str | None = None,
    ca_file: str | os.PathLike[str] | None = None,
    will: Will | None = None,
    reconnect_min_s: int = 1,
    reconnect_max_s: int = 30,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> paho.Client:
    """A configured but not yet connected paho-mqtt 2.x client (``CallbackAPIVersion.VERSION2``, MQTT 3.1.1).

    Credentials, TLS (``url.tls`` or a CA file; the system CAs when no file is given), the last will and the
    reconnect backoff are set here. Set ``on_message``/``on_connect``/... on the returned client, then call
    :func:`connect`. Raises :class:`WireError` when paho-mqtt is missing or the CA file is unusable.
    """
    mqtt = _paho()
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        # clean_session=True: a restarted hartool must not inherit a stale session's queued messages.
        clean_session=True,
    )
    client.connect_timeout = connect_timeout_s
    if url.username or password:
        client.username_pw_set(url.username or "", password)
    if url.tls or ca_file is not None:
        _set_tls(client, ca_file)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    client.reconnect_delay_set(min_delay=reconnect_min_s, max_delay=reconnect_max_s)
    return client


def _set_tls(client: paho.Client, ca_file: str | os.PathLike[str] | None) -> None:
    ca = None if ca_file is None else str(ca_file)
    if ca is not None and not Path(ca).is_file():
        raise WireError(f"MQTT TLS CA file not found: {ca}")
    try:
        client.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise WireError(f"cannot use MQTT TLS CA file {ca}: {exc}") from exc


def connect(client: paho.Client, url: MqttUrl, *, timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
            wait: bool = True) -> None:
    """Connect ``client`` to ``url``'s broker and start paho's network thread (``loop_start``).

    ``wait=True``: block until the broker accepted the connection (CONNACK), at most ``timeout_s``; an
    unreachable broker, a refused login or a timeout raises :class:`WireError` with one line and leaves no
    thread running. ``wait=False``: return at once; paho keeps retrying in the background with the client's
    reconnect backoff (for ``--reconnect`` / sinks that must start without a broker).
    After the first connection paho reconnects by itself after a broker restart; an ``on_connect`` set by
    the caller runs on every (re)connection, so subscribe there.
    """
    if not wait:
        client.connect_async(url.host, url.port, keepalive=KEEPALIVE_S)
        client.loop_start()
        return
    done = threading.Event()
    result: dict[str, Any] = {}
    user_on_connect: Callable[..., None] | None = client.on_connect

    def on_connect(c: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        result["reason"] = reason
        done.set()
        if user_on_connect is not None:
            user_on_connect(c, userdata, flags, reason, properties)

    client.on_connect = on_connect
    try:
        client.connect(url.host, url.port, keepalive=KEEPALIVE_S)
    except (OSError, ValueError) as exc:  # refused, DNS, TLS handshake (ssl.SSLError is an OSError)
        client.on_connect = user_on_connect
        raise WireError(f"MQTT broker {url.display()} unreachable: {_why(exc)}") from exc
    client.loop_start()
    ok = done.wait(timeout_s)
    client.on_connect = user_on_connect
    reason = result.get("reason")
    if ok and reason is not None and not reason.is_failure:
        return
    client.loop_stop()
    client.disconnect()
    if not ok:
        raise WireError(f"MQTT broker {url.display()} did not answer within {timeout_s:g} s")
    raise WireError(f"MQTT broker {url.display()} refused the connection: {reason}")


def _why(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or exc.__class__.__name__
    return str(text)


def disconnect(client: paho.Client) -> None:
    """Disconnect cleanly (the broker drops the last will) and stop paho's network thread; never raises."""
    try:
        client.disconnect()
    except (OSError, ValueError):  # already gone: nothing to say goodbye to
        pass
    # loop_stop joins paho's thread; after disconnect() it exits at its next select (<= 1 s).
    client.loop_stop()


class SubscribeAck:
    """The broker's answer to a subscription (SUBACK), for subscribers that must not miss the first messages.

    Set ``client.on_subscribe = ack.on_subscribe`` before connecting, subscribe in ``on_connect`` and call
    :meth:`wait`: a message published before the broker has the subscription is lost without a trace.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.error: str | None = None

    def on_subscribe(self, client: Any, userdata: Any, mid: int, reason_codes: Any, properties: Any) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        self.error = ", ".join(failed) or None
        self.event.set()

    def wait(self, client: paho.Client, url: MqttUrl, timeout_s: float) -> None:
        """Return once the broker accepted; else disconnect ``client`` and raise :class:`WireError`."""
        if self.event.wait(timeout_s) and self.error is None:
            return
        disconnect(client)
        why = self.error or f"no answer within {timeout_s:g} s"
        raise WireError(f"MQTT broker {url.display()} did not accept the subscription: {why}")


def _paho() -> Any:
    try:
        import paho.mqtt.client as mqtt
    except ImportError as exc:
        raise WireError("MQTT needs paho-mqtt: pip install 'hartool[edge]' (or pip install paho-mqtt)") from exc
    return mqtt
