"""Every ``sh``/``console`` block of README.md runs through the real CLI, with tiny settings, in README order.

The blocks share one working directory, as a new user's shell would: ``hartool train ... --out bundles/cnn``
in one block makes the bundle the later blocks stream, benchmark and enroll. A block that cannot run here
says why in its directive, so no README command goes untested by accident.

Directive: the line right before each fenced ``sh``/``console`` block is one HTML comment (invisible on GitHub)::

    <!-- readme-test: ITEM; ITEM; ... -->

ITEM is one of

``skip="REASON"``
    the block is not run; REASON says where else it is covered or why it cannot run in CI.
``run``
    run as written (say it when there is nothing else to say).
``tiny="ARGS"`` / ``tiny.CMD="ARGS"`` / ``tiny.N="ARGS"``
    appended to every ``hartool`` command of the block / to ``hartool CMD ...`` only / to its N-th command
    (1-based). Click keeps an option's last value, so this overrides: ``--epochs 1``, ``--max-windows 3``.
``needs=A,B,...``
    stand-ins for what CI lacks:

    * ``pty``: ``/dev/ttyACM0`` is the pty of a fresh ``hartool simulate --subject 9 --speed 0`` per command;
    * ``broker``: ``broker.local[:1883]`` and ``127.0.0.1:1883`` are the test MQTT broker (tests/services.py);
    * ``sender``: a listening ``--port`` (tcp-listen, udp, http, mqtt) is fed by ``hartool simulate --as KIND``,
      KIND from the URL (hyperimu-tcp, hyperimu-udp, sensorlogger-http, sensorlogger-mqtt) unless
      ``sender="KIND [ARGS]"`` names it (ARGS go to ``simulate``); ``mcu-deg`` and ``csv-udp`` are this file's own senders of subject 9
      (an MCU printing micros, g, deg/s; plain CSV ``t_s,seq,acc m/s2,gyro deg/s`` datagrams);
    * ``listener``: each ``hartool simulate`` is read by ``hartool stream bundles/cnn`` until two windows
      came, then both are stopped with Ctrl-C (SIGINT);
    * ``more-data``: ``my-data/`` also holds two other wearers' recordings (carol, dave).
``stdin="KEYS"``
    written to each command's stdin, then closed (``record --labels`` reads label keys there).
``rows=N``
    a ``record`` ends with Ctrl-C once N rows are on disk (default 1000, 20 s at 50 Hz).
``exact``
    console output is compared number for number (default: any number matches any number).

Commands are the lines of an ``sh`` block and the ``$ `` lines of a ``console`` block (``\\`` continues a line,
``# ...`` is a comment). ``export NAME=VALUE`` sets the environment of the later commands; a trailing ``&``
runs a command in the background (a ``hartool simulate`` there prints its pty, which then stands for every
``/dev/pts/N``); background commands are stopped with Ctrl-C at the end of the block. Listening addresses
(``0.0.0.0:PORT``, ``127.0.0.1:PORT``) get free ports. Every command must exit 0; a ``stream`` also writes
``--summary-json``, which must count at least one window (exactly ``--max-windows`` when given).

The lines a ``console`` block shows after a command are checked against the real run, in order (stdout and
stderr each), with every number matching any number and every ALL_CAPS word any ALL_CAPS word (a tiny model's
labels differ from the README's real model); a ``...`` line stands for anything.

Run order matters: select blocks with ``-k`` only together with the blocks that make what they use.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hartool_testing import REPO

README = REPO / "README.md"
TIMEOUT_S = 600.0  # a hang guard for one command, never a measure of speed
DIRECTIVE = re.compile(r"^<!--\s*readme-test:(.*?)-->\s*$")
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SHELL_LANGS = {"sh", "console", "bash", "shell"}
NEEDS = {"pty", "broker", "sender", "listener", "more-data"}
SCHEME_SENDER = {"tcp-listen": "hyperimu-tcp", "udp": "hyperimu-udp", "http": "sensorlogger-http",
                 "mqtt": "sensorlogger-mqtt"}
SENDER_SCHEME = {"hyperimu-tcp": "tcp-listen", "mcu-tcp": "tcp-listen", "hyperimu-udp": "udp"}
LISTENER_UNITS = {"hyperimu-tcp": ["--acc-unit", "m/s2"], "hyperimu-udp": ["--acc-unit", "m/s2"]}  # HyperIMU: m/s2
LISTEN_ADDR = re.compile(r"\b(?:0\.0\.0\.0|127\.0\.0\.1|localhost):(\d{2,5})\b")
BROKER_ADDR = re.compile(r"\bbroker\.local(?::1883)?\b|\b127\.0\.0\.1:1883\b")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")
CAPS = re.compile(r"\b[A-Z][A-Z_]{2,}\b")


# ---------------------------------------------------------------------------------------------------------
# Parsing README.md: blocks, directives, commands, expected output


@dataclass
class Command:
    argv: list[str]
    background: bool = False
    expected: list[str] = field(default_factory=list)  # console: the lines shown after the command


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    directive: dict[str, str] | None

    @property
    def id(self) -> str:
        first = next((ln for ln in self.text.splitlines() if ln.strip()), "").lstrip("$ ").strip()
        return f"L{self.line}:{first[:40]}"


def parse_directive(text: str) -> dict[str, str]:
    """``a=b; c="d e"; flag`` -> {"a": "b", "c": "d e", "flag": ""}; unknown keys are an error."""
    items: dict[str, str] = {}
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    lexer.commenters = ""
    for token in lexer:
        if token == ";":
            continue
        key, _, value = token.partition("=")
        if not re.fullmatch(r"skip|run|tiny(\.\w+)?|needs|sender|stdin|rows|exact", key):
            raise ValueError(f"unknown readme-test key {key!r}")
        items[key] = value
    if "skip" in items and not items["skip"].strip():
        raise ValueError("skip needs a reason: skip=\"...\"")
    unknown = set(filter(None, items.get("needs", "").split(","))) - NEEDS
    if unknown:
        raise ValueError(f"unknown needs: {sorted(unknown)} (known: {sorted(NEEDS)})")
    return items


def readme_blocks(path: Path = README) -> list[Block]:
    """Every fenced sh/console block with the directive on the line before it (None if there is none)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if m.group(2) in SHELL_LANGS:
            indent = len(m.group(1))
            body = "\n".join(ln[indent:] for ln in lines[i + 1:end])
            prev = lines[i - 1].strip() if i else ""
            d = DIRECTIVE.match(prev)
            blocks.append(Block(i + 1, m.group(2), body, parse_directive(d.group(1)) if d else None))
        i = end + 1
    return blocks


