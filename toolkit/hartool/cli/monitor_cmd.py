"""`hartool monitor`: every device publishing under an MQTT prefix, as a terminal table, JSONL or a live page."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

import click

from .common import status, table

REFRESH_S = 1.0


def _rows(snap: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for d in snap["devices"]:
        seen = "-" if d["last_seen_s_ago"] is None else f"{d['last_seen_s_ago']:.0f} s ago"
        conf = "-" if d["confidence"] is None else f"{100 * d['confidence']:.1f}%"
        state = "?" if d["online"] is None else ("online" if d["online"] else "offline")
        rows.append([d["name"], d["activity"] or "-", conf, f"{d['windows_per_s']:.2f}", d["windows"], d["drops"],
                     seen, state])
    return rows


def render_table(snap: dict[str, Any]) -> str:
    """The monitor's snapshot as a text table with a one-line header."""
    head = (f"{len(snap['devices'])} devices under {snap['prefix']}/, {snap['online']} online; "
            f"malformed messages {snap['malformed']}")
    if snap.get("untracked") or snap.get("expired"):
        head += f"; untracked messages {snap['untracked']} (device cap), expired devices {snap['expired']}"
    body = table(["device", "activity", "confidence", "windows/s", "windows", "drops", "last seen", "state"],
                 _rows(snap))
    return head + "\n" + body


@click.command()
@click.argument("url")
@click.option("--serve", metavar="HOST:PORT", default=None,
              help="Also serve the table as a live page (:PORT for this machine only, 0.0.0.0:PORT for every "
                   "interface; see SECURITY.md).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="The page then needs the token in this file's first line (?token=... or a Bearer header).")
@click.option("--jsonl", is_flag=True, help="One JSON object per device per refresh on stdout, nothing else.")
@click.option("--duration", "duration_s", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after S seconds.")
@click.option("--once", is_flag=True, help="Wait --settle seconds for retained/incoming messages, print once, exit.")
@click.option("--settle", "settle_s", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="With --once: how long to listen before printing.")
@click.option("--tls", is_flag=True, help="Use TLS with mqtt:// (port 8883 by default).")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None, help="CA file (implies --tls).")
@click.option("--mqtt-password-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File whose first line is the broker password (else $HARTOOL_MQTT_PASSWORD).")
@click.option("--expire", "expire_s", type=click.FloatRange(min=0, min_open=True), default=600.0,
              show_default=True, help="Forget a device after S seconds without a message.")
@click.option("--max-devices", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Track at most N devices; messages of further names are only counted.")
def monitor(url: str, serve: str | None, jsonl: bool, duration_s: float | None, once: bool, settle_s: float,
            tls: bool, tls_ca: str | None, mqtt_password_file: str | None, expire_s: float,
            max_devices: int, token_file: str | None) -> None:
    """Watch every device that publishes under an MQTT prefix (`hartool stream --publish`).

    Shows name, activity, confidence, windows/s, drops, last seen and online/offline for each device;
    refreshes every second until Ctrl-C (or SIGTERM/SIGHUP), --duration or (with --once) after one table.
    Names, labels and states are shown without control characters and cut to a sane length.

    \b
    Example:
      hartool monitor mqtt://broker.local/har
      hartool monitor mqtt://broker.local/har --serve 0.0.0.0:8090 --token-file ~/.hartool-token
      hartool monitor mqtt://broker.local/har --once --jsonl
    """
    from ..runtime.monitor import FleetMonitor
    from ..runtime.sinks.page import parse_host_port
    from ..wire.door import read_token
    from ..wire.mqtt import parse_mqtt_url, read_password

    parsed = parse_mqtt_url(url, tls=tls or tls_ca is not None)
    if token_file and not serve:
        raise click.UsageError("--token-file needs --serve")
    host_port = parse_host_port(serve) if serve else None
    token = read_token(token_file) if token_file else None
    fleet = FleetMonitor(parsed, password=read_password(mqtt_password_file), ca_file=tls_ca, expire_s=expire_s,
                         max_devices=max_devices)
    # SIGTERM/SIGHUP arrive as KeyboardInterrupt (hartool.cli.main), so they end the watch like Ctrl-C.
    _watch(fleet, host_port, token, parsed.display(), jsonl=jsonl, duration_s=settle_s if once else duration_s,
           once=once)


def _watch(fleet: Any, host_port: tuple[str, int] | None, token: str | None, shown: str, *, jsonl: bool,
           duration_s: float | None, once: bool) -> None:
    from ..runtime.monitor import MonitorPage

    page = None
    try:
        fleet.start()
        if host_port is not None:
            page = MonitorPage(fleet, *host_port, token=token).start()
            status(f"monitor page on {page.server.describe()}")
        status(f"watching {shown}/# (Ctrl-C to stop)")
        _loop(fleet, jsonl=jsonl, duration_s=duration_s, once=once)
    except KeyboardInterrupt:
        pass
    finally:
        if page is not None:
            page.close()
        fleet.close()


def _loop(fleet: Any, *, jsonl: bool, duration_s: float | None, once: bool) -> None:
    stop = threading.Event()
    tty = sys.stdout.isatty() and not jsonl
    waited = 0.0
    while True:
        step = REFRESH_S if duration_s is None else min(REFRESH_S, max(0.0, duration_s - waited))
        stop.wait(step)  # an Event wait: interruptible by Ctrl-C, and bounded
        waited += step
        done = duration_s is not None and waited >= duration_s
        if once and not done:
            continue
        _emit(fleet.snapshot(), jsonl=jsonl, tty=tty)
        if done:
            return


def _emit(snap: dict[str, Any], *, jsonl: bool, tty: bool) -> None:
    if jsonl:
        for row in snap["devices"]:
            click.echo(json.dumps({"t": round(snap["now"], 3), **row, "malformed_total": snap["malformed"]}))
        return
    text = render_table(snap)
    click.echo(("\x1b[H\x1b[2J" if tty else "") + text + ("" if tty else "\n"))
