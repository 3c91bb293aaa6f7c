"""The fleet monitor: every device publishing under an MQTT prefix, as rows of plain data.

It subscribes to ``PREFIX/#`` and reads what :mod:`hartool.runtime.sinks.mqtt` publishes:
``PREFIX/NAME/window`` (window JSON), ``.../state`` (activity), ``.../status`` (online/offline, retained)
and ``.../stats`` (publisher counters, retained). Anything else under the prefix, or a payload that does not
parse, is counted in ``malformed`` and skipped. The CLI (`hartool monitor`) prints :meth:`FleetMonitor.snapshot`.

Everything in a message is untrusted: names, labels and states pass through :func:`hartool.core.safetext.safe_text`
(no control characters, capped) before they are stored, so no table, JSON line or page ever shows them raw.
Memory is bounded however many names a peer invents: a device silent for ``expire_s`` is forgotten, at most
``max_devices`` are tracked (messages of the rest are counted in ``untracked``), and a device's rate is kept in
per-second buckets rather than one timestamp per window.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.safetext import MAX_LABEL, MAX_NAME, safe_text
from ..wire.mqtt import MqttUrl, SubscribeAck, connect, disconnect, make_client

__all__ = ["DEFAULT_EXPIRE_S", "DEFAULT_MAX_DEVICES", "DeviceRow", "FleetMonitor", "MonitorPage"]

RATE_SPAN_S = 10  # windows/s is measured over the last 10 s of arrivals
KINDS = ("window", "state", "status", "stats")
DEFAULT_EXPIRE_S = 600.0
DEFAULT_MAX_DEVICES = 1000
SWEEP_EVERY_S = 1.0  # at the device cap, silent devices are looked for at most this often (not per message)


@dataclass
class DeviceRow:
    """What the monitor knows about one device."""

    name: str
    activity: str | None = None
    confidence: float | None = None
    windows: int = 0  # the device's own count (its last window index + 1), not counted from our start
    received: int = 0  # windows this monitor received from it
    last_window: int | None = None
    drops: int = 0
    dropped_samples: int = 0
    overflow: int = 0
    online: bool | None = None
    last_seen: float | None = None  # last window
    heard: float = 0.0  # last message of any kind (expiry)
    windows_per_s: float = 0.0
    # [whole second, windows in it], oldest first: bounded memory whatever the rate.
    _buckets: deque[list[int]] = field(default_factory=lambda: deque(maxlen=RATE_SPAN_S + 1), repr=False)

    def to_json(self, now: float) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_") and k != "heard"}
        out["windows_per_s"] = round(self.rate(now), 3)
        out["last_seen_s_ago"] = None if self.last_seen is None else round(now - self.last_seen, 3)
        return out

    def arrived(self, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])

    def rate(self, now: float) -> float:
        while self._buckets and now - self._buckets[0][0] > RATE_SPAN_S:
            self._buckets.popleft()
        if not self._buckets:
            return 0.0
        # Over the span the arrivals cover (at least 1 s), so a fresh device does not show a huge rate.
        span = max(1.0, min(float(RATE_SPAN_S), now - self._buckets[0][0]))
        return sum(n for _, n in self._buckets) / span


class FleetMonitor:
    """Subscribes to ``url.prefix/#`` and keeps a :class:`DeviceRow` per device name (thread-safe).

    Devices silent for ``expire_s`` are forgotten (``expired`` counts them); beyond ``max_devices`` new names
    are not tracked and their messages are counted in ``untracked``.
    """

    def __init__(self, url: MqttUrl, *, password: str | None = None, ca_file: str | None = None,
                 client_id: str = "", connect_timeout_s: float = 5.0, expire_s: float = DEFAULT_EXPIRE_S,
                 max_devices: int = DEFAULT_MAX_DEVICES) -> None:
        self.url = url
        self.devices: dict[str, DeviceRow] = {}
        self.malformed = 0
        self.messages = 0
        self.untracked = 0
        self.expired = 0
        self.expire_s = expire_s
        self.max_devices = max(1, max_devices)
        self._swept = 0.0
        self._closing = False
        self._lock = threading.Lock()
        self._timeout = connect_timeout_s
        self._client = make_client(url, client_id=client_id, password=password, ca_file=ca_file,
                                   connect_timeout_s=connect_timeout_s)
        self._suback = SubscribeAck()
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._suback.on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> FleetMonitor:
        """Connect and subscribe; :class:`WireError` (one line) when the broker is unreachable or refuses.

        Returns once the broker confirmed the subscription, so no message published after it is missed.
        """
        connect(self._client, self.url, timeout_s=self._timeout)
        self._suback.wait(self._client, self.url, self._timeout)
        return self

    def close(self) -> None:
        self._closing = True  # a flood still arriving is dropped unread while paho's thread winds down
        disconnect(self._client)

    def __enter__(self) -> FleetMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """``{"now", "prefix", "devices": [row dicts sorted by name], "online", "malformed", "messages",
        "untracked", "expired"}``."""
        now = time.time() if now is None else now
        with self._lock:
            self._expire(now)
            rows = [self.devices[name].to_json(now) for name in sorted(self.devices)]
            counts = {"malformed": self.malformed, "messages": self.messages, "untracked": self.untracked,
                      "expired": self.expired}
        return {"now": now, "prefix": safe_text(self.url.prefix, MAX_LABEL), "devices": rows,
                "online": sum(1 for r in rows if r["online"]), **counts}

    def _expire(self, now: float) -> None:
        """Forget devices silent for ``expire_s`` (caller holds the lock)."""
        self._swept = now
        gone = [name for name, row in self.devices.items() if now - row.heard > self.expire_s]
        for name in gone:
            del self.devices[name]
        self.expired += len(gone)

    # --- paho's thread ----------------------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:  # (re)subscribe on every connection: a restarted broker forgot us
            client.subscribe(self.url.topic("#"), qos=1)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if self._closing:
            return
        with self._lock:
            self.messages += 1
            ok = self._apply(msg.topic, msg.payload, time.time())
            if ok is None:
                self.untracked += 1
            elif not ok:
                self.malformed += 1

    def _apply(self, topic: str, payload: bytes, now: float) -> bool | None:
        """Update the device's row from one message; False when malformed, None when the device is untracked."""
        rest = topic[len(self.url.prefix) + 1:] if self.url.prefix else topic
        parts = rest.split("/")
        if len(parts) != 2 or not parts[0] or parts[1] not in KINDS:
            return False
        name, kind = safe_text(parts[0], MAX_NAME), parts[1]
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            return False
        if kind == "status":
            if text not in ("online", "offline"):
                return False
            return self._update(name, now, online=text == "online")
        if kind == "state":
            if not text or len(text) > 4 * MAX_LABEL:
                return False
            return self._update(name, now, activity=safe_text(text, MAX_LABEL))
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return False
        if kind == "stats":
            return self._apply_stats(name, data, now)
        return self._apply_window(name, data, now)

    def _update(self, name: str, now: float, **values: Any) -> bool | None:
        """Set ``values`` on the device's row (created if there is room); None when the device is untracked."""
        row = self.devices.get(name)
        if row is None:
            if len(self.devices) >= self.max_devices and now - self._swept >= SWEEP_EVERY_S:
                self._expire(now)
            if len(self.devices) >= self.max_devices:
                return None
            row = self.devices[name] = DeviceRow(name)
        row.heard = now
        for key, value in values.items():
            setattr(row, key, value)
        row.drops = row.dropped_samples + row.overflow
        return True

    def _apply_window(self, name: str, data: Any, now: float) -> bool | None:
        if not isinstance(data, dict):
            return False
        label, conf, index = data.get("label"), data.get("confidence"), data.get("window")
        dropped = data.get("dropped", 0)
        if not isinstance(label, str) or not _number(conf) or not _count(index) or not _count(dropped):
            return False
        row = self.devices.get(name)
        ok = self._update(name, now, activity=safe_text(label, MAX_LABEL), confidence=float(conf),
                          last_window=index, windows=index + 1, dropped_samples=dropped, last_seen=now,
                          received=(row.received if row else 0) + 1,
                          online=True if row is None or row.online is None else row.online)
        if ok:
            self.devices[name].arrived(now)
        return ok

    def _apply_stats(self, name: str, data: Any, now: float) -> bool | None:
        if not isinstance(data, dict) or not _count(data.get("mqtt_overflow", 0)):
            return False
        return self._update(name, now, overflow=int(data.get("mqtt_overflow", 0)))


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


class MonitorPage:
    """``hartool monitor --serve``: the monitor's snapshot as a live page, pushed once per ``every_s``."""

    def __init__(self, monitor: FleetMonitor, host: str, port: int, every_s: float = 1.0,
                 token: str | None = None) -> None:
        from .sinks.page import LiveHub, LiveServer

        self.monitor = monitor
        self.hub = LiveHub(lambda _kind, obj: obj, monitor.snapshot, history=1)
        self.server = LiveServer(host, port, self.hub, page="monitor.html", token=token)
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-page", daemon=True)

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> MonitorPage:
        self.server.start()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.hub.push("devices", self.monitor.snapshot())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.server.close()
