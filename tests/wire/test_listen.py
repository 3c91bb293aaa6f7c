"""Listening sources at the byte level: real sockets, a real HTTP client and a real MQTT broker."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import paho.mqtt.client as paho
import pytest

from hartool.core.errors import WireError
from hartool.wire.door import Message, Refusal, SenderGate, read_message
from hartool.wire.httppush import HttpPushPort
from hartool.wire.mqttsub import MqttSubscribePort
from hartool.wire.net import ByteBuffer
from hartool.wire.port import DeviceGone
from hartool.wire.reader import ReaderThread
from hartool.wire.sources import open_port
from hartool.wire.tcp import TcpListenPort
from hartool.wire.udp import UdpPort
from hartool_testing import post
from services import MqttBroker, free_port

GUARD_S = 20.0  # a safety net against hangs only; nothing asserts on speed


def read_bytes(port, n: int, guard_s: float = GUARD_S) -> bytes:
    """Read from ``port`` until ``n`` bytes came (fails on the guard, never waits forever)."""
    out = bytearray()
    deadline = time.monotonic() + guard_s
    while len(out) < n:
        assert time.monotonic() < deadline, f"only {len(out)} of {n} bytes arrived: {bytes(out[-200:])!r}"
        out += port.read(4096)
    return bytes(out)


def lines(k: int, start: int = 0) -> bytes:
    rng = np.random.default_rng(start)
    return b"".join(
        (f"{1000 * (start + i)}," + ",".join(f"{v:.4f}" for v in rng.normal(size=6)) + "\n").encode()
        for i in range(k)
    )


def paho_client() -> paho.Client:
    return paho.Client(callback_api_version=paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)


def publish_all(broker: MqttBroker, topic: str, payloads: list[bytes]) -> None:
    client = paho_client()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        for p in payloads:
            client.publish(topic, p, qos=1).wait_for_publish(GUARD_S)
    finally:
        client.disconnect()
        client.loop_stop()


# --------------------------------------------------------------------------------------------------------
# tcp-listen://


def test_tcp_listen_delivers_exactly_the_bytes_sent_in_odd_chunks() -> None:
    port = open_port("tcp-listen://127.0.0.1:0")
    assert isinstance(port, TcpListenPort) and port.listening and not port.is_file
    payload = lines(300)
    try:
        assert port.read(100) == b""  # nobody connected yet: a timeout, not an error
        with socket.create_connection(port.address) as client:
            cuts = [0, 1, 7, 45, 46, 900, 901, 5000, len(payload)]
            for a, b in zip(cuts, cuts[1:], strict=False):
                client.sendall(payload[a:b])  # lines split across packets
            got = read_bytes(port, len(payload))
        assert got == payload
        with pytest.raises(DeviceGone, match="disconnected"):
            for _ in range(200):
                port.read(100)
        assert port.counters()["connections"] == 1
    finally:
        port.close()


def test_tcp_listen_next_client_continues_after_reopen_and_close_releases_the_port() -> None:
    port = TcpListenPort("127.0.0.1", 0)
    address = port.address
    first, second = lines(50, 0), lines(70, 50)
    with socket.create_connection(address) as c1:
        c1.sendall(first)
        assert read_bytes(port, len(first)) == first
    with pytest.raises(DeviceGone):
        for _ in range(200):
            port.read(100)
    port.close()  # the reader closes a gone port, then reopens: the listener must survive that
    with pytest.raises(WireError, match="no client"):
        port.reopen()
    with socket.create_connection(address) as c2:
        c2.sendall(second)
        again = port.reopen()
        assert again.name == port.name
        assert read_bytes(again, len(second)) == second
        assert again.counters()["connections"] == 2
        assert again.write(b"s") == 1  # host commands reach the connected client
        assert c2.recv(1) == b"s"
    again.close()  # a final close (not after a drop) releases the listening socket
    with socket.socket() as probe:
        assert probe.connect_ex(address) != 0


def test_tcp_listen_reconnect_through_the_reader_keeps_every_sample() -> None:
    port = TcpListenPort("127.0.0.1", 0)
    per_client = [40, 60]
    with ReaderThread(port, protocol="text", expected_channels=6, reconnect=True, start_command=b"") as reader:
        for k, n in enumerate(per_client):
            with socket.create_connection(port.address) as client:
                client.sendall(b"hello from client\n" + lines(n, 1000 * k))  # first line may be skipped
            deadline = time.monotonic() + GUARD_S
            while reader.stats().samples < sum(per_client[: k + 1]):
                assert time.monotonic() < deadline, reader.stats()
                reader.get(timeout=0.1)
        stats = reader.stats()
    assert stats.samples == sum(per_client)
    assert stats.reconnects == 1 and stats.disconnects >= 1


def test_tcp_listen_port_in_use_is_one_line_before_listening() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        with pytest.raises(WireError) as info:
            open_port(f"tcp-listen://127.0.0.1:{busy}")
    msg = str(info.value)
    assert msg.startswith(f"cannot listen on tcp-listen://127.0.0.1:{busy}: [Errno 98] Address already in use")
    assert "\n" not in msg


def test_listen_url_without_port_is_a_clear_error() -> None:
    with pytest.raises(WireError, match="no port number"):
        open_port("tcp-listen://127.0.0.1")


# --------------------------------------------------------------------------------------------------------
# udp://


def test_udp_datagrams_become_lines() -> None:
    port = open_port("udp://127.0.0.1:0")
    assert isinstance(port, UdpPort)
    datagrams = [b"1,2,3", b"4,5,6\n7,8,9\n", b"10,11,12\n13,14,15", b"16\n"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for d in datagrams:
                sender.sendto(d, port.address)
        expected = b"1,2,3\n4,5,6\n7,8,9\n10,11,12\n13,14,15\n16\n"
        assert read_bytes(port, len(expected)) == expected
        assert {k: v for k, v in port.counters().items() if v} == {"datagrams": 4}
    finally:
        port.close()


def test_udp_many_datagrams_arrive_whole_and_port_in_use_fails() -> None:
    port = UdpPort("127.0.0.1", 0)
    payload = [lines(5, i) for i in range(400)]  # ~200 KB in 400 datagrams
    try:
        got = bytearray()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for k in range(0, len(payload), 20):
                # 20 at a time, read before the next ones: never more in flight than a default kernel buffer
                # (net.core.rmem_max, 208 KB on many machines) holds, so nothing here depends on speed.
                for d in payload[k : k + 20]:
                    sender.sendto(d, port.address)
                got += read_bytes(port, sum(map(len, payload[: k + 20])) - len(got))
        assert bytes(got) == b"".join(payload)
        assert {k: v for k, v in port.counters().items() if v} == {"datagrams": 400}
        with pytest.raises(WireError, match="Address already in use"):
            open_port(f"udp://127.0.0.1:{port.address[1]}")
    finally:
        port.close()


# --------------------------------------------------------------------------------------------------------
# http:// push


SENSOR_LOGGER_BATCH = {
    "messageId": 3,
    "sessionId": "a1b2",
    "deviceId": "phone",
    "payload": [
        {"name": "accelerometer", "time": 1700000000000000000, "values": {"x": 0.1, "y": -0.2, "z": 0.05}},
        {"name": "gravity", "time": 1700000000004000000, "values": {"x": 0.0, "y": 9.8, "z": 0.1}},
    ],
}


def test_http_push_answers_200_and_refuses_at_the_door_with_the_reason() -> None:
    port = open_port("http://127.0.0.1:0/data")
    assert isinstance(port, HttpPushPort)
    url = f"http://127.0.0.1:{port.address[1]}/data"
    try:
        good = json.dumps(SENSOR_LOGGER_BATCH, indent=2).encode()  # pretty-printed on the wire
        assert post(url, good) == (200, "ok\n")
        code, reason = post(url, b"{not json")
        assert code == 400 and reason.startswith("not JSON")
        code, reason = post(url, json.dumps({"messageId": 4, "sessionId": "a1b2", "payload": []}).encode())
        assert code == 400 and reason.startswith("no payload")
        for wrong in ({"messageId": 5, "deviceId": "x"}, {"foo": 1}, [1, 2, 3]):  # no known app schema
            code, reason = post(url, json.dumps(wrong).encode())
            assert code == 400 and "no known app schema" in reason
        assert post(url + "/../other", good)[0] == 404
        code, reason = post(url, good, ctype="text/plain")  # what a web page may send cross-origin
        assert code == 415 and "application/json" in reason
        code, reason = post(url, json.dumps({"t": 1, "acc_x": 0.5}).encode())  # another sender, same stream
        assert code == 409 and "deviceId phone is streaming" in reason
        expected = (json.dumps(SENSOR_LOGGER_BATCH, separators=(",", ":")) + "\n").encode()
        assert read_bytes(port, len(expected)) == expected
        counters = port.counters()
        assert {k: v for k, v in counters.items() if v} == {
            "batches": 1, "bad_batches": 1, "wrong_schema": 3, "bad_messages": 2, "not_found": 1,
            "refused_senders": 1}
        notes = port.take_notes()
        assert len(notes) == 5 and all(n.startswith("HTTP 4") and "127.0.0.1" in n for n in notes)
        assert port.take_notes() == []  # each kind is said once; the counters carry the rest
    finally:
        port.close()
    with pytest.raises(urllib.error.URLError):
        post(url, good)  # closed: nothing listens any more


def test_http_keepalive_and_chunked_bodies() -> None:
    port = HttpPushPort("127.0.0.1", 0, "/")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port.address[1], timeout=GUARD_S)
        bodies = [json.dumps({"t": i, "acc_x": i / 10}) for i in range(5)]
        for b in bodies[:4]:  # one connection, several requests (what a phone pushing every 100 ms does)
            conn.request("POST", "/", body=b.encode(), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, b"ok\n")
        conn.request("POST", "/", body=iter([bodies[4][:5].encode(), bodies[4][5:].encode()]),
                     encode_chunked=True)
        resp = conn.getresponse()
        assert (resp.status, resp.read()) == (200, b"ok\n")
        conn.request("POST", "/any/path", body=bodies[0].encode())  # no PATH in the URL: any path is taken
        assert conn.getresponse().read() == b"ok\n"
        conn.close()
        bodies.append(bodies[0])
        expected = "".join(json.dumps(json.loads(b), separators=(",", ":")) + "\n" for b in bodies).encode()
        assert read_bytes(port, len(expected)) == expected
    finally:
        port.close()


def test_http_full_buffer_refuses_with_503_and_counts_overflow() -> None:
    port = HttpPushPort("127.0.0.1", 0, "/", max_buffer=64)
    url = f"http://127.0.0.1:{port.address[1]}/"
    try:
        body = json.dumps({"t": 1, "acc_x": 0.123456789}).encode()  # 28 bytes as a line
        assert [post(url, body)[0] for _ in range(3)] == [200, 200, 503]
        assert port.counters()["overflow"] == 1
        assert read_bytes(port, 2 * 28) == 2 * b'{"t":1,"acc_x":0.123456789}\n'
        assert post(url, body)[0] == 200  # room again once the reader drained it
    finally:
        port.close()


def test_http_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        with pytest.raises(WireError, match=f"cannot listen on http://127.0.0.1:{busy}/x: .*Address already in use"):
            open_port(f"http://127.0.0.1:{busy}/x")


def test_read_message_names_kind_and_sender_or_refuses() -> None:
    names = ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")
    msg = read_message(json.dumps(SENSOR_LOGGER_BATCH).encode(), names, "10.0.0.5", text_ok=False)
    assert isinstance(msg, Message) and (msg.kind, msg.sender) == ("sensorlogger", "deviceId phone")
    msg = read_message(b'[{"t": 1, "acc_x": 2}]', names, "10.0.0.5", text_ok=False)
    assert isinstance(msg, Message) and (msg.kind, msg.sender, msg.data) == ("fields", "10.0.0.5", b'[{"t":1,"acc_x":2}]\n')
    assert read_message(b"1,2,3", names, "topic t", text_ok=True) == Message("text", "topic t", b"1,2,3\n")
    for body, text_ok, status, counter in [(b"  ", True, 400, "bad_messages"), (b"\xff\xfe", False, 415, "bad_messages"),
                                           (b"1,2\x00", True, 415, "bad_messages"), (b"[1, 2]", True, 400, "wrong_schema"),
                                           (b'{"payload": {"name": "x"}}', False, 400, "bad_batches"),
                                           (b'[{"acc_x": 1}, {"op": "hyperimu", "Timestamp": 1}]', True, 400, "wrong_schema")]:
        got = read_message(body, names, "p", text_ok=text_ok)
        assert isinstance(got, Refusal) and (got.status, got.counter) == (status, counter), (body, got)


def test_sender_gate_holds_the_stream_for_the_current_sender() -> None:
    now = [0.0]
    gate = SenderGate(hold_s=5.0, clock=lambda: now[0])
    assert gate.admit("a") == (True, None)
    now[0] = 4.0
    assert gate.admit("b") == (False, "a")
    assert gate.admit("a") == (True, None)  # heard again: holds for another 5 s
    now[0] = 8.9
    assert gate.admit("b") == (False, "a")
    now[0] = 9.0
    assert gate.admit("b") == (True, "a")


def test_byte_buffer_keeps_order_and_reports_gone_after_the_data() -> None:
    buf = ByteBuffer(max_bytes=10)
    assert buf.put(b"abcd") and buf.put(b"efg")
    assert not buf.put(b"hijk")  # would exceed 10 bytes: refused and counted
    buf.mark_gone("left")
    assert buf.put(b"xy")
    assert buf.take(5, 0.01) == b"abcde"
    assert buf.take(100, 0.01) == b"fg"  # stops at the marker
    assert buf.take(100, 0.01) == "left"
    assert buf.take(100, 0.01) == b"xy"
    assert buf.take(100, 0.01) == b""
    assert (buf.overflow, buf.overflow_bytes) == (1, 4)


# --------------------------------------------------------------------------------------------------------
# mqtt://


def test_mqtt_subscribe_receives_published_lines(mqtt_broker: MqttBroker) -> None:
    port = open_port(mqtt_broker.url("phones/+/imu"))
    assert isinstance(port, MqttSubscribePort) and port.listening
    payloads = [json.dumps({"messageId": i, "payload": [{"name": "gyroscope", "time": i}]}).encode()
                for i in range(30)]
    try:
        publish_all(mqtt_broker, "phones/p1/imu", payloads[:20])
        publish_all(mqtt_broker, "phones/p1/other", [b"not for us"])
        # A second sender on the wildcard while the first was just heard: refused at the door, counted.
        publish_all(mqtt_broker, "phones/p2/imu", [p + b"\n" for p in payloads[20:]])
        expected = b"".join(json.dumps(json.loads(p), separators=(",", ":")).encode() + b"\n" for p in payloads[:20])
        assert read_bytes(port, len(expected)) == expected
        deadline = time.monotonic() + GUARD_S
        while port.counters()["refused_senders"] < 10:
            assert time.monotonic() < deadline, port.counters()
            assert port.read(100) == b""
        counters = port.counters()
        assert (counters["messages"], counters["overflow"], counters["connections"]) == (20, 0, 1)
        assert port.take_notes() == ["MQTT: refused sensorlogger from topic phones/p2/imu: "
                                     "sensorlogger from topic phones/p1/imu is streaming"]
    finally:
        port.close()


def test_mqtt_unreachable_broker_is_one_line_without_reconnect() -> None:
    dead = free_port()
    with pytest.raises(WireError) as info:
        open_port(f"mqtt://127.0.0.1:{dead}/imu")
    msg = str(info.value)
    assert msg.startswith(f"MQTT broker mqtt://127.0.0.1:{dead}/imu unreachable") and "\n" not in msg


def test_mqtt_with_reconnect_waits_for_a_broker_that_starts_later() -> None:
    broker = MqttBroker()
    port = open_port(broker.url("late"), reconnect=True)
    try:
        assert port.read(10) == b""  # no broker yet: just nothing to read
        broker.start()
        deadline = time.monotonic() + GUARD_S
        while port.counters()["connections"] == 0:  # paho's backoff finds the broker
            assert time.monotonic() < deadline
            port.read(10)
        subscribed = port._sub.suback.event
        assert subscribed.wait(GUARD_S)
        publish_all(broker, "late", [b"1,2,3,4,5,6"])
        assert read_bytes(port, 12) == b"1,2,3,4,5,6\n"
    finally:
        port.close()
        broker.close()


def test_mqtt_broker_restart_is_a_disconnect_then_reopen(fresh_mqtt_broker: MqttBroker) -> None:
    broker = fresh_mqtt_broker
    port = open_port(broker.url("imu"))
    try:
        publish_all(broker, "imu", [b"a", b"b"])
        assert read_bytes(port, 4) == b"a\nb\n"
        broker.kill()
        with pytest.raises(DeviceGone, match="went away"):
            deadline = time.monotonic() + GUARD_S
            while time.monotonic() < deadline:
                port.read(10)
        port.close()  # after a drop: keeps the subscription for reopen()
        broker.start()
        deadline = time.monotonic() + GUARD_S
        again = None
        while again is None:
            assert time.monotonic() < deadline, "paho did not reconnect"
            try:
                again = port.reopen()
            except WireError:
                pass
        assert again._sub.suback.event.wait(GUARD_S)
        publish_all(broker, "imu", [b"c"])
        assert read_bytes(again, 2) == b"c\n"
        counters = again.counters()
        assert (counters["connections"], counters["broker_disconnects"]) == (2, 1)
        again.close()
    finally:
        port.close()


def test_hold_option_in_the_port_url() -> None:
    port = open_port("udp://127.0.0.1:0?hold=0.5")
    try:
        assert port._gate.hold_s == 0.5
    finally:
        port.close()
    with pytest.raises(WireError, match="unknown option 'token'"):
        open_port("tcp-listen://127.0.0.1:0?token=x")
    with pytest.raises(WireError, match="hold must be 0..3600 seconds"):
        open_port("http://127.0.0.1:0/data?hold=soon")


def test_tcp_silent_sender_is_taken_over_with_hold_zero() -> None:
    port = TcpListenPort("127.0.0.1", 0, hold_s=0)
    try:
        with socket.create_connection(port.address) as c1, socket.create_connection(port.address) as c2:
            c1.sendall(b"1,2,3\n")
            assert read_bytes(port, 6) == b"1,2,3\n"
            c2.sendall(b"4,5,6\n")
            with pytest.raises(DeviceGone, match="replaced by 127.0.0.1"):
                for _ in range(1000):
                    port.read(100)
            port.close()
            again = port.reopen()
            assert read_bytes(again, 6) == b"4,5,6\n"
            assert again.counters()["takeovers"] == 1
            again.close()
    finally:
        port.close()
