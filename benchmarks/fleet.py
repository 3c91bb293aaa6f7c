"""Fleet acceptance for issue 12: 20 simulated devices publish into one mosquitto; monitor, subscriber, restart, cost.

Usage: .venv/bin/python benchmarks/fleet.py [--bundle /work/bundles/cnn] [--devices 20] [--windows 120]

Phases (all against a real mosquitto on a free localhost port, with hartool's own processes):
  1. fleet: N x (`hartool simulate --speed 10` on a pty -> `hartool stream --publish`); `hartool monitor
     --serve` and a subscriber watch. Per device: windows published (stream summary) == windows received.
  2. restart: the same fleet, the broker is SIGKILLed mid-run and restarted 3 s later (persistent sessions, so
     the subscriber's subscription survives). Per device: windows == delivered + overflowed + undelivered,
     and what the subscriber received.
  3. cost: one `hartool stream --publish --serve` at 20x real time with TensorFlow made unimportable, a
     headless Chromium on its page and the monitor attached: peak RSS and end-to-end p99 from the stream's
     summary, next to the same stream without outputs. Saves the page screenshot to benchmarks/live_page.png.
Writes benchmarks/results/fleet.json; prints the RESULTS.md section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import REPO, RESULTS, md_table, save, stamp

sys.path.insert(0, str(REPO / "tests"))
from hartool.core.bundle import Bundle  # noqa: E402
from hartool.wire.mqtt import SubscribeAck, connect, disconnect, parse_mqtt_url  # noqa: E402
from services import free_port, mqtt_handshake  # noqa: E402
from webdriver import Browser, browser_available  # noqa: E402

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
# Run hartool with TensorFlow unimportable: proves the edge path never needs it.
NO_TF = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
         "from hartool.cli import main; sys.argv[0] = 'hartool'; main()\n")
SUBJECTS = [1, 3, 5, 6, 7, 8, 11, 14, 15, 16, 17, 19, 21, 22, 23, 25, 26, 27, 28, 29, 30]


class Broker:
    """mosquitto with persistence (autosave every second) so subscriptions survive a SIGKILL + restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fleet-broker-"))
        self.dir.chmod(0o777)  # mosquitto started as root drops to its own user, which must write the db
        (self.dir / "m.conf").write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.dir}/\nautosave_interval 1\nmax_queued_messages 100000\n"
            "max_inflight_messages 100\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen(["mosquitto", "-c", str(self.dir / "m.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not mqtt_handshake("127.0.0.1", self.port):
            if time.monotonic() > deadline:
                raise SystemExit("mosquitto did not start")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Subscriber:
    """Counts distinct window indices per device under PREFIX/+/window (persistent session, QoS 1)."""

    def __init__(self, url: str, client_id: str) -> None:
        self.url = parse_mqtt_url(url)
        self.seen: dict[str, set[int]] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        import paho.mqtt.client as mqtt

        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.reconnect_delay_set(1, 2)
        self.client.on_connect = lambda c, *_: c.subscribe(self.url.topic("+", "window"), qos=1)
        self.suback = SubscribeAck()
        self.client.on_subscribe = self.suback.on_subscribe
        self.client.on_message = self._on_message

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        device = msg.topic.split("/")[-2]
        index = json.loads(msg.payload)["window"]
        with self._lock:
            got = self.seen.setdefault(device, set())
            self.duplicates += index in got
            got.add(index)

    def start(self) -> Subscriber:
        connect(self.client, self.url)
        self.suback.wait(self.client, self.url, 30.0)  # no device may publish before the broker has us
        return self

    def counts(self) -> dict[str, int]:
        with self._lock:
            return {k: len(v) for k, v in self.seen.items()}

    def close(self) -> None:
        disconnect(self.client)


def start_devices(n: int, bundle: Path, url: str, windows: int, workdir: Path, speed: float) -> list[dict[str, Any]]:
    """N simulated boards on ptys, each with its own `hartool stream --publish` process, all started at once
    (a board waits for its host's start byte, so the fleet overlaps as much as process start-up allows)."""
    sims = [subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--subject", str(SUBJECTS[i % len(SUBJECTS)]),
                              "--speed", str(speed), "--loop"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True, env=ENV) for i in range(n)]
    devices = []
    for i, sim in enumerate(sims):
        assert sim.stdout is not None
        pty = sim.stdout.readline().strip()
        name = f"dev{i:02d}"
        summary = workdir / f"{name}.json"
        log = open(workdir / f"{name}.log", "w")  # noqa: SIM115 - closed in finish_device
        stream = subprocess.Popen([sys.executable, "-c", NO_TF, "stream", str(bundle), "--port", pty,
                                   "--max-windows", str(windows), "--publish", url, "--device-name", name,
                                   "--summary-json", str(summary)],
                                  stdout=subprocess.DEVNULL, stderr=log, env=ENV)
        devices.append({"name": name, "sim": sim, "stream": stream, "summary": summary, "log": log})
    return devices