def _logical_lines(text: str) -> Iterator[str]:
    buf = ""
    for raw in text.splitlines():
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        yield buf + raw
        buf = ""
    if buf:
        yield buf


def block_commands(block: Block) -> list[Command]:
    """The block's commands (shell words, comments dropped) with the output lines a console block shows."""
    commands: list[Command] = []
    for line in _logical_lines(block.text):
        if block.lang == "console" and not line.startswith("$ "):
            if commands and line.strip():
                commands[-1].expected.append(line)
            continue
        words = shlex.split(line[2:] if line.startswith("$ ") else line, comments=True)
        if not words:
            continue
        background = words[-1] == "&"
        commands.append(Command(words[:-1] if background else words, background))
    return commands


BLOCKS = readme_blocks()


def test_every_shell_block_has_a_directive() -> None:
    missing = [f"README.md line {b.line} ({b.lang}): {b.id}" for b in BLOCKS if b.directive is None]
    assert not missing, "blocks without a <!-- readme-test: ... --> line before them:\n" + "\n".join(missing)


# ---------------------------------------------------------------------------------------------------------
# Matching sample output


def line_pattern(expected: str, exact: bool) -> re.Pattern[str]:
    """A regex for one shown output line: numbers and ALL_CAPS words are free unless ``exact``."""
    pieces: list[str] = []
    pos = 0
    token = re.compile(r"\s+" if exact else rf"\s+|{CAPS.pattern}|{NUMBER.pattern}")
    text = expected.strip()
    for m in token.finditer(text):
        pieces.append(re.escape(text[pos:m.start()]))
        tok = m.group(0)
        pieces.append(r"\s+" if tok.isspace() else (r"[A-Z][A-Z_]+" if CAPS.fullmatch(tok) else NUMBER.pattern))
        pos = m.end()
    pieces.append(re.escape(text[pos:]))
    return re.compile("".join(pieces))


