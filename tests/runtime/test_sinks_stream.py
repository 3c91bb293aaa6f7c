"""`hartool stream --publish/--serve` end to end: the real CLI in a child process, a real broker, real sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from stream_proc import StreamProc, subject_recording, text_lines

from hartool.wire.mqtt import parse_mqtt_url
from hartool_testing import hartool, wait_until
from mqtt_testing import Recorder

N = 1600  # 24 windows of 128 / 64


@pytest.fixture(scope="module")
def values() -> np.ndarray:
    # 8 samples past the 24th window's end: over a pipe a window is classified once a later sample came.
    return subject_recording(9)[0][:N + 8]


@pytest.fixture(scope="module")
def recording(values: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rec") / "subject9.txt"
    path.write_bytes(text_lines(values[:N]))
    return path


def _no_e2e(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "e2e_us"}


def test_published_windows_are_the_jsonl_windows(quantized_bundle: Path, recording: Path, mqtt_broker,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    url = mqtt_broker.url("s-jsonl")
    summary = tmp_path / "summary.json"
    with Recorder(parse_mqtt_url(url), "s-jsonl/#") as rec:
        proc = hartool("stream", str(quantized_bundle), "--port", str(recording), "--jsonl", "--publish", url,
                       "--device-name", "pi1", "--summary-json", str(summary))
        wait_until(lambda: rec.on("/status")[-1:] and rec.on("/status")[-1].payload == "offline", what="offline")
    jsonl = [json.loads(line) for line in proc.stdout.splitlines()]
    s = json.loads(summary.read_text())
    assert len(jsonl) == s["windows"] == 24
    assert [_no_e2e(w) for w in rec.windows()] == [_no_e2e(w) for w in jsonl]
    assert s["mqtt_windows"] == s["mqtt_delivered"] == 24 and s["mqtt_overflow"] == s["mqtt_undelivered"] == 0
    states = [m.payload for m in rec.on("/state")]
    changes = [w["label"] for i, w in enumerate(jsonl) if i == 0 or w["label"] != jsonl[i - 1]["label"]]
    assert states == changes
    assert "mqtt: 24 windows, delivered 24" in proc.stderr


def test_killed_stream_leaves_offline_status(quantized_bundle: Path, values: np.ndarray, mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("s-kill")
    with Recorder(parse_mqtt_url(url), "s-kill/#") as rec:
        sp = StreamProc(quantized_bundle, "--publish", url, "--device-name", "victim")
        try:
            sp.feed(text_lines(values[:400]))
            wait_until(lambda: len(rec.on("/window")) >= 3, what="windows")
            os.kill(sp.proc.pid, signal.SIGKILL)
        finally:
            sp.kill()
        wait_until(lambda: rec.on("/status")[-1:] and rec.on("/status")[-1].payload == "offline", what="last will")
    assert [m.payload for m in rec.on("/status")] == ["online", "offline"]


def test_broker_restart_mid_stream(quantized_bundle: Path, values: np.ndarray, fresh_mqtt_broker,  # type: ignore[no-untyped-def]
                                   tmp_path: Path) -> None:
    broker = fresh_mqtt_broker
    url = broker.url("s-restart")
    summary = tmp_path / "summary.json"

    def windows() -> list[int]:
        return [w["window"] for w in rec.windows()]

    def stats() -> dict:
        return json.loads(rec.on("/stats")[-1].payload) if rec.on("/stats") else {}

    with Recorder(parse_mqtt_url(url), "s-restart/dev/#") as rec:
        sp = StreamProc(quantized_bundle, "--publish", url, "--device-name", "dev", "--mqtt-queue", "5",
                        "--summary-json", str(summary), "--jsonl")
        try:
            # A window is classified once the sample after its last one arrived (the resampler's look-ahead),
            # so each feed runs a few samples past the window ends it waits for. While the broker is up,
            # windows go one at a time, as a live device sends them (a burst could overflow the queue of 5).
            for k, end in enumerate(range(136, 521, 64)):          # windows 0..6
                sp.feed(text_lines(values[end - 64 if k else 0:end]))
                wait_until(lambda k=k: k in windows(), what=f"window {k} before the restart")
            broker.kill()
            sp.wait_err(r"mqtt: lost")
            sp.feed(text_lines(values[520:1288]))                 # windows 7..18: 12 windows, queue of 5
            wait_until(lambda: len(sp.out_lines) == 19, what="windows while the broker is down")
            broker.start()
            sp.wait_err(r"mqtt: reconnected to .* after [0-9.]+ s away")
            # The publisher's retained counters (every few seconds) say when the 5 queued windows are through.
            wait_until(lambda: stats().get("mqtt_delivered") == 12 and stats().get("mqtt_queued") == 0,
                       what="the queued windows delivered after the restart")
            for k, end in enumerate(range(1352, N + 9, 64)):       # windows 19..23
                sp.feed(text_lines(values[end - 64:end]))
                wait_until(lambda k=k: 19 + k in windows(), what=f"window {19 + k}")
            rc = sp.finish()
        finally:
            sp.kill()
    assert rc == 0, "\n".join(sp.err_lines)
    s = json.loads(summary.read_text())
    assert s["windows"] == s["mqtt_windows"] == 24
    assert s["mqtt_delivered"] + s["mqtt_overflow"] + s["mqtt_undelivered"] == 24
    # 12 windows while the broker was down, 5 held: the 7 oldest overflowed; the 5 newest were delivered.
    assert s["mqtt_overflow"] == 7 and s["mqtt_delivered"] == 17 and s["mqtt_undelivered"] == 0
    assert s["mqtt_reconnects"] == 1 and s["mqtt_offline_s"] > 0
    assert set(range(7)) | set(range(19, 24)) <= set(windows()) and set(range(7, 14)).isdisjoint(windows())
    assert any("reconnects 1" in line and line.lstrip().startswith("mqtt:") for line in sp.err_lines)


def _listening_socket() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


@pytest.mark.parametrize("case", ["serve-in-use", "bad-url", "unreachable", "bad-serve"])
def test_fatal_output_problems_fail_before_streaming(quantized_bundle: Path, recording: Path, case: str) -> None:
    from services import free_port

    with _listening_socket() as busy:
        args = {"serve-in-use": ["--serve", f"127.0.0.1:{busy.getsockname()[1]}"],
                "bad-url": ["--publish", "mqtt://user:pw@127.0.0.1/x"],
                "unreachable": ["--publish", f"mqtt://127.0.0.1:{free_port()}/x"],
                "bad-serve": ["--serve", "localhost"]}[case]
        proc = hartool("stream", str(quantized_bundle), "--port", str(recording), "--jsonl", *args, check=False)
    assert proc.returncode != 0 and proc.stdout == ""  # not one window was classified
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "Traceback" not in proc.stderr
    assert {"serve-in-use": "address already in use", "bad-url": "do not put the password in the URL",
            "unreachable": "unreachable", "bad-serve": "expected HOST:PORT"}[case] in last
    assert "pw@" not in proc.stderr


def test_publish_and_serve_run_without_tensorflow(quantized_bundle: Path, recording: Path, mqtt_broker,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    url = mqtt_broker.url("s-notf")
    summary = tmp_path / "summary.json"
    # sys.modules["tensorflow"] = None makes any `import tensorflow` fail: the stream must not need it.
    script = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
              "from hartool.cli import cli\n"
              "try:\n"
              "    cli.main(sys.argv[1:], prog_name='hartool', standalone_mode=False)\n"
              "finally:\n"
              "    print('TF_LOADED' if sys.modules.get('tensorflow') else 'TF_ABSENT', file=sys.stderr)\n")
    with Recorder(parse_mqtt_url(url), "s-notf/dev/window") as rec:
        proc = subprocess.run([sys.executable, "-c", script, "stream", str(quantized_bundle), "--port",
                               str(recording), "--artifact", "tflite-int8", "--publish", url, "--device-name", "dev",
                               "--serve", "127.0.0.1:0", "--summary-json", str(summary)],
                              capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr
        wait_until(lambda: len(rec.messages) == 24, what="windows")
    assert "TF_ABSENT" in proc.stderr and "live page on http://127.0.0.1:" in proc.stderr
    s = json.loads(summary.read_text())
    assert s["mqtt_delivered"] == s["page_windows"] == 24


def test_serve_state_endpoint_and_assets(quantized_bundle: Path, values: np.ndarray) -> None:
    sp = StreamProc(quantized_bundle, "--serve", "127.0.0.1:0", "--jsonl")
    try:
        base = sp.wait_err(r"live page on (http://\S+)").group(1)
        sp.feed(text_lines(values[:520]))  # 7 windows; the look-ahead needs a sample past the 7th
        wait_until(lambda: len(sp.out_lines) == 7, what="windows")

        def get(path: str) -> tuple[str, bytes]:
            with urllib.request.urlopen(base.rstrip("/") + path, timeout=30) as resp:
                return resp.headers["Content-Type"], resp.read()

        kind, page = get("/")
        assert kind.startswith("text/html") and b"/static/stream.js" in page and b"http" not in page.split(b"<body")[1]
        for asset in ("stream.js", "palette.js", "style.css"):
            assert get(f"/static/{asset}")[1]
        state = json.loads(get("/state")[1])
        last = json.loads(sp.out_lines[-1])
        assert [h["window"] for h in state["history"]] == list(range(7))
        assert state["history"][-1]["label"] == last["label"] and state["counters"]["windows"] == 7
        with pytest.raises(urllib.error.HTTPError):
            get("/static/../outputs.py")
        # The stream's running counters reach the page while it runs: a bad line shows up at once.
        assert state["counters"]["bad_lines"] == 0 and state["counters"]["reconnects"] == 0
        sp.feed(b"0.1,0.2,0.3\r\n")  # three values where six belong
        wait_until(lambda: json.loads(get("/state")[1])["counters"]["bad_lines"] == 1, what="bad line counted")
        assert sp.finish() == 0
    finally:
        sp.kill()


def test_serve_with_a_token_file_refuses_requests_without_it(quantized_bundle: Path, values: np.ndarray,
                                                             tmp_path: Path) -> None:
    token = "stream-page-token-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    sp = StreamProc(quantized_bundle, "--serve", "127.0.0.1:0", "--token-file", str(token_file), "--jsonl")
    try:
        line = sp.wait_err(r"live page on (http://\S+) \(token required").string
        base = line.split()[3].rstrip("/")
        sp.feed(text_lines(values[:200]))  # 2 windows
        wait_until(lambda: len(sp.out_lines) == 2, what="windows")

        def get(path: str, headers: dict[str, str] | None = None) -> int:
            req = urllib.request.Request(base + path, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert [get(p) for p in ("/", "/state", "/static/stream.js")] == [401, 401, 401]
        assert get("/state?token=wrong-token-of-enough-chars") == 401
        assert get(f"/state?token={token}") == 200 and get("/", {"Authorization": f"Bearer {token}"}) == 200
        assert sp.finish() == 0
    finally:
        sp.kill()
    assert token not in "\n".join(sp.err_lines)  # the status line says a token is needed, never which


def test_token_file_needs_serve_and_a_real_token(quantized_bundle: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("abc\n")
    proc = hartool("stream", str(quantized_bundle), "--port", "-", "--token-file", str(short), check=False)
    assert proc.returncode != 0 and "--token-file needs --serve" in proc.stderr
    proc = hartool("stream", str(quantized_bundle), "--port", "-", "--serve", "127.0.0.1:0", "--token-file",
                   str(short), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].endswith(
        "python3 -c 'import secrets; print(secrets.token_urlsafe())'")
