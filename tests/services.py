"""Real services the tests talk to: an MQTT broker on a free localhost port.

:class:`MqttBroker` runs mosquitto when it is installed (Debian ``mosquitto``), else the pure-Python
``amqtt`` broker from PyPI (the ``dev`` extra), each as a child process, so the MQTT tests run on a fresh
clone instead of skipping. ``restart()`` kills the broker and starts it again on the same port (the
"broker restart mid-run" of issue 12). Readiness is an MQTT CONNECT answered by a CONNACK, not a sleep.

Used through the fixtures in ``tests/conftest.py`` (``mqtt_broker``, session-wide; ``fresh_mqtt_broker``,
one per test for tests that kill it). ``HARTOOL_TEST_BROKER=amqtt`` forces amqtt where mosquitto is installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["MqttBroker", "free_port", "mqtt_handshake"]

READY_TIMEOUT_S = 20.0

# The amqtt broker in a child process: the same kill/restart semantics as mosquitto.
_AMQTT_SCRIPT = """
import asyncio, logging, sys
from amqtt.broker import Broker
logging.basicConfig(level=logging.WARNING)
port = int(sys.argv[1])
config = {
    "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
    "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
}
async def main():
    broker = Broker(config)
    await broker.start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mqtt_handshake(host: str, port: int, timeout: float = 1.0) -> bool:
    """True if an MQTT 3.1.1 broker at host:port answers a CONNECT with an accepting CONNACK."""
    client_id = b"hartool-probe"
    var_header = b"\x00\x04MQTT\x04\x02\x00\x0a"  # protocol name, level 4, clean session, keepalive 10 s
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = var_header + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(packet)
            answer = s.recv(4)
            s.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return answer == b"\x20\x02\x00\x00"


class MqttBroker:
    """A broker child process on ``127.0.0.1:port``: ``start()``, ``stop()``, ``kill()``, ``restart()``."""

    def __init__(self, port: int | None = None, kind: str = "auto") -> None:
        if kind == "auto":  # HARTOOL_TEST_BROKER=amqtt tries the fresh-clone path on a machine with mosquitto
            kind = os.environ.get("HARTOOL_TEST_BROKER") or ("mosquitto" if shutil.which("mosquitto") else "amqtt")
        if kind not in ("mosquitto", "amqtt"):
            raise ValueError(f"kind must be auto, mosquitto or amqtt, got {kind!r}")
        self.kind = kind
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="hartool-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self._dir / "broker.log"

    def url(self, topic: str = "hartool") -> str:
        return f"mqtt://{self.host}:{self.port}/{topic}"

    def _command(self) -> list[str]:
        if self.kind == "mosquitto":
            conf = self._dir / "mosquitto.conf"
            conf.write_text(f"listener {self.port} {self.host}\nallow_anonymous true\npersistence false\n")
            return [shutil.which("mosquitto") or "mosquitto", "-c", str(conf)]
        return [sys.executable, "-c", _AMQTT_SCRIPT, str(self.port)]

    def start(self, timeout: float = READY_TIMEOUT_S) -> MqttBroker:
        """Start the broker and wait (at most ``timeout`` s) until it answers MQTT."""
        if self.running:
            return self
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited at start:\n{self.log_text()}")
            if mqtt_handshake(self.host, self.port):
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.kind} did not answer on port {self.port} within {timeout:g} s:\n{self.log_text()}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash: clients see their connection drop without a goodbye."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait(10)
            self._proc = None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM, then SIGKILL after 5 s)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(5)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(10)
            self._proc = None

    def restart(self, down_s: float = 0.0, timeout: float = READY_TIMEOUT_S) -> MqttBroker:
        """Kill the broker, stay down ``down_s`` seconds, start it again on the same port."""
        self.kill()
        if down_s > 0:
            time.sleep(down_s)
        return self.start(timeout)

    def log_text(self) -> str:
        try:
            return self._log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MqttBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MqttBroker({self.kind}, {self.host}:{self.port})"