def missing_lines(expected: list[str], out: str, err: str, exact: bool) -> list[str]:
    """The shown lines that the run did not print (each stream read in order; ``...`` skips)."""
    streams = {"out": [ln.strip() for ln in out.splitlines()], "err": [ln.strip() for ln in err.splitlines()]}
    cursor = {"out": 0, "err": 0}
    missing = []
    for want in expected:
        if want.strip() == "...":
            continue
        pat = line_pattern(want, exact)
        for name, got in streams.items():
            hit = next((k for k in range(cursor[name], len(got)) if pat.fullmatch(got[k])), None)
            if hit is not None:
                cursor[name] = hit + 1
                break
        else:
            missing.append(want)
    return missing


def test_output_matching_frees_numbers_and_labels_only() -> None:
    shown = ["    0.00s  #0     STANDING              99.6%", "...", "summary: 3000 samples, 45 windows; end: eof"]
    out = "    0.06s  #0     WALKING_UPSTAIRS      23.4%\n    0.07s  #1     SITTING  20.1%\n"
    assert missing_lines(shown, out, "x\nsummary: 1,495 samples, 22 windows; end: eof\n", exact=False) == []
    assert missing_lines(shown, out, "summary: 1495 samples, 22 windows; end: max_windows\n", False) == [shown[2]]
    assert missing_lines(["windows: 7,415"], "windows: 7,416", "", exact=True) == ["windows: 7,415"]


# ---------------------------------------------------------------------------------------------------------
# Running: child processes, stand-ins, one workspace for the whole README


