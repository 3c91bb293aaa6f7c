"""``?allow=PEER[,PEER]`` and ``?token-file=PATH`` on listening sources: real sockets and a real HTTP client.

The honest sender binds 127.0.0.2 (any 127/8 address is this machine on Linux), the stranger 127.0.0.1, so
``allow=`` tells them apart. Every honest sample gets through, every stranger is refused before any of its
bytes reach the stream, counted, and named once.
"""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path

import pytest

from hartool.core.errors import WireError
from hartool.wire.door import PeerPolicy
from hartool.wire.port import Port
from hartool.wire.sources import open_port
from hartool_testing import SAFETY_S, post

HONEST, STRANGER = "127.0.0.2", "127.0.0.1"
TOKEN = "port-token-0123456789abcdef"


def text_lines(k: int, start: int = 0) -> bytes:
    return b"".join(b"%d,%.3f,0.1,1.0,0.1,0.2,0.3\n" % (10 * i, i / 7) for i in range(start, start + k))


def read_exactly(port: Port, n: int) -> bytes:
    got = bytearray()
    deadline = time.monotonic() + SAFETY_S  # a hang guard only
    while len(got) < n:
        assert time.monotonic() < deadline, (bytes(got), port.counters())
        got += port.read(65536)
    return bytes(got)


def read_nothing_until(port: Port, counter: str) -> None:
    """Read until ``counter`` counts one refusal: none of the refused peer's bytes may come out meanwhile."""
    deadline = time.monotonic() + SAFETY_S
    while port.counters().get(counter, 0) < 1:
        assert time.monotonic() < deadline, port.counters()
        assert port.read(65536) == b""


