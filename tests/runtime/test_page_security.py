"""The live page's server against hostile clients, with real sockets and a real HTTP client (and headless
Chromium when installed): where it binds, the Host check against DNS rebinding, the optional token, and
device strings that stay text."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path

import pytest

from hartool.core.errors import WireError
from hartool.runtime.sinks.page import LivePageSink, parse_host_port
from hartool.wire.door import read_token
from mqtt_testing import Win
from webdriver import Browser, browser_available

TOKEN = "k3y-of-more-than-16-chars"
EVIL_LABEL = '<img src=x onerror="document.title=\'owned\'">\x1b]0;t\x07'


def _get(port: int, path: str, host: str | None = None, headers: dict[str, str] | None = None,
         ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        conn.putheader("Host", host or f"127.0.0.1:{port}")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = b"" if path.startswith("/events") and resp.status == 200 else resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


@pytest.fixture()
def page():  # type: ignore[no-untyped-def]
    sink = LivePageSink(*parse_host_port(":0"), ["WALKING", EVIL_LABEL], title="t\u202eitle").start()
    sink.on_window(Win(0, EVIL_LABEL))
    yield sink
    sink.close()


@pytest.mark.parametrize(("text", "host", "port"), [(":8080", "127.0.0.1", 8080), ("0.0.0.0:1", "0.0.0.0", 1),
                                                    ("[::1]:5", "::1", 5), ("pi.lan:80", "pi.lan", 80)])
def test_serve_address(text: str, host: str, port: int) -> None:
    assert parse_host_port(text) == (host, port)


def test_port_only_binds_localhost_and_says_what_it_bound(page) -> None:  # type: ignore[no-untyped-def]
    host, port = page.server.address
    assert host == "127.0.0.1" and port > 0 and page.url == f"http://127.0.0.1:{port}/"
    # Nothing answers on another interface's address of this machine (when it has one).
    try:
        other = socket.gethostbyname(socket.gethostname())
    except OSError:
        other = "127.0.0.1"
    if not other.startswith("127."):
        with pytest.raises(OSError):
            socket.create_connection((other, port), timeout=5).close()


def test_every_interface_is_said() -> None:
    sink = LivePageSink("0.0.0.0", 0, ["A"]).start()
    try:
        port = sink.server.address[1]
        assert sink.url == f"http://0.0.0.0:{port}/" and "every interface" in sink.server.describe()
        assert _get(port, "/state")[0] == 200
    finally:
        sink.close()


@pytest.mark.parametrize(("host", "code"), [
    ("attacker.example", 403), ("attacker.example:{port}", 403), ("127.0.0.1.nip.io:{port}", 403),
    ("localhost:{port}", 200), ("127.0.0.1:{port}", 200), ("[::1]:{port}", 200), ("192.168.1.7:{port}", 200),
    (f"{socket.gethostname()}:{{port}}", 200), (f"{socket.gethostname()}.local", 200),
])
def test_host_header_is_checked_against_dns_rebinding(page, host: str, code: int) -> None:  # type: ignore[no-untyped-def]
    port = page.server.address[1]
    for path in ("/", "/state", "/static/style.css"):
        status, _, _ = _get(port, path, host=host.format(port=port))
        assert status == code, (path, host)


def test_device_strings_are_safe_in_the_state_and_headers_forbid_scripts(page) -> None:  # type: ignore[no-untyped-def]
    status, headers, body = _get(page.server.address[1], "/state")
    snap = json.loads(body)
    assert status == 200 and "default-src 'self'" in headers["content-security-policy"]
    assert snap["labels"][1] == snap["history"][0]["label"] == EVIL_LABEL.replace("\x1b", "?").replace("\x07", "?")
    assert snap["title"] == "t?itle"


def test_token_is_required_when_given(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text(TOKEN + "\n")
    sink = LivePageSink("127.0.0.1", 0, ["A"], token=read_token(tmp_path / "tok")).start()
    try:
        port = sink.server.address[1]
        for path in ("/", "/state", "/events", "/static/stream.js", "/state?token=wrong"):
            assert _get(port, path)[0] == 401, path
        assert _get(port, "/state", headers={"Authorization": "Bearer nope"})[0] == 401
        assert _get(port, "/state", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        status, headers, _ = _get(port, f"/?token={TOKEN}")
        assert status == 200 and headers["set-cookie"].startswith(f"hartool_token={TOKEN};")
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        assert _get(port, "/state", headers={"Cookie": f"hartool_token={TOKEN}"})[0] == 200
        assert _get(port, "/state", headers={"Cookie": "hartool_token=bad"})[0] == 401
        assert "token required" in sink.server.describe()
    finally:
        sink.close()


@pytest.mark.parametrize("content", ["", "short\n", None])
def test_bad_token_files_are_one_line(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "tok"
    if content is not None:
        path.write_text(content)
    with pytest.raises(WireError, match="token"):
        read_token(path)


@pytest.mark.skipif(not browser_available(), reason="needs Debian chromium + chromium-driver")
def test_page_in_chromium_shows_hostile_labels_as_text_and_works_with_a_token(tmp_path: Path) -> None:
    sink = LivePageSink("127.0.0.1", 0, ["WALKING", EVIL_LABEL], token=TOKEN).start()
    try:
        sink.on_window(Win(0, EVIL_LABEL, probs=[0.1, 0.9]))
        with Browser() as browser:
            browser.get(sink.url + f"?token={TOKEN}")
            shown = browser.wait_for("""
                const a = document.getElementById('activity'), c = document.getElementById('conn');
                return c.textContent === 'live' && a.textContent !== '-' ?
                    [a.textContent, document.querySelectorAll('img').length, document.title,
                     document.getElementById('legend').textContent] : null;""")
    finally:
        sink.close()
    safe = EVIL_LABEL.replace("\x1b", "?").replace("\x07", "?")
    assert shown == [safe, 0, "hartool - hartool", "WALKING" + safe]  # the cookie let /events and /static in
