"""`hartool stream` on a listening source while strangers knock: a real process, a real HTTP client, a simulated
phone (Sensor Logger batches of a test subject). Every honest window is delivered (as many as the same batches
replayed from a file), every refusal is counted, said once with the peer, and shown in the printed summary.
"""

from __future__ import annotations

import json
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_signals import Proc

from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.smoothing import CAUSAL_SMOOTHING
from hartool.sim.apps import sensorlogger_packets
from hartool_testing import hartool, post
from webdriver import Browser, browser_available

STRAY = json.dumps({"t": 0, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 1.0, "gyro_x": 0, "gyro_y": 0, "gyro_z": 0}).encode()


@pytest.fixture(scope="module")
def phone() -> list[bytes]:
    """The honest phone's POST bodies: 30 s of test subject 9 as Sensor Logger batches."""
    values = recording_for_subject(load_dataset("hapt"), 9)[0].values[:1500]
    packets = sensorlogger_packets(values, 50.0, 100.0, 2.0, batch_s=0.2, start_epoch_ns=1_700_000_000 * 10**9,
                                   device_id="phone-1")
    return [p.data for p in packets]


@pytest.fixture(scope="module")
def baseline(quantized_bundle: Path, phone: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> int:
    """Windows of the same batches replayed from a file, with nobody knocking."""
    path = tmp_path_factory.mktemp("phone") / "phone.jsonl"
    path.write_bytes(b"".join(json.dumps(json.loads(b), separators=(",", ":")).encode() + b"\n" for b in phone))
    out = hartool("stream", str(quantized_bundle), "--port", str(path), "--jsonl", "--smooth", CAUSAL_SMOOTHING)
    windows = len(out.stdout.splitlines())
    assert windows >= 15
    return windows


class LiveStream(Proc):
    """`hartool stream BUNDLE --port SPEC --jsonl` (causal smoothing: each window as soon as it is complete)."""

    def __init__(self, bundle: Path, spec: str, *args: str) -> None:
        super().__init__("stream", str(bundle), "--port", spec, "--jsonl", "--smooth", CAUSAL_SMOOTHING, *args)
        self.wait_for("listening", lambda: self.said(r"^reading (\S+)"))
        self.url = self.said(r"^reading (\S+)").group(1)

    def said(self, pattern: str) -> re.Match[str] | None:
        return next((m for line in list(self.err) if (m := re.search(pattern, line))), None)

    def said_count(self, text: str) -> int:
        return sum(text in line for line in list(self.err))


def test_refusals_are_said_once_with_the_peer_and_shown_in_the_summary(  # type: ignore[no-untyped-def]
        quantized_bundle: Path, phone: list[bytes], baseline: int, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    s = LiveStream(quantized_bundle, "http://127.0.0.1:0/data", "--summary-json", str(summary_path))
    assert post(s.url, phone[0])[0] == 200
    knocks = [(STRAY, "text/plain", 415), (STRAY, "text/plain", 415), (b'{"foo": 1}', "application/json", 400)]
    assert [post(s.url, body, ctype)[0] for body, ctype, _ in knocks] == [code for _, _, code in knocks]
    assert all(post(s.url, body)[0] == 200 for body in phone[1:])
    s.wait_for("every honest window", lambda: len(s.out) >= baseline)
    assert s.stop(signal.SIGTERM) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["windows"] == len(s.out) == baseline
    door = summary["port_counters"]
    assert door["batches"] == len(phone) and door["bad_messages"] == 2 and door["wrong_schema"] == 1
    assert s.said_count("HTTP 415 to 127.0.0.1: Content-Type text/plain refused") == 1  # once, with the peer
    line = s.said(r"^  door: .*")
    assert line is not None, s.err
    assert f"batches {len(phone)}," in line.group(0) and "bad messages 2," in line.group(0)
    assert "wrong schema 1," in line.group(0) and "refused senders 0" in line.group(0)


def test_a_token_on_the_port_admits_the_phone_and_refuses_strangers(  # type: ignore[no-untyped-def]
        quantized_bundle: Path, phone: list[bytes], baseline: int, tmp_path: Path) -> None:
    token = "phone-token-0123456789abcdef"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    summary_path = tmp_path / "summary.json"
    s = LiveStream(quantized_bundle, f"http://127.0.0.1:0/data?token-file={token_file}", "--summary-json",
                   str(summary_path))
    for i, body in enumerate(phone):
        if i % 10 == 5:  # a stranger without the token, now and then, while the phone streams
            assert post(s.url, phone[0].replace(b"phone-1", b"intruder"))[0] == 401
        assert post(s.url, body, headers={"X-Hartool-Token": token})[0] == 200
    s.wait_for("every honest window", lambda: len(s.out) >= baseline)
    assert s.stop(signal.SIGTERM) == 0
    summary = json.loads(summary_path.read_text())
    strangers = sum(1 for i in range(len(phone)) if i % 10 == 5)
    assert summary["windows"] == len(s.out) == baseline
    assert summary["port_counters"]["bad_tokens"] == strangers and summary["port_counters"]["batches"] == len(phone)
    assert s.said_count("HTTP 401 to 127.0.0.1: token required") == 1
    assert f"bad tokens {strangers}" in s.said(r"^  door: .*").group(0)  # type: ignore[union-attr]
    assert token not in "\n".join(s.err)


def test_record_takes_the_same_port_options(tmp_path: Path) -> None:
    """`record` reads through the same door: a peer outside allow= never reaches the CSV."""
    import socket

    from hartool.core.csvformat import read_csv_session

    out = tmp_path / "rec.csv"
    part = out.with_name(f".{out.name}.part")
    rec = Proc("record", "--port", "tcp-listen://127.0.0.1:0?allow=127.0.0.2", "--out", str(out), "--label",
               "WALKING", "--json")
    rec.wait_for("listening", lambda: any("recording" in line for line in rec.err))
    port = int(re.search(r"tcp-listen://127\.0\.0\.1:(\d+)", "\n".join(rec.err)).group(1))  # type: ignore[union-attr]
    stranger = socket.create_connection(("127.0.0.1", port), timeout=30)
    stranger.sendall(b"9,9,9,9,9,9\n" * 200)
    honest = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.0.2", 0))
    honest.sendall(b"0.1,0.2,1.0,0.01,0.02,0.03\n" * 400)
    rec.wait_for("rows on disk", lambda: part.exists() and part.read_text().count("\n") > 100)
    assert rec.stop(signal.SIGTERM) == 0
    honest.close()
    stranger.close()
    result = json.loads("\n".join(rec.out))
    session = read_csv_session(out)
    assert len(session.values) == result["samples"] > 100
    assert session.values[:, 0].max() < 1.0  # none of the stranger's 9s


ATTACK_PAGE = """<!doctype html><title>elsewhere</title><script>
// A page on another origin that the user happens to open: simple requests need no CORS preflight.
const stray = %s;
Promise.all([1, 2, 3].map(() => fetch("%s", {method: "POST", mode: "no-cors",
    headers: {"Content-Type": "text/plain"}, body: stray})))
  .then(() => { document.title = "sent"; }, (e) => { document.title = "failed " + e; });
</script>"""


class _AttackSite(ThreadingHTTPServer):
    """Another localhost origin serving one page that POSTs to the stream's source."""

    daemon_threads = True

    def __init__(self, target: str) -> None:
        page = (ATTACK_PAGE % (json.dumps(STRAY.decode()), target)).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.server_address[1]}/"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.mark.skipif(not browser_available(), reason="needs Debian chromium + chromium-driver")
def test_a_web_page_cannot_silence_the_phone_from_the_browser(  # type: ignore[no-untyped-def]
        quantized_bundle: Path, phone: list[bytes], baseline: int, tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    s = LiveStream(quantized_bundle, "http://127.0.0.1:0/data", "--summary-json", str(summary_path))
    site = _AttackSite(s.url)
    try:
        half = len(phone) // 2
        assert all(post(s.url, body)[0] == 200 for body in phone[:half])
        with Browser() as browser:  # the user opens a page elsewhere while the phone streams
            browser.get(site.url)
            assert browser.wait_for("return document.title !== 'elsewhere' && document.title") == "sent"
        assert all(post(s.url, body)[0] == 200 for body in phone[half:])
        s.wait_for("every honest window", lambda: len(s.out) >= baseline)
    finally:
        site.close()
    assert s.stop(signal.SIGTERM) == 0
    summary = json.loads(summary_path.read_text())
    assert summary["windows"] == len(s.out) == baseline                 # as many as with nobody knocking
    door = summary["port_counters"]
    assert door["bad_messages"] == 3 and door["batches"] == len(phone)  # the browser's three POSTs: 415
    assert s.said_count("HTTP 415 to 127.0.0.1: Content-Type text/plain refused") == 1