def closed_by_peer(sock: socket.socket) -> bool:
    """The other end closed: end of stream, or a reset when it closed with our bytes unread."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "port-token"
    path.write_text(TOKEN + "\n")
    return path


def _post_from(source: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=SAFETY_S, source_address=(source, 0))
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        resp.read()  # a client closing with the reply unread resets the connection (a counted client error)
        return resp.status
    finally:
        conn.close()


def test_http_allow_and_token(token_file: Path) -> None:
    port = open_port(f"http://127.0.0.1:0/data?allow={HONEST},10.0.0.0/8&token-file={token_file}")
    n = port.address[1]  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{n}/data"
    doc = b'{"t": %d, "acc_x": 0.1, "acc_y": 0.2, "acc_z": 1.0, "gyro_x": 0, "gyro_y": 0, "gyro_z": 0}'
    try:
        assert post(url, doc % 0, headers={"X-Hartool-Token": TOKEN})[0] == 403          # the stranger's address
        assert _post_from(HONEST, n, "/data", doc % 1) == 401                            # no token
        assert _post_from(HONEST, n, "/data", doc % 2, {"X-Hartool-Token": TOKEN[:-1] + "x"}) == 401
        assert _post_from(HONEST, n, "/data", doc % 3, {"X-Hartool-Token": TOKEN}) == 200
        assert _post_from(HONEST, n, "/data", doc % 4, {"Authorization": f"Bearer {TOKEN}"}) == 200
        assert _post_from(HONEST, n, f"/data?token={TOKEN}", doc % 5) == 200
        lines = read_exactly(port, 3 * len(b'{"t":3,"acc_x":0.1,"acc_y":0.2,"acc_z":1.0,"gyro_x":0,"gyro_y":0,'
                                           b'"gyro_z":0}\n')).splitlines()
        assert [line.split(b",")[0] for line in lines] == [b'{"t":3', b'{"t":4', b'{"t":5']
        counters = port.counters()
        assert counters["refused_peers"] == 1 and counters["bad_tokens"] == 2 and counters["batches"] == 3
        assert port.take_notes() == [f"HTTP 403 to {STRANGER}: not in allow=",
                                     f"HTTP 401 to {HONEST}: token required (?token=, X-Hartool-Token or "
                                     "Authorization: Bearer)"]
    finally:
        port.close()


def test_tcp_allow_and_token_line(token_file: Path) -> None:
    port = open_port(f"tcp-listen://127.0.0.1:0?allow={HONEST}&token-file={token_file}&hold=0")
    address = port.address  # type: ignore[attr-defined]
    data = text_lines(40)
    try:
        with socket.create_connection(address, timeout=SAFETY_S) as stranger:
            stranger.sendall(TOKEN.encode() + b"\n" + text_lines(5, 200))  # the token does not help
            read_nothing_until(port, "refused_peers")
            assert closed_by_peer(stranger)                              # closed as it was accepted
            stranger_name = stranger.getsockname()[1]
        with socket.create_connection(address, timeout=SAFETY_S, source_address=(HONEST, 0)) as wrong:
            wrong.sendall(b"not-the-token\n" + text_lines(5, 100))
            read_nothing_until(port, "bad_tokens")
            assert closed_by_peer(wrong)
            wrong_name = wrong.getsockname()[1]
        with socket.create_connection(address, timeout=SAFETY_S, source_address=(HONEST, 0)) as honest:
            honest.sendall(TOKEN.encode() + b"\r\n" + data[:100])
            honest.sendall(data[100:])
            assert read_exactly(port, len(data)) == data                 # every byte after the token line
        counters = port.counters()
        assert counters["refused_peers"] == 1 and counters["bad_tokens"] == 1 and counters["connections"] == 2
        notes = port.take_notes()
        assert notes[0].endswith(f"refused {STRANGER}:{stranger_name}: not in allow=")
        assert notes[1].endswith(f"refused {HONEST}:{wrong_name}: its first line is not the token")
    finally:
        port.close()


def test_udp_allow_drops_other_addresses() -> None:
    port = open_port(f"udp://127.0.0.1:0?allow={HONEST}")
    address = port.address  # type: ignore[attr-defined]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as honest, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            honest.bind((HONEST, 0))
            stranger.bind((STRANGER, 0))
            for k in range(4):
                stranger.sendto(b"999,9,9,9,9,9,9\n", address)
                honest.sendto(text_lines(1, k), address)
            assert read_exactly(port, len(text_lines(4))) == text_lines(4)
            while port.counters()["refused_peers"] < 4:  # the last stranger datagram may come after the 4th line
                assert port.read(65536) == b""
            assert port.counters()["datagrams"] == 4
            assert port.take_notes() == [f"{port.name}: dropped datagrams from {STRANGER}:"
                                         f"{stranger.getsockname()[1]}: not in allow="]
    finally:
        port.close()


def test_allow_matches_ipv4_mapped_and_networks() -> None:
    policy = PeerPolicy(PeerPolicy.parse_allow("192.168.1.0/24, ::1"))
    assert policy.allows("192.168.1.77") and policy.allows("::ffff:192.168.1.7") and policy.allows("::1")
    assert not policy.allows("192.168.2.1") and not policy.allows("fe80::1%eth0") and not policy.allows("x")
    assert PeerPolicy(token=TOKEN).token_ok([b"", TOKEN.encode()]) and not PeerPolicy(token=TOKEN).token_ok([""])


@pytest.mark.parametrize(("query", "message"), [
    ("?allow=phone.local", "allow='phone.local' is not an IP address or network"),
    ("?allow=", "allow='' is not an IP address or network"),
    ("?token-file=/nonexistent/token", "cannot read token file /nonexistent/token"),
    ("?token=abc", "unknown option 'token' (known: hold=SECONDS, allow=PEER[,PEER], token-file=PATH)"),
])
def test_bad_options_are_one_line(query: str, message: str) -> None:
    with pytest.raises(WireError, match=r".*") as err:
        open_port(f"http://127.0.0.1:0/data{query}")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_token_and_allow_only_where_a_peer_can_be_told(token_file: Path) -> None:
    with pytest.raises(WireError, match="a datagram carries no token"):
        open_port(f"udp://127.0.0.1:0?token-file={token_file}")
    with pytest.raises(WireError, match="let the broker check who publishes"):
        open_port("mqtt://127.0.0.1:1/har?allow=127.0.0.1")
    short = token_file.with_name("short")
    short.write_text("abc\n")
    with pytest.raises(WireError, match="at least 16 characters"):
        open_port(f"tcp-listen://127.0.0.1:0?token-file={short}")
