"""MQTT publisher sink: each window to ``PREFIX/NAME/window``, the activity to ``.../state``, liveness to ``.../status``.

Topics (``PREFIX`` from the URL, ``NAME`` the device name):

* ``PREFIX/NAME/window``  every window's JSON (the same fields as ``stream --jsonl``), QoS 1, not retained;
* ``PREFIX/NAME/state``   the current activity after smoothing (plain label), QoS 1, retained, on change only;
* ``PREFIX/NAME/status``  ``online`` (retained) while connected; the broker's last will says ``offline``;
* ``PREFIX/NAME/stats``   the publisher's counters as JSON, retained, every few seconds and at the end;
* ``homeassistant/sensor/hartool_NAME/.../config`` with ``ha_discovery``: Home Assistant MQTT discovery.

``on_window`` only appends to a bounded queue (the classifier never waits for the network). A publisher
thread hands windows to paho while connected, at most ``max_inflight`` unacknowledged at a time; while the
broker is away the queue fills and its overflow (oldest first) is counted. paho reconnects with backoff and
resends unacknowledged QoS 1 messages; every window ends as delivered (PUBACK), overflowed or undelivered
at close, so ``windows == delivered + overflow + undelivered``.

Outages are said as they happen and counted: a broker that refuses the login (``mqtt_refusals``, e.g. a
wrong password under ``--reconnect``), one that cannot be reached (``mqtt_connect_failures``) and the time
without a connection (``mqtt_offline_s``, from the start when the sink starts without a broker). Each kind
of problem is said once when it starts (and again if its reason changes), not at every retry.

Names: a device name is one topic level without control characters. Home Assistant ids and the client id
are made of letters, digits, ``_`` and ``-``; when that changed the name (``kitchen.pi``), a short hash of
the real name is appended, so ``kitchen.pi`` and ``kitchen_pi`` never share an entity or a session.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ...core.errors import WireError
from ...core.safetext import MAX_LABEL, MAX_NAME, safe_text
from ...wire.mqtt import MqttUrl, Will, connect, disconnect, make_client

__all__ = ["DEFAULT_QUEUE", "MqttPublisher", "discovery_messages", "valid_device_name"]

DEFAULT_QUEUE = 2000
MAX_INFLIGHT = 100
STATS_EVERY_S = 5.0
DRAIN_TIMEOUT_S = 5.0
POLL_S = 0.02  # the publisher thread looks for new windows this often (on_window does not wake it)
RECONNECT_MAX_S = 8  # backoff cap: a restarted broker gets its windows back within seconds
OFFLINE_TIMEOUT_S = 10.0  # generous: on a loaded Pi the PUBACK of the goodbye can take a while
HA_PREFIX = "homeassistant"


def valid_device_name(name: str) -> str:
    """``name`` if it can be one topic level (no ``/``, ``+``, ``#``, no control characters, not empty, at most
    MAX_NAME characters), else :class:`WireError` (naming it without its control characters)."""
    if not name or any(c in name for c in "/+#") or name.strip() != name or safe_text(name, MAX_NAME) != name:
        raise WireError(f"bad device name {safe_text(name, MAX_NAME)!r}: one topic level of at most {MAX_NAME} "
                        "characters without '/', '+', '#', control characters or spaces at the ends")
    return name


def _slug(name: str) -> str:
    """ASCII id for Home Assistant and the client id; a hash suffix keeps distinct names distinct."""
    slug = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in name)
    if slug != name:
        slug += "_" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return slug


def discovery_messages(url: MqttUrl, name: str, *, version: str = "",
                       model: str = "", ha_prefix: str = HA_PREFIX) -> list[tuple[str, str]]:
    """(topic, JSON payload) pairs of Home Assistant MQTT discovery config: an activity and a confidence sensor."""
    slug = _slug(name)
    device = {"identifiers": [f"hartool_{slug}"], "name": f"hartool {name}", "manufacturer": "hartool",
              "model": model or "HAR classifier", "sw_version": version}
    common = {"availability_topic": url.topic(name, "status"), "payload_available": "online",
              "payload_not_available": "offline", "device": device}
    activity = {**common, "name": "Activity", "unique_id": f"hartool_{slug}_activity",
                "object_id": f"hartool_{slug}_activity", "state_topic": url.topic(name, "state"),
                # No enum device_class: an enrolled head may add labels the bundle's list does not name.
                "icon": "mdi:run",
                "json_attributes_topic": url.topic(name, "window"),
                "json_attributes_template": "{{ {'confidence': value_json.confidence, 'window': value_json.window} "
                                            "| tojson }}"}
    confidence = {**common, "name": "Activity confidence", "unique_id": f"hartool_{slug}_confidence",
                  "object_id": f"hartool_{slug}_confidence", "state_topic": url.topic(name, "window"),
                  "value_template": "{{ (value_json.confidence * 100) | round(1) }}",
                  "unit_of_measurement": "%", "state_class": "measurement", "icon": "mdi:percent"}
    base = f"{ha_prefix}/sensor/hartool_{slug}"
    return [(f"{base}/activity/config", json.dumps(activity)), (f"{base}/confidence/config", json.dumps(confidence))]


class MqttPublisher:
    """Publishes windows of one device to an MQTT broker from its own thread (see the module docstring)."""

    def __init__(self, url: MqttUrl, device_name: str, *, password: str | None = None,
                 ca_file: str | None = None, ha_discovery: bool = False, queue_size: int = DEFAULT_QUEUE,
                 wait_for_broker: bool = True, connect_timeout_s: float = 5.0,
                 on_status: Callable[[str], None] | None = None, version: str = "", model: str = "") -> None:
        self.url = url
        self.name = valid_device_name(device_name)
        self._say = on_status or (lambda _m: None)
        self._discovery = discovery_messages(url, self.name, version=version, model=model) \
            if ha_discovery else []
        self._topics = {k: url.topic(self.name, k) for k in ("window", "state", "status", "stats")}
        self._queue: deque[Any] = deque()  # WindowPrediction objects, oldest first
        self._queue_size = max(1, queue_size)
        self._wake_at = max(1, min(self._queue_size // 4, MAX_INFLIGHT // 2))
        self._cond = threading.Condition()
        self._inflight: list[Any] = []  # paho MQTTMessageInfo of windows not yet acknowledged
        self._in_hand = 0  # taken from the queue by the publisher thread, not yet handed to paho
        self._connected = False
        self._closing = False
        self._ever_connected = False
        self._lost_at: float | None = None
        self._trouble: str | None = None  # the outage reason last said, so each is said once
        self._state: str | None = None
        self._published_state: str | None = None
        self.stats = {"mqtt_windows": 0, "mqtt_delivered": 0, "mqtt_overflow": 0, "mqtt_undelivered": 0,
                      "mqtt_reconnects": 0, "mqtt_disconnects": 0, "mqtt_offline_s": 0.0, "mqtt_state_changes": 0,
                      "mqtt_queue_peak": 0, "mqtt_refusals": 0, "mqtt_connect_failures": 0}
        self._client = make_client(url, client_id=f"hartool-{_slug(self.name)}", password=password,
                                   ca_file=ca_file, will=Will(self._topics["status"], "offline"),
                                   connect_timeout_s=connect_timeout_s, reconnect_max_s=RECONNECT_MAX_S)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.max_inflight_messages_set(MAX_INFLIGHT)
        self._wait = wait_for_broker
        self._timeout = connect_timeout_s
        self._thread = threading.Thread(target=self._run, name=f"mqtt-publish-{self.name}", daemon=True)

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> MqttPublisher:
        """Connect (WireError if the broker is unreachable and ``wait_for_broker``) and start publishing."""
        if not self._wait:
            with self._cond:
                self._lost_at = time.monotonic()  # offline until the first connection: counted like an outage
        connect(self._client, self.url, timeout_s=self._timeout, wait=self._wait)
        self._thread.start()
        return self

    def close(self, summary: Any = None) -> dict[str, Any]:
        """Deliver what is still queued (waiting <= DRAIN_TIMEOUT_S, also for a broker that is just coming back),
        say ``offline``, disconnect; returns the counters (what could not be delivered is ``mqtt_undelivered``)."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        with self._cond:
            # _in_hand: windows the publisher thread took from the queue but has not handed to paho yet.
            while (self._queue or self._in_hand or self._reap()) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=2.0)
        with self._cond:
            self.stats["mqtt_undelivered"] = len(self._queue) + self._in_hand + self._reap()
            self._queue.clear()
            connected = self._connected
            if self._lost_at is not None:
                self.stats["mqtt_offline_s"] += time.monotonic() - self._lost_at
                self._lost_at = None
        if connected:
            self._publish_stats()
            # A clean disconnect suppresses the will, so say offline ourselves.
            info = self._client.publish(self._topics["status"], "offline", qos=1, retain=True)
            _wait_published(info, OFFLINE_TIMEOUT_S)
        disconnect(self._client)
        return self.counters()

    # --- the classifier's side (must never block) --------------------------------------------------------
    def on_window(self, prediction: Any) -> None:
        """Queue one window; the oldest is dropped when the queue is full. JSON is made on the publisher thread."""
        with self._cond:
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self.stats["mqtt_overflow"] += 1
            self._queue.append(prediction)
            self.stats["mqtt_windows"] += 1
            if len(self._queue) > self.stats["mqtt_queue_peak"]:
                self.stats["mqtt_queue_peak"] = len(self._queue)
            # Waking the publisher per window costs the classifier a thread hand-off (tens of us on a busy
            # 2-core Pi), so it looks every POLL_S by itself and is only woken when a burst (a fast replay)
            # fills a quarter of the queue, before anything would overflow.
            if len(self._queue) >= self._wake_at:
                self._cond.notify()

    def counters(self) -> dict[str, Any]:
        """A copy of the counters (windows, delivered, overflow, undelivered, reconnects, offline seconds...)."""
        with self._cond:
            out = dict(self.stats)
            out["mqtt_queued"] = len(self._queue)
            out["mqtt_connected"] = self._connected
            if self._lost_at is not None:  # an outage still going on counts up to now
                out["mqtt_offline_s"] += time.monotonic() - self._lost_at
        out["mqtt_offline_s"] = round(out["mqtt_offline_s"], 3)
        return out

    # --- publisher thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        next_stats = time.monotonic() + STATS_EVERY_S
        while True:
            with self._cond:
                self._reap()
                if not self._closing and not self._ready():
                    self._cond.wait(timeout=POLL_S)
                    self._reap()
                if self._closing:
                    return
                batch = self._take() if self._ready() else []
            for prediction in batch:
                self._send(prediction)
            if time.monotonic() >= next_stats and self._connected:
                self._publish_stats()
                next_stats = time.monotonic() + STATS_EVERY_S

    def _reap(self) -> int:
        """Count acknowledged windows as delivered (caller holds the lock); returns how many are in flight."""
        still = [info for info in self._inflight if not info.is_published()]
        self.stats["mqtt_delivered"] += len(self._inflight) - len(still)
        self._inflight = still
        return len(still)

    def _ready(self) -> bool:
        return self._connected and bool(self._queue) and len(self._inflight) < MAX_INFLIGHT

    def _take(self) -> list[Any]:
        n = min(len(self._queue), MAX_INFLIGHT - len(self._inflight))
        self._in_hand += n
        return [self._queue.popleft() for _ in range(n)]

    def _send(self, prediction: Any) -> None:
        # to_json() here, off the classifier's thread: the same fields as --jsonl (e2e_us is final by now).
        body = json.dumps(prediction.to_json(), separators=(",", ":"))
        label = safe_text(prediction.label, MAX_LABEL)  # a plain-text topic: no controls from a copied bundle
        # Never call paho while holding our lock: paho runs on_publish under its own lock (deadlock).
        # A window published in the instant the link drops stays in paho's queue and is resent on reconnect.
        info = self._client.publish(self._topics["window"], body, qos=1)
        with self._cond:
            self._inflight.append(info)
            self._in_hand -= 1
            self._state = label
        if label != self._published_state:
            self._publish_state(label)

    def _publish_state(self, label: str) -> None:
        self._client.publish(self._topics["state"], label, qos=1, retain=True)
        self._published_state = label
        self.stats["mqtt_state_changes"] += 1

    def _publish_stats(self) -> None:
        self._client.publish(self._topics["stats"], json.dumps(self.counters(), separators=(",", ":")),
                             qos=0, retain=True)

    # --- paho callbacks (paho's network thread) ----------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:  # CONNACK refused (bad password, not authorized); paho retries with backoff
            self._trouble_said("mqtt_refusals", f"refused the connection ({reason})")
            return
        client.publish(self._topics["status"], "online", qos=1, retain=True)
        for topic, body in self._discovery:
            client.publish(topic, body, qos=1, retain=True)
        with self._cond:
            gap = None
            if self._lost_at is not None:
                gap = time.monotonic() - self._lost_at
                self.stats["mqtt_offline_s"] += gap
                self._lost_at = None
            again = self._ever_connected
            if again:
                self.stats["mqtt_reconnects"] += 1
            self._ever_connected = True
            self._connected = True
            self._trouble = None
            state = self._state
            self._cond.notify_all()
        if state is not None:  # a restarted broker without persistence forgot the retained state
            self._publish_state(state)
        if gap is not None:
            self._say(f"mqtt: {'reconnected' if again else 'connected'} to {self.url.display()} after {gap:.1f} s away; "
                      f"{self.stats['mqtt_overflow']} windows overflowed so far")

    def _on_connect_fail(self, client: Any, userdata: Any) -> None:
        self._trouble_said("mqtt_connect_failures", "cannot be reached")

    def _trouble_said(self, counter: str, what: str) -> None:
        """Count a failed (re)connection attempt; say it when this trouble starts or its reason changes."""
        with self._cond:
            self.stats[counter] += 1
            new = what != self._trouble
            self._trouble = what
            n = self.stats[counter]
        if new:
            self._say(f"mqtt: broker {self.url.display()} {what}; retrying every <= {RECONNECT_MAX_S} s "
                      f"(attempt {n}), queueing up to {self._queue_size} windows")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            if was and not self._closing:
                self._lost_at = time.monotonic()
                self.stats["mqtt_disconnects"] += 1
            self._cond.notify_all()
        if was and not self._closing:
            self._say(f"mqtt: lost {self.url.display()} ({reason}); queueing up to {self._queue_size} windows")

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        # Only a wake-up: the publisher thread reaps acknowledged MQTTMessageInfo objects itself.
        with self._cond:
            self._cond.notify_all()


def _wait_published(info: Any, timeout_s: float) -> None:
    try:
        info.wait_for_publish(timeout=timeout_s)
    except (RuntimeError, ValueError):  # not connected any more / queue full: the will covers it
        pass