class Proc:
    """A child process whose stdout/stderr lines are collected by threads (waits have timeouts)."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> None:
        self.argv = argv
        self.popen = subprocess.Popen(argv, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE,
                                      stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL)
        if stdin is not None:
            assert self.popen.stdin is not None
            self.popen.stdin.write(stdin)
            self.popen.stdin.close()
        self.out: list[str] = []
        self.err: list[str] = []
        self._cond = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(s, dst), daemon=True)
                         for s, dst in ((self.popen.stdout, self.out), (self.popen.stderr, self.err))]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any, dst: list[str]) -> None:
        for line in stream:
            with self._cond:
                dst.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, what: str, cond: Callable[[], bool], timeout: float = TIMEOUT_S) -> None:
        """Wait until ``cond()`` (checked whenever a line arrives, and every 0.2 s) or the process ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not cond():
                if self.popen.poll() is not None and not any(t.is_alive() for t in self._threads):
                    raise AssertionError(f"{self} ended before {what}:\n{self.text('err')[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"timed out waiting for {what} from {self}")
                self._cond.wait(0.2)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        return self.wait()

    def wait(self, timeout: float = TIMEOUT_S) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(30)
            raise AssertionError(f"{self} still running after {timeout:g} s") from None
        for t in self._threads:
            t.join(30)
        return code

    def text(self, which: str) -> str:
        return "".join(self.out if which == "out" else self.err)

    def __str__(self) -> str:
        return shlex.join(["hartool", *self.argv[3:]]) if self.argv[1:3] == ["-m", "hartool"] else shlex.join(
            self.argv)


def _proc_net_bound(port: int, kind: str) -> bool:
    """True when something listens on TCP ``port`` (LISTEN) or has UDP ``port`` bound (read from /proc)."""
    for table in (f"/proc/net/{kind}", f"/proc/net/{kind}6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if int(local.rsplit(":", 1)[1], 16) == port and (kind == "udp" or state == "0A"):
                return True
    return False


def wait_listening(url: str, proc: Proc) -> None:
    """Wait until the command listening at ``url`` has bound its port (MQTT subscribers: not observable)."""
    scheme = url.split("://", 1)[0]
    if scheme == "mqtt":
        return
    port = int(re.search(r":(\d+)", url.split("://", 1)[1]).group(1))  # type: ignore[union-attr]
    kind = "udp" if scheme == "udp" else "tcp"
    proc.wait_for(f"a listener on {url}", lambda: _proc_net_bound(port, kind))


def _subject9() -> Any:
    import numpy as np

    from hartool.data import load_dataset, recording_for_subject

    ds = load_dataset("hapt")
    return np.concatenate([r.values for r in recording_for_subject(ds, 9)]), ds.sample_rate_hz


def own_sender(kind: str, url: str) -> Any:
    """A sender of this file (started): ``mcu-deg`` over TCP or ``csv-udp`` datagrams, subject 9 at 10x."""
    import numpy as np

    from hartool.sim.apps import Packet, mcu_packets
    from hartool.sim.senders import SenderThread, send_tcp, send_udp

    values, rate = _subject9()
    deg = values.astype(np.float64).copy()
    deg[:, 3:] *= 180.0 / np.pi
    host, port = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)
    if kind == "mcu-deg":
        packets = mcu_packets(deg, rate, rate_hz=104.0)
        send = lambda stop: send_tcp(packets, host, int(port), speed=10, stop=stop, connect_timeout_s=60)  # noqa: E731
    elif kind == "csv-udp":
        deg[:, :3] *= 9.80665
        packets = [Packet(i / rate, (f"{i / rate:.3f},{i}," + ",".join(f"{v:.4f}" for v in row) + "\n").encode())
                   for i, row in enumerate(deg.tolist())]
        send = lambda stop: send_udp(packets, host, int(port), speed=10, stop=stop)  # noqa: E731
    else:
        raise ValueError(f"unknown own sender {kind!r}")
    thread = SenderThread(send, name=f"readme-{kind}")
    thread.start()
    return thread


class Workspace:
    """One directory and environment for the whole README; stand-ins started per block and per command."""

    def __init__(self, root: Path, request: pytest.FixtureRequest) -> None:
        self.root = root
        self.request = request
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.pty: str | None = None  # the last background `hartool simulate`'s pty, for /dev/pts/N

    def hartool(self, args: list[str], stdin: str | None = None) -> Proc:
        return Proc([sys.executable, "-m", "hartool", *args], self.root, self.env, stdin)

    def broker_addr(self) -> str:
        broker = self.request.getfixturevalue("mqtt_broker")
        return f"{broker.host}:{broker.port}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Workspace:
    # Ctrl-C is how this test ends records, boards and listeners (conftest makes sure children can get one).
    return Workspace(tmp_path_factory.mktemp("readme"), request)


@dataclass
class BlockRun:
    """One block's run: its directive, substitutions, and the background processes it started."""

    ws: Workspace
    block: Block
    ports: dict[str, str] = field(default_factory=dict)
    background: list[Proc] = field(default_factory=list)

    @property
    def d(self) -> dict[str, str]:
        assert self.block.directive is not None
        return self.block.directive

    def needs(self, what: str) -> bool:
        return what in self.d.get("needs", "").split(",")

    def substitute(self, text: str) -> str:
        from services import free_port

        text = LISTEN_ADDR.sub(lambda m: f"127.0.0.1:{self.ports.setdefault(m.group(1), str(free_port()))}"
                               if m.group(1) != "1883" else m.group(0), text)
        if self.needs("broker"):
            text = BROKER_ADDR.sub(self.ws.broker_addr(), text)
        if self.ws.pty:
            text = re.sub(r"/dev/pts/\d+", self.ws.pty, text)
        return text

    def args_for(self, index: int, cmd: Command) -> list[str]:
        argv = [self.substitute(w) for w in cmd.argv]
        assert argv[0] == "hartool", f"only hartool commands can run here: {shlex.join(cmd.argv)}"
        extra = " ".join(self.d.get(k, "") for k in ("tiny", f"tiny.{argv[1]}", f"tiny.{index}"))
        return argv[1:] + shlex.split(extra)


def _port_value(args: list[str]) -> str | None:
    return args[args.index("--port") + 1] if "--port" in args else None


def run_block(run: BlockRun) -> None:
    commands = block_commands(run.block)
    assert commands, f"README.md line {run.block.line}: a block without commands"
    try:
        for index, cmd in enumerate(commands, start=1):
            if cmd.argv[0] == "export":
                name, _, value = cmd.argv[1].partition("=")
                run.ws.env[name] = value
                continue
            args = run.args_for(index, cmd)
            if args[0] == "simulate":
                run_simulate(run, cmd, args)
            else:
                run_command(run, cmd, args)
    finally:  # stopped whatever happened; judged below only when the block got through
        codes = [(proc, proc.stop()) for proc in run.background]
        run.ws.pty = None
    for proc, code in codes:
        assert code == 0, f"{proc} exited {code} when stopped with Ctrl-C:\n{proc.text('err')[-2000:]}"


def check_output(run: BlockRun, cmd: Command, proc: Proc) -> None:
    expected = [run.substitute(ln) for ln in cmd.expected]
    missing = missing_lines(expected, proc.text("out"), proc.text("err"), exact="exact" in run.d)
    assert not missing, (f"{proc}: README shows lines the run did not print:\n" + "\n".join(missing)
                         + f"\n--- stdout ---\n{proc.text('out')[-3000:]}\n--- stderr ---\n{proc.text('err')[-3000:]}")


def run_simulate(run: BlockRun, cmd: Command, args: list[str]) -> None:
    """A README `hartool simulate`: in the background, or read by a stand-in `stream` (needs=listener)."""
    kind = args[args.index("--as") + 1] if "--as" in args else "serial"
    listener = None
    if run.needs("listener") and kind != "serial":
        to = args[args.index("--to") + 1]
        url = to if "://" in to else f"{SENDER_SCHEME[kind]}://{to}"
        listener = run.ws.hartool(["stream", "bundles/cnn", "--port", url, *LISTENER_UNITS.get(kind, [])])
        wait_listening(url, listener)
    sim = run.ws.hartool(args)
    if kind == "serial":
        sim.wait_for("its pty path", lambda: bool(sim.out))
        run.ws.pty = sim.out[0].strip()
        if run.needs("listener"):
            listener = run.ws.hartool(["stream", "bundles/cnn", "--port", run.ws.pty])
    if listener is None:
        assert cmd.background, f"{sim}: give needs=listener or run it in the background (&)"
        run.background.append(sim)
        check_output(run, cmd, sim)
        return
    # A board (pty) outlives its reader; a network sender stops before its listener (no broken pipe).
    order = (listener, sim) if kind == "serial" else (sim, listener)
    try:
        listener.wait_for("two windows", lambda: len(listener.out) >= 2)
    finally:
        codes = [(proc, proc.stop()) for proc in order]
    for proc, code in codes:
        assert code == 0, f"{proc} exited {code} when stopped with Ctrl-C:\n{proc.text('err')[-2000:]}"
    check_output(run, cmd, sim)


def start_standins(run: BlockRun, args: list[str]) -> tuple[list[str], Callable[[Proc], None], Callable[[], None]]:
    """Stand-ins for one command: (its args, what to start once it runs, how to stop them afterwards)."""
    stops: list[Callable[[], None]] = []
    if run.needs("pty") and "/dev/ttyACM0" in args:
        board = run.ws.hartool(["simulate", "--subject", "9", "--speed", "0"])
        board.wait_for("the stand-in board's pty", lambda: bool(board.out))
        args = [board.out[0].strip() if a == "/dev/ttyACM0" else a for a in args]
        stops.append(lambda: board.stop() and None)
    port = _port_value(args)
    scheme = port.split("://", 1)[0] if port and "://" in port else ""
    sender_box: list[Any] = []

    def after_start(proc: Proc) -> None:
        if not (run.needs("sender") and scheme in SCHEME_SENDER):
            return
        assert port is not None
        wait_listening(port, proc)
        kind, *extra = shlex.split(run.d.get("sender") or SCHEME_SENDER[scheme])
        if kind in ("mcu-deg", "csv-udp"):
            sender_box.append(own_sender(kind, port))
            return
        to = port if scheme in ("http", "mqtt") else port.split("://", 1)[1].split("/", 1)[0]
        sender_box.append(run.ws.hartool(["simulate", "--as", kind, "--to", to, "--speed", "10", *extra]))

    def stop_all() -> None:
        for s in sender_box:
            s.stop()  # a stand-in: how it ends (a broken pipe after its listener went) is not the README's
        for stop in stops:
            stop()

    return args, after_start, stop_all


def run_command(run: BlockRun, cmd: Command, args: list[str]) -> None:
    """One README command in the foreground (or background with &); exit 0; its shown output; its summary."""
    args, after_start, stop_standins = start_standins(run, args)
    summary = None
    if args[0] == "stream":
        summary = run.ws.root / f".readme-summary-{len(list(run.ws.root.glob('.readme-summary-*')))}.json"
        args = [*args, "--summary-json", str(summary)]
    proc = run.ws.hartool(args, stdin=run.d.get("stdin"))
    try:
        after_start(proc)
        if cmd.background:
            run.background.append(proc)
            return
        if args[0] == "record":
            end_record(run, proc, args)
        code = proc.wait()
    finally:
        stop_standins()
    assert code == 0, f"{proc} exited {code}:\n{proc.text('err')[-3000:]}"
    check_output(run, cmd, proc)
    if summary is not None:
        got = json.loads(summary.read_text())
        assert got["windows"] >= 1, f"{proc}: no window classified ({got['end_reason']})"
        if "--max-windows" in args:
            limit = int(args[len(args) - 1 - args[::-1].index("--max-windows") + 1])
            assert (got["windows"], got["end_reason"]) == (limit, "max_windows"), got


def end_record(run: BlockRun, proc: Proc, args: list[str]) -> None:
    """Ctrl-C a `record` once ``rows`` rows are on disk (its part file is flushed about once a second)."""
    out = run.ws.root / args[args.index("--out") + 1]
    part = out.with_name(f".{out.name}.part")
    rows = int(run.d.get("rows") or 1000)

    def enough() -> bool:
        try:
            text = part.read_text()
        except OSError:
            return False
        return sum(1 for ln in text.splitlines() if ln[:1].isdigit()) >= rows

    proc.wait_for(f"{rows} recorded rows", lambda: proc.popen.poll() is not None or enough())
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGINT)


def seed_more_data(root: Path) -> None:
    """Two other wearers' recordings, so training on my-data has every class from more than one person."""
    from owndata_testing import basic_subjects, write_csv_dir

    write_csv_dir(root / "my-data", basic_subjects(["carol", "dave"], 30.0, ("WALKING", "SITTING", "STANDING")))


@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_readme_block(block: Block, workspace: Workspace) -> None:
    assert block.directive is not None, f"README.md line {block.line}: add a <!-- readme-test: ... --> line"
    if "skip" in block.directive:
        pytest.skip(block.directive["skip"])
    run = BlockRun(workspace, block)
    if run.needs("more-data"):
        seed_more_data(workspace.root)
    run_block(run)
