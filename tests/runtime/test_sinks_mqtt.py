"""The MQTT publisher sink and wire/mqtt.py against a real broker (tests/services.py): topics, payloads,
retained state, last will, Home Assistant discovery, overflow while the broker is down, broker restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hartool.core.errors import WireError
from hartool.runtime.sinks.mqtt import MqttPublisher, _slug, discovery_messages
from hartool.wire.mqtt import PASSWORD_ENV, parse_mqtt_url, read_password
from hartool_testing import wait_until
from mqtt_testing import Recorder, Win


@pytest.mark.parametrize(("url", "host", "port", "prefix", "user", "tls"), [
    ("mqtt://broker.local/home/har", "broker.local", 1883, "home/har", None, False),
    ("mqtt://pi@10.0.0.2:1999/har/", "10.0.0.2", 1999, "har", "pi", False),
    ("mqtts://broker/har", "broker", 8883, "har", None, True),
    ("mqtt://[::1]:1884/x", "::1", 1884, "x", None, False),
])
def test_parse_mqtt_url(url: str, host: str, port: int, prefix: str, user: str | None, tls: bool) -> None:
    u = parse_mqtt_url(url)
    assert (u.host, u.port, u.prefix, u.username, u.tls) == (host, port, prefix, user, tls)
    assert u.topic("kitchen", "window") == f"{prefix}/kitchen/window"


def test_tls_flag_changes_default_port_and_wildcards_only_when_allowed() -> None:
    assert parse_mqtt_url("mqtt://b/p", tls=True).port == 8883
    assert parse_mqtt_url("mqtt://b/p/#", allow_wildcards=True).prefix == "p/#"
    with pytest.raises(WireError, match="wildcards"):
        parse_mqtt_url("mqtt://b/p/+/x")


@pytest.mark.parametrize(("url", "why"), [
    ("http://b/p", "expected mqtt://"), ("mqtt:///p", "no broker host"), ("mqtt://b", "no topic prefix"),
    ("mqtt://b:70000/p", "bad MQTT URL"), ("mqtt://b/p?q=1", "'?'"), ("mqtt://u:hunter2@b/p", "HARTOOL_MQTT_PASSWORD"),
])
def test_bad_mqtt_urls_are_one_line_errors_without_the_password(url: str, why: str) -> None:
    with pytest.raises(WireError) as err:
        parse_mqtt_url(url)
    text = str(err.value)
    assert why in text and "\n" not in text and "hunter2" not in text


def test_password_from_file_or_environment(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\nignored\n")
    assert read_password(pw, env={PASSWORD_ENV: "other"}) == "s3cret"
    assert read_password(None, env={PASSWORD_ENV: "from-env"}) == "from-env"
    assert read_password(None, env={}) is None
    with pytest.raises(WireError, match="cannot read MQTT password file"):
        read_password(tmp_path / "missing")


def test_unreachable_broker_fails_at_start_with_one_line() -> None:
    from services import free_port

    url = parse_mqtt_url(f"mqtt://127.0.0.1:{free_port()}/har")
    with pytest.raises(WireError, match="unreachable") as err:
        MqttPublisher(url, "dev", connect_timeout_s=3).start()
    assert "\n" not in str(err.value)


def test_missing_tls_ca_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WireError, match="CA file not found"):
        MqttPublisher(parse_mqtt_url("mqtts://127.0.0.1/har"), "dev", ca_file=str(tmp_path / "ca.pem"))


def test_windows_state_and_status_topics(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = parse_mqtt_url(mqtt_broker.url("t-topics"))
    labels = ["SIT", "SIT", "WALK", "WALK", "WALK", "SIT"]
    wins = [Win(i, lab, dropped=i) for i, lab in enumerate(labels)]
    with Recorder(url, "t-topics/#") as rec:
        pub = MqttPublisher(url, "kitchen").start()
        for w in wins:
            pub.on_window(w)
        counters = pub.close()
        wait_until(lambda: rec.on("/status")[-1:] and rec.on("/status")[-1].payload == "offline", what="offline")
    assert [m.topic for m in rec.on("/window")] == ["t-topics/kitchen/window"] * len(wins)
    assert rec.windows() == [w.to_json() for w in wins]          # the same fields as JSONL, in order
    assert all(m.qos == 1 for m in rec.on("/window"))
    assert [m.payload for m in rec.on("/state")] == ["SIT", "WALK", "SIT"]  # only on change
    assert [m.payload for m in rec.on("/status")] == ["online", "offline"]
    assert counters["mqtt_windows"] == counters["mqtt_delivered"] == len(wins)
    assert counters["mqtt_overflow"] == counters["mqtt_undelivered"] == 0
    # A late subscriber gets the retained state, status and the final counters.
    with Recorder(url, "t-topics/#") as late:
        wait_until(lambda: len(late.messages) >= 3, what="retained messages")
    retained = {m.topic.rsplit("/", 1)[1]: m for m in late.messages}
    assert retained["state"].payload == "SIT" and retained["state"].retain
    assert retained["status"].payload == "offline" and retained["status"].retain
    assert json.loads(retained["stats"].payload)["mqtt_delivered"] == len(wins)
    assert not late.on("/window")                                  # windows are not retained


def test_home_assistant_discovery_config(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    url = parse_mqtt_url(mqtt_broker.url("t-ha"))
    slug = _slug("pi 2")
    assert slug.startswith("pi_2_") and len(slug) == len("pi_2_") + 8
    with Recorder(url, f"homeassistant/sensor/hartool_{slug}/#") as rec:
        pub = MqttPublisher(url, "pi 2", ha_discovery=True, version="9.9").start()
        pub.on_window(Win(0, "LAYING"))
        pub.close()
        wait_until(lambda: len(rec.messages) >= 2, what="discovery config")
    configs = {m.topic: json.loads(m.payload) for m in rec.messages}
    activity = configs[f"homeassistant/sensor/hartool_{slug}/activity/config"]
    assert activity["state_topic"] == "t-ha/pi 2/state"
    assert activity["availability_topic"] == "t-ha/pi 2/status"
    assert (activity["payload_available"], activity["payload_not_available"]) == ("online", "offline")
    assert activity["unique_id"] == f"hartool_{slug}_activity"
    assert activity["device"]["identifiers"] == [f"hartool_{slug}"] and activity["device"]["sw_version"] == "9.9"
    confidence = configs[f"homeassistant/sensor/hartool_{slug}/confidence/config"]
    assert confidence["state_topic"] == "t-ha/pi 2/window" and confidence["unit_of_measurement"] == "%"
    assert confidence["unique_id"] != activity["unique_id"]
    assert len(discovery_messages(url, "pi 2")) == 2


def test_last_will_says_offline_when_the_process_dies(mqtt_broker, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    url = parse_mqtt_url(mqtt_broker.url("t-will"))
    script = textwrap.dedent(f"""
        import sys, threading
        from hartool.runtime.sinks.mqtt import MqttPublisher
        from hartool.wire.mqtt import parse_mqtt_url
        MqttPublisher(parse_mqtt_url({mqtt_broker.url("t-will")!r}), "doomed").start()
        print("ready", flush=True)
        threading.Event().wait(120)
    """)
    with Recorder(url, "t-will/doomed/status") as rec:
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            wait_until(lambda: [m.payload for m in rec.messages] == ["online"], what="online")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
        wait_until(lambda: len(rec.messages) >= 2, what="the last will")
    assert [m.payload for m in rec.messages] == ["online", "offline"]


def test_overflow_while_broker_down_and_resume_after_restart(fresh_mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    broker = fresh_mqtt_broker
    url = parse_mqtt_url(broker.url("t-restart"))
    said: list[str] = []
    with Recorder(url, "t-restart/dev/window") as rec:
        pub = MqttPublisher(url, "dev", queue_size=10, on_status=said.append).start()
        for i in range(5):
            pub.on_window(Win(i, "SIT"))
        wait_until(lambda: len(rec.messages) == 5, what="first windows")
        broker.kill()
        wait_until(lambda: not pub.counters()["mqtt_connected"], what="the publisher to notice")
        for i in range(5, 5 + 1000):                              # the classifier never waits for the broker
            pub.on_window(Win(i, "WALK"))
        mid = pub.counters()
        assert mid["mqtt_queued"] == 10 and mid["mqtt_overflow"] == 990
        broker.start()
        rec.wait_subscribed(2)
        wait_until(lambda: pub.counters()["mqtt_reconnects"] == 1, what="publisher reconnect")
        wait_until(lambda: pub.counters()["mqtt_delivered"] == 15, what="queued windows delivered")
        pub.on_window(Win(1005, "SIT"))
        wait_until(lambda: any(w["window"] == 1005 for w in rec.windows()), what="a window after the restart")
        counters = pub.close()
    assert counters["mqtt_windows"] == 1006
    assert counters["mqtt_windows"] == counters["mqtt_delivered"] + counters["mqtt_overflow"] + counters["mqtt_undelivered"]
    assert counters["mqtt_overflow"] == 990 and counters["mqtt_undelivered"] == 0
    assert counters["mqtt_reconnects"] == 1 and counters["mqtt_disconnects"] == 1 and counters["mqtt_offline_s"] > 0
    # The oldest windows overflowed: the 10 newest held in the queue were delivered after the restart.
    received = {w["window"] for w in rec.windows()}
    assert set(range(5)) <= received and set(range(5, 995)).isdisjoint(received)
    assert any(msg.startswith("mqtt: lost") for msg in said)
    assert any(msg.startswith("mqtt: reconnected") and "s away" in msg for msg in said)


def test_without_waiting_for_the_broker_windows_wait_in_the_queue(fresh_mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    broker = fresh_mqtt_broker
    broker.kill()                                                  # `stream --reconnect`: no broker at start
    url = parse_mqtt_url(broker.url("t-late"))
    pub = MqttPublisher(url, "early", wait_for_broker=False).start()
    for i in range(20):
        pub.on_window(Win(i, "SIT"))
    assert pub.counters()["mqtt_connected"] is False and pub.counters()["mqtt_queued"] == 20
    broker.start()
    wait_until(lambda: pub.counters()["mqtt_delivered"] == 20, what="late delivery")
    with Recorder(url, "t-late/early/#") as rec:                  # retained state and status are there
        wait_until(lambda: len(rec.on("/state")) == 1 and len(rec.on("/status")) == 1, what="retained")
        counters = pub.close()
    assert rec.on("/state")[0].payload == "SIT" and rec.on("/status")[0].payload == "online"
    assert counters["mqtt_windows"] == counters["mqtt_delivered"] == 20 and counters["mqtt_reconnects"] == 0


def test_similar_names_stay_distinct_in_home_assistant(mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    """`kitchen.pi` and `kitchen_pi` once shared a unique_id (one entity overwrote the other) and a client id (the
    broker kept kicking one off). Both now keep their own entities, topics and connection."""
    url = parse_mqtt_url(mqtt_broker.url("t-ha2"))
    names = ["kitchen.pi", "kitchen_pi", "kitchen pi", "küche"]
    with Recorder(url, "homeassistant/sensor/#") as rec:
        pubs = [MqttPublisher(url, name, ha_discovery=True).start() for name in names]
        for pub in pubs:
            pub.on_window(Win(0, "SIT"))
        wait_until(lambda: all(p.counters()["mqtt_delivered"] == 1 for p in pubs), what="both delivered")
        counters = [p.close() for p in pubs]
        wait_until(lambda: len(rec.messages) >= 2 * len(names), what="discovery configs")
    ours = [m for m in rec.messages if json.loads(m.payload)["availability_topic"].startswith("t-ha2/")]
    configs = [json.loads(m.payload) for m in ours if m.topic.endswith("/activity/config")]
    assert len({c["unique_id"] for c in configs}) == len(names)
    assert len({m.topic for m in ours}) == 2 * len(names)
    assert sorted(c["state_topic"] for c in configs) == sorted(f"t-ha2/{n}/state" for n in names)
    assert _slug("kitchen_pi") == "kitchen_pi"                      # an already-clean name is kept as it is
    assert all(c["mqtt_disconnects"] == 0 and c["mqtt_reconnects"] == 0 for c in counters)  # no session takeover


@pytest.mark.parametrize("name", ["a\x1b]0;x\x07", "tab\there", "x" * 65, "a/b", "+", " lead"])
def test_bad_device_names_are_refused_without_echoing_controls(name: str) -> None:
    with pytest.raises(WireError) as err:
        MqttPublisher(parse_mqtt_url("mqtt://127.0.0.1:1/p"), name)
    assert "\x1b" not in str(err.value) and "\t" not in str(err.value)


def _auth_broker(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A mosquitto whose ``auth_port`` wants user `pi` with password `right` (its anonymous ``port`` only serves
    the readiness check of tests/services.py)."""
    import shutil

    from services import MqttBroker, free_port

    if not shutil.which("mosquitto_passwd"):
        pytest.skip("needs mosquitto_passwd")
    pw = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(pw), "pi", "right"], check=True, capture_output=True)
    broker = MqttBroker(kind="mosquitto")
    broker.auth_port = free_port()  # type: ignore[attr-defined]
    conf = tmp_path / "auth.conf"
    # `user root`: started as root, mosquitto would switch to its own user, which cannot read pytest's tmp dirs
    # (no effect when the tests run as another user).
    conf.write_text(f"per_listener_settings true\npersistence false\nuser root\n"
                    f"listener {broker.port} {broker.host}\nallow_anonymous true\n"
                    f"listener {broker.auth_port} {broker.host}\nallow_anonymous false\npassword_file {pw}\n")
    broker._command = lambda: [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]  # type: ignore[method-assign]
    return broker.start()


