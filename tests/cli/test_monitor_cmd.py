"""`hartool monitor` and runtime/monitor.py against a real broker: several devices, malformed messages, the page."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from typing import Any

import pytest

from hartool.runtime.monitor import FleetMonitor
from hartool.runtime.sinks.mqtt import MqttPublisher
from hartool.wire.mqtt import connect, disconnect, make_client, parse_mqtt_url
from hartool_testing import hartool, wait_until
from mqtt_testing import Win
from webdriver import Browser, browser_available

MALFORMED = [("x/window", b"not json"), ("a/b/c", b"1"), ("y/status", b"maybe"), ("z/window", b'{"label": 3}'),
             ("w/window", b"\xff\xfe"), ("v/bogus", b"{}")]


def _raw_publish(url: str, items: list[tuple[str, bytes]], retain: bool = False) -> None:
    u = parse_mqtt_url(url)
    client = make_client(u)
    connect(client, u)
    for topic, payload in items:
        client.publish(u.topic(topic), payload, qos=1, retain=retain).wait_for_publish(30)
    disconnect(client)


def _publishers(url: str, plan: dict[str, list[str]], dropped: int = 0) -> dict[str, MqttPublisher]:
    pubs = {}
    for name, labels in plan.items():
        pub = MqttPublisher(parse_mqtt_url(url), name).start()
        for i, label in enumerate(labels):
            pub.on_window(Win(i, label, confidence=0.5 + 0.1 * i, dropped=dropped))
        n = len(labels)
        wait_until(lambda p=pub, n=n: p.counters()["mqtt_delivered"] == n, what=f"{name} delivered")
        pubs[name] = pub
    return pubs


def _by_name(snap: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in snap["devices"]}


def test_monitor_tracks_devices_and_counts_malformed_messages(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("m-lib")
    with FleetMonitor(parse_mqtt_url(url)) as mon:
        # start() returned after the broker's SUBACK: a window published from here on cannot be missed (before,
        # it returned at CONNACK, and under load the first windows went out before the subscription existed).
        assert mon._suback.event.is_set() and mon._suback.error is None
        pubs = _publishers(url, {"a": ["SIT", "WALK", "WALK"], "b": ["LAY"] * 5, "c": ["STAND", "SIT"]}, dropped=7)
        _raw_publish(url, MALFORMED)
        wait_until(lambda: mon.snapshot()["malformed"] == len(MALFORMED), what="malformed count")
        wait_until(lambda: sum(d["windows"] for d in mon.snapshot()["devices"]) == 10, what="all windows")
        rows = _by_name(mon.snapshot())
        pubs["b"].close()
        wait_until(lambda: _by_name(mon.snapshot())["b"]["online"] is False, what="b offline")
        rows_after = _by_name(mon.snapshot())
        for pub in (pubs["a"], pubs["c"]):
            pub.close()
    assert sorted(rows) == ["a", "b", "c"]                       # malformed topics made no devices
    assert [rows[n]["windows"] for n in "abc"] == [3, 5, 2]
    assert (rows["a"]["activity"], rows["b"]["activity"], rows["c"]["activity"]) == ("WALK", "LAY", "SIT")
    assert rows["a"]["confidence"] == pytest.approx(0.7) and rows["a"]["drops"] == 7
    assert all(rows[n]["online"] for n in "abc") and rows["a"]["windows_per_s"] > 0
    assert rows_after["b"]["online"] is False and rows_after["a"]["online"] is True


def test_monitor_cli_once_jsonl_and_table(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("m-cli")
    pubs = _publishers(url, {"kitchen": ["SIT", "WALK"], "hall": ["LAY"]})
    pubs["hall"].close()                                          # retained: offline, state LAY
    _raw_publish(url, [("broken/status", b"zzz")], retain=True)
    try:
        out = hartool("monitor", url, "--once", "--settle", "3", "--jsonl").stdout
        table = hartool("monitor", url, "--once", "--settle", "3").stdout
    finally:
        pubs["kitchen"].close()
    rows = {r["name"]: r for r in map(json.loads, out.splitlines())}
    assert sorted(rows) == ["hall", "kitchen"]
    assert (rows["kitchen"]["activity"], rows["kitchen"]["online"]) == ("WALK", True)
    assert (rows["hall"]["activity"], rows["hall"]["online"]) == ("LAY", False)
    assert rows["hall"]["malformed_total"] == 1
    assert re.search(r"^kitchen\s+WALK\s.*\sonline$", table, re.M) and re.search(r"^hall\s+LAY\s.*\soffline$", table, re.M)
    assert "2 devices under m-cli/, 1 online; malformed messages 1" in table


def test_monitor_unreachable_broker_and_bad_url_are_one_line() -> None:
    from services import free_port

    for url, why in ((f"mqtt://127.0.0.1:{free_port()}/x", "unreachable"), ("mqtt://h", "no topic prefix")):
        proc = hartool("monitor", url, "--once", check=False)
        assert proc.returncode != 0 and why in proc.stderr.strip().splitlines()[-1]
        assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not browser_available(), reason="needs Debian chromium + chromium-driver")
def test_monitor_page_in_chromium(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = mqtt_broker.url("m-page")
    proc = subprocess.Popen([sys.executable, "-m", "hartool", "monitor", url, "--serve", "127.0.0.1:0",
                             "--duration", "600", "--jsonl"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True).start()  # type: ignore[union-attr]
    pubs: dict[str, MqttPublisher] = {}
    try:
        page = wait_until(lambda: next((m.group(1) for m in map(re.compile(r"page on (\S+)").search, lines) if m), None))
        wait_until(lambda: any("watching" in line for line in lines), what="subscription")
        pubs = _publishers(url, {"p1": ["WALK"], "p2": ["SIT", "LAY"]})
        with urllib.request.urlopen(page + "state", timeout=30) as resp:
            assert sorted(d["name"] for d in json.loads(resp.read())["devices"]) == ["p1", "p2"]
        with Browser() as browser:
            browser.get(page)
            cells = browser.wait_for("""
                const rows = [...document.querySelectorAll('#devices tbody tr')];
                return rows.length === 2 ? rows.map(r => [r.dataset.device, r.querySelector('.activity').textContent,
                                                          r.lastChild.textContent]) : null;""")
        assert cells == [["p1", "WALK", "online"], ["p2", "LAY", "online"]]
    finally:
        for pub in pubs.values():
            pub.close()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