def finish_device(dev: dict[str, Any], timeout: float) -> dict[str, Any]:
    rc = dev["stream"].wait(timeout)
    dev["sim"].terminate()
    dev["sim"].wait(10)
    dev["log"].close()
    out = json.loads(dev["summary"].read_text()) if dev["summary"].exists() else {}
    return {"name": dev["name"], "rc": rc, **{k: out.get(k) for k in (
        "windows", "dropped", "mqtt_windows", "mqtt_delivered", "mqtt_overflow", "mqtt_undelivered",
        "mqtt_reconnects", "mqtt_offline_s", "peak_rss_mb")}, "e2e_p99_us": out.get("e2e_us", {}).get("p99")}


def run_fleet(bundle: Path, n: int, windows: int, restart: bool, workdir: Path) -> dict[str, Any]:
    broker = Broker().start()
    url = f"mqtt://127.0.0.1:{broker.port}/fleet"
    sub = Subscriber(url, f"fleet-sub-{os.getpid()}-{restart}").start()
    mon_port = free_port()
    monitor = subprocess.Popen([sys.executable, "-m", "hartool", "monitor", url, "--serve", f"127.0.0.1:{mon_port}",
                                "--duration", "3600", "--jsonl"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=ENV)
    devices = start_devices(n, bundle, url, windows, workdir, speed=10)
    t0 = time.monotonic()
    restart_info: dict[str, Any] = {}
    monitor_rows: list[dict[str, Any]] = []
    try:
        if restart:
            # Kill once every device is publishing (mid-run for all); the fleet keeps classifying meanwhile.
            _wait(lambda: len(sub.counts()) == n and min(sub.counts().values()) >= 5, 600)
            before = sum(sub.counts().values())
            broker.kill()
            time.sleep(3.0)
            broker.start()
            restart_info = {"killed_after_s": round(time.monotonic() - t0, 1), "received_before": before}
        else:
            _wait(lambda: len(_monitor_state(mon_port).get("devices", [])) >= n, 600)
            monitor_rows = _monitor_state(mon_port)["devices"]
        rows = [finish_device(d, 900) for d in devices]
        # Delivered to the broker must reach the subscriber; in the restart phase a few may have been in the
        # broker's hands at the SIGKILL, so this wait is bounded and what arrived is reported as is.
        _wait(lambda: all(sub.counts().get(r["name"], 0) >= (r["mqtt_delivered"] or 0) for r in rows), 30, fatal=False)
        final_monitor = _monitor_state(mon_port)
    finally:
        for d in devices:
            for p in (d["stream"], d["sim"]):
                if p.poll() is None:
                    p.kill()
        monitor.terminate()
        monitor.wait(10)
        sub.close()
        broker.close()
    counts = sub.counts()
    for r in rows:
        r["received"] = counts.get(r["name"], 0)
    return {"devices": rows, "duplicates": sub.duplicates, "wall_s": round(time.monotonic() - t0, 1),
            "monitor_devices_mid_run": len(monitor_rows), "monitor_devices_end": len(final_monitor.get("devices", [])),
            "monitor_online_mid_run": sum(1 for d in monitor_rows if d["online"]),
            "monitor_malformed": final_monitor.get("malformed"), **restart_info}


def _monitor_state(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=10) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


def _wait(cond: Any, timeout: float, fatal: bool = True) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            if fatal:
                raise SystemExit("fleet benchmark: timed out waiting")
            return False
        time.sleep(0.25)
    return True


def run_cost(bundle: Path, windows: int, variant: str, screenshot: Path | None) -> dict[str, Any]:
    """One stream at 20x real time. ``variant``: "none"; "outputs" (--publish + --serve, a subscriber-less
    broker); "outputs+browser" (the same with headless Chromium on the page, which also takes the screenshot)."""
    broker = Broker().start() if variant != "none" else None
    sim = subprocess.Popen([sys.executable, "-m", "hartool", "simulate", "--subject", "1", "--speed", "20", "--loop"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=ENV)
    assert sim.stdout is not None
    pty = sim.stdout.readline().strip()
    summary = Path(tempfile.mkdtemp(prefix="fleet-cost-")) / "s.json"
    page_port = free_port()
    args = ["stream", str(bundle), "--port", pty, "--max-windows", str(windows), "--summary-json", str(summary)]
    if broker is not None:
        args += ["--publish", f"mqtt://127.0.0.1:{broker.port}/cost", "--device-name", "pi",
                 "--serve", f"127.0.0.1:{page_port}"]
    stream = subprocess.Popen([sys.executable, "-c", NO_TF, *args], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=ENV)
    shot = None
    try:
        if variant == "outputs+browser" and browser_available():
            shot = _screenshot_during(page_port, screenshot)
        _, err = stream.communicate(timeout=900)
    finally:
        for p in (stream, sim):
            if p.poll() is None:
                p.kill()
        sim.wait(10)
        if broker is not None:
            broker.close()
    if stream.returncode != 0:
        raise SystemExit(f"cost stream failed: {err[-2000:]}")
    s = json.loads(summary.read_text())
    return {"variant": variant, "windows": s["windows"], "peak_rss_mb": s["peak_rss_mb"],
            "e2e_us": s["e2e_us"], "inference_us": s["inference_us"], "dropped": s["dropped"],
            "mqtt_delivered": s.get("mqtt_delivered"), "page_windows": s.get("page_windows"),
            "tensorflow_absent": True, "screenshot": shot}


def _screenshot_during(port: int, path: Path | None) -> str | None:
    """Open the live page in headless Chromium while the stream runs (to its end); screenshot at window 150."""
    _wait(lambda: bool(_page_state(port)), 300)
    with Browser() as browser:
        browser.get(f"http://127.0.0.1:{port}/")
        browser.wait_for("const a = document.getElementById('activity');"
                         "return Number(a.dataset.window || -1) >= 150;", timeout=600)
        shot = None
        if path is not None:
            browser.screenshot(path)
            shot = str(path.relative_to(REPO))
        # Stay on the page (it keeps redrawing) until the stream ends, so its cost is in the numbers.
        _wait(lambda: not _page_state(port), 900, fatal=False)
    return shot


def _page_state(port: int) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


def sink_cost(labels: list[str], n: int = 600) -> dict[str, Any]:
    """In-process: the time `on_window` of the sinks (publisher + page with a browser-like SSE client) takes on
    the classifier's thread, per window, at 20x real time: what the outputs add to end-to-end latency."""
    import numpy as np

    from hartool.runtime.classifier import WindowPrediction
    from hartool.runtime.sinks import SinkContext, open_sinks
    from hartool.runtime.sinks.build import MQTT, PAGE
    from hartool.runtime.sinks.page import LivePageSink

    broker = Broker().start()
    sse = None
    try:
        fan = open_sinks({"publish": f"mqtt://127.0.0.1:{broker.port}/cost", "device_name": "bench",
                          "serve": "127.0.0.1:0"}, SinkContext(labels, out=sys.stdout), types=(MQTT, PAGE))
        page = next(s for s in fan.sinks if isinstance(s, LivePageSink))
        sse = urllib.request.urlopen(page.url + "events", timeout=30)  # noqa: SIM115 - closed below
        body = sse
        threading.Thread(target=lambda: [None for _ in iter(lambda: body.read(4096), b"")], daemon=True).start()
        rng = np.random.default_rng(0)
        took = []
        for i in range(n):
            probs = rng.dirichlet(np.ones(len(labels))).tolist()
            k = int(np.argmax(probs))
            p = WindowPrediction(window=i, end_sample=128 + 64 * i, label=labels[k], confidence=probs[k],
                                 probs=probs, dropped=0, inference_us=20.0, e2e_us=0.0, t_s=i * 0.064,
                                 uncertain=False, t_end_s=i * 1.28, raw_probs=probs)
            t0 = time.perf_counter_ns()
            fan(p)
            took.append((time.perf_counter_ns() - t0) / 1000.0)
            time.sleep(1.28 / 20)  # a window every 1.28 s at real time (128 / 64 at 50 Hz), 20x
        counters = fan.close(None)
    finally:
        if sse is not None:
            sse.close()
        broker.close()
    arr = np.asarray(took)
    return {"windows": n, "p50_us": round(float(np.percentile(arr, 50)), 2),
            "p99_us": round(float(np.percentile(arr, 99)), 2), "max_us": round(float(arr.max()), 1),
            "mqtt_delivered": counters.get("mqtt_delivered"), "page_windows": counters.get("page_windows")}


def report(doc: dict[str, Any]) -> str:
    lines = ["## Fleet: MQTT publish, monitor, live page (issue 12)\n",
             f"`{doc['command']}` on {doc['date'][:10]}; {doc['machine']}; bundle `{doc['bundle']}`.\n"]
    for phase in ("fleet", "restart"):
        f = doc[phase]
        ok = sum(1 for r in f["devices"] if r["rc"] == 0)
        lines.append(f"**{phase}**: {len(f['devices'])} devices at 10x real time, {ok} exited 0, "
                     f"{f['wall_s']} s wall" + (f"; broker SIGKILLed after {f['killed_after_s']} s, restarted 3 s later; "
                                                f"{sum(1 for r in f['devices'] if r['mqtt_reconnects'])} devices "
                                                "were publishing across it (reconnects 1)"
                                                if phase == "restart" else
                                                f"; monitor showed {f['monitor_devices_mid_run']} devices mid-run "
                                                f"({f['monitor_online_mid_run']} online)") + ".\n")
        lines.append(md_table(["device", "windows", "delivered", "overflow", "undelivered", "received", "reconnects",
                               "accounted"],
                              [[r["name"], r["mqtt_windows"], r["mqtt_delivered"], r["mqtt_overflow"],
                                r["mqtt_undelivered"], r["received"], r["mqtt_reconnects"],
                                "yes" if r["mqtt_windows"] == (r["mqtt_delivered"] or 0) + (r["mqtt_overflow"] or 0)
                                + (r["mqtt_undelivered"] or 0) else "NO"] for r in f["devices"]]))
        lines.append("")
    rows = [[c["variant"], c["windows"],
             f"{c['peak_rss_mb']:.1f}", f"{c['e2e_us'].get('p50', 0):.0f}", f"{c['e2e_us'].get('p99', 0):.0f}",
             f"{c['inference_us'].get('p99', 0):.0f}"] for c in doc["cost"]]
    lines.append("**cost** (one stream at 20x real time, TensorFlow unimportable; none = no outputs, outputs = "
                 "--publish + --serve, +browser = headless Chromium on the live page):\n")
    lines.append(md_table(["stream", "windows", "peak RSS MB", "e2e p50 us", "e2e p99 us", "inference p99 us"], rows))
    if "on_window" in doc:
        w = doc["on_window"]
        lines.append(f"\nThe sinks' own share of e2e (in-process, `on_window` of publisher + page with an SSE client, "
                     f"{w['windows']} windows at 20x): p50 {w['p50_us']} us, p99 {w['p99_us']} us, max {w['max_us']} us.")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("/work/bundles/cnn"))
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--windows", type=int, default=400,
                    help="windows per device (400 = ~51 s at 10x: long enough for all 20 to overlap)")
    ap.add_argument("--cost-windows", type=int, default=400)
    ap.add_argument("--skip", default="", help="comma list of phases to skip: fleet,restart,cost")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    doc = stamp(sys.argv) | {"bundle": str(args.bundle)}
    previous = RESULTS / "fleet.json"
    if skip and previous.exists():  # a partial re-run keeps the other phases of the last full run
        doc = json.loads(previous.read_text()) | {"rerun": doc}
    work = Path(tempfile.mkdtemp(prefix="fleet-"))
    if "fleet" not in skip:
        doc["fleet"] = run_fleet(args.bundle, args.devices, args.windows, restart=False, workdir=work)
        print(json.dumps({k: v for k, v in doc["fleet"].items() if k != "devices"}), file=sys.stderr)
    if "restart" not in skip:
        doc["restart"] = run_fleet(args.bundle, args.devices, args.windows, restart=True, workdir=work)
        print(json.dumps({k: v for k, v in doc["restart"].items() if k != "devices"}), file=sys.stderr)
    if "cost" not in skip:
        shot = REPO / "benchmarks" / "live_page.png"
        # Alternate plain and full runs so the shared machine's load drifts hit both alike.
        doc["cost"] = []
        for repeat in range(2):
            doc["cost"] += [run_cost(args.bundle, args.cost_windows, "none", None),
                            run_cost(args.bundle, args.cost_windows, "outputs", None),
                            run_cost(args.bundle, args.cost_windows, "outputs+browser", None if repeat else shot)]
        doc["on_window"] = sink_cost(Bundle.load(args.bundle).labels)
    path = save("fleet.json", doc)
    if all(k in doc for k in ("fleet", "restart", "cost")):
        print(report(doc))
    print(f"saved {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
