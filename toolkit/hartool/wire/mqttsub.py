"""``mqtt://[USER@]BROKER:PORT/TOPIC[?hold=S]`` (``mqtts://`` for TLS): subscribe; each message payload is one line.

Every payload is checked at the door, on its own (:func:`hartool.wire.door.read_message`): JSON of a known
app schema, or printable text lines; anything else is refused and counted (the first of each kind noted).
Retained messages are skipped: they are stale and must not decide anything. One sender per stream (the
topic, or a Sensor Logger ``deviceId``): another is refused while the current one was heard within
``hold`` seconds, then takes over and the stream restarts (the port ends with :class:`DeviceGone` and
``reopen()`` continues with a fresh decoder).

paho-mqtt (through :mod:`hartool.wire.mqtt`) runs its network loop in a thread of its own that only puts
payloads into a bounded :class:`ByteBuffer`; ``read`` drains it with a timeout. A broker that drops us raises
:class:`DeviceGone`; paho reconnects with backoff and ``reopen()`` returns once it is back.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from hartool.core.errors import WireError
from hartool.wire import mqtt as wmqtt
from hartool.wire.batch import DEFAULT_CHANNEL_NAMES
from hartool.wire.door import HOLD_S, Message, SenderGate, read_message
from hartool.wire.jsoncodec import MAX_LINE_BYTES
from hartool.wire.net import DEFAULT_BUFFER_BYTES, REOPEN_WAIT_S, BufferedPort, ByteBuffer
from hartool.wire.port import Counters, printable

__all__ = ["MqttSubscribePort"]

SUBSCRIBE_TIMEOUT_S = 5.0
_COUNTERS = ("messages", "overflow", "connections", "broker_disconnects", "retained", "wrong_schema",
             "bad_messages", "bad_batches", "refused_senders", "takeovers", "too_large", "broker_refusals")


class _MqttSubscription:
    """The paho client, buffer and counters shared by an MQTT port and the ports ``reopen()`` returns."""

    def __init__(self, spec: str, reconnect: bool, max_buffer: int, hold_s: float) -> None:
        self.url = wmqtt.parse_mqtt_url(spec, allow_wildcards=True)
        self.buffer = ByteBuffer(max_buffer)
        self.counts = Counters(*_COUNTERS)
        self.gate = SenderGate(hold_s)
        self.connected = threading.Event()
        self.suback = wmqtt.SubscribeAck()
        self.closed = False
        client = wmqtt.make_client(self.url, client_id=f"hartool-sub-{uuid.uuid4().hex[:10]}",
                                   password=wmqtt.read_password())
        client.on_connect = self._on_connect
        client.on_subscribe = self.suback.on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        self.client = client
        wmqtt.connect(client, self.url, wait=not reconnect)
        if not reconnect:
            self.suback.wait(client, self.url, SUBSCRIBE_TIMEOUT_S)

    # paho callbacks (paho's network thread): they only touch the buffer, counters and events.
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:  # a refused login under --reconnect: said once, counted every time
            self.counts.refuse("broker_refusals", f"MQTT broker {self.url.display()} refused us: {reason}")
            return
        self.counts.add("connections")
        client.subscribe(self.url.prefix, qos=1)  # clean session: subscribe on every (re)connection
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic = printable(message.topic)
        if message.retain:
            # Stale by definition (it may predate this hartool): never data, never used to detect anything.
            self.counts.refuse("retained", f"MQTT: skipped a retained message on {topic}")
            return
        payload = bytes(message.payload)
        if len(payload) > MAX_LINE_BYTES:
            self.counts.refuse("too_large", f"MQTT: refused a message of {len(payload)} bytes on {topic}")
            return
        msg = read_message(payload, DEFAULT_CHANNEL_NAMES, f"topic {topic}", text_ok=True)
        if not isinstance(msg, Message):
            self.counts.refuse(msg.counter, f"MQTT: refused a message on {topic}: {msg.reason}")
            return
        with self.gate.lock:
            admitted, other = self.gate.admit(f"{msg.kind} from {msg.sender}")
            if not admitted:
                self.counts.refuse("refused_senders", f"MQTT: refused {msg.kind} from {msg.sender}: {other} is streaming")
                return
            if other is not None:
                self.counts.refuse("takeovers", f"MQTT: {msg.kind} from {msg.sender} took over from {other}")
                self.buffer.mark_gone(f"{msg.sender} took over from {other}")
            if self.buffer.put(msg.data):
                self.counts.add("messages")
            else:
                self.counts.add("overflow")

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self.connected.is_set() and not self.closed:
            self.counts.add("broker_disconnects")
            self.buffer.mark_gone(f"MQTT broker {self.url.display()} went away ({reason})")
        self.connected.clear()
        self.suback.event.clear()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            wmqtt.disconnect(self.client)


class MqttSubscribePort(BufferedPort):
    """``mqtt://[USER@]BROKER:PORT/TOPIC``: each message payload on TOPIC (wildcards allowed) as one line.

    Without ``reconnect`` the broker must answer at once (CONNACK and SUBACK), else :class:`WireError`.
    With it, paho connects in the background with backoff and ``read`` returns ``b""`` meanwhile.
    """

    def __init__(self, spec: str, timeout: float = 0.05, reconnect: bool = False,
                 max_buffer: int = DEFAULT_BUFFER_BYTES, *, hold_s: float = HOLD_S,
                 _sub: _MqttSubscription | None = None) -> None:
        self._sub = _sub or _MqttSubscription(spec, reconnect, max_buffer, hold_s)
        super().__init__(self._sub.url.display(), timeout, self._sub.buffer, self._sub.counts)

    def release(self) -> None:
        self._sub.close()

    def reopen(self) -> MqttSubscribePort:
        """The same subscription once paho is reconnected; :class:`WireError` if not within ``REOPEN_WAIT_S``."""
        if self._sub.closed:
            raise WireError(f"{self.name}: closed")
        if not self._sub.connected.wait(REOPEN_WAIT_S):
            raise WireError(f"MQTT broker {self.name} is not back yet")
        return MqttSubscribePort(self.name, self.timeout, _sub=self._sub)