def test_refused_password_under_reconnect_is_said_and_counted(tmp_path: Path) -> None:
    broker = _auth_broker(tmp_path)
    said: list[str] = []
    try:
        url = parse_mqtt_url(f"mqtt://pi@{broker.host}:{broker.auth_port}/t-auth")
        with pytest.raises(WireError, match="refused the connection"):     # without --reconnect: one line at start
            MqttPublisher(url, "dev", password="wrong").start()
        pub = MqttPublisher(url, "dev", password="wrong", wait_for_broker=False, on_status=said.append).start()
        for i in range(5):
            pub.on_window(Win(i, "SIT"))
        wait_until(lambda: pub.counters()["mqtt_refusals"] >= 2, what="two refusals")
        counters = pub.close()
        assert MqttPublisher(url, "dev", password="right").start().close()["mqtt_refusals"] == 0  # the login works
    finally:
        broker.close()
    refused = [m for m in said if "refused the connection" in m]
    assert len(refused) == 1 and ("Not authorized" in refused[0] or "Bad user name or password" in refused[0])
    assert counters["mqtt_refusals"] >= 2 and counters["mqtt_delivered"] == 0
    assert counters["mqtt_undelivered"] == 5 and counters["mqtt_offline_s"] > 0


def test_unreachable_broker_under_reconnect_is_said_once_and_counted(fresh_mqtt_broker) -> None:  # type: ignore[no-untyped-def]
    broker = fresh_mqtt_broker
    broker.kill()
    said: list[str] = []
    pub = MqttPublisher(parse_mqtt_url(broker.url("t-down")), "dev", wait_for_broker=False,
                        on_status=said.append).start()
    pub.on_window(Win(0, "SIT"))
    wait_until(lambda: pub.counters()["mqtt_connect_failures"] >= 2, what="two failed attempts")
    live = pub.counters()
    broker.start()
    wait_until(lambda: pub.counters()["mqtt_delivered"] == 1, what="delivery after the outage")
    counters = pub.close()
    assert [m for m in said if "cannot be reached" in m] == [said[0]]
    assert any(m.startswith("mqtt: connected to") and "s away" in m for m in said)
    assert live["mqtt_offline_s"] > 0 and counters["mqtt_offline_s"] >= live["mqtt_offline_s"]
    assert counters["mqtt_connect_failures"] >= 2 and counters["mqtt_reconnects"] == 0
