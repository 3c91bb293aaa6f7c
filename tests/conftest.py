"""Session fixtures shared across rooms: a tiny trained bundle and its quantized artifacts, built once per run
(once for all pytest-xdist workers too); Ctrl-C for the tests' children; the longest files collected first."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hartool_testing import TINY_TRAIN, hartool, wait_until

_BUILD_S = 1800.0  # the other worker's build of a shared fixture ends by then (a hang guard, not a speed limit)
# The longest files (about 4, 2, 1.5 and 1.5 minutes on 2 cores), collected first. Under ``--dist loadfile`` a file is
# one unit of work handed out in collection order, so a long file collected last runs alone while the other
# worker idles; started first, the short files fill in around them.
_LONGEST_FIRST = ("tests/test_readme.py", "tests/test_demo.py", "tests/train/test_rates.py",
                  "tests/export/test_quantize.py")


@pytest.fixture(scope="session", autouse=True)
def _children_take_ctrl_c() -> Iterator[None]:
    """Children started by the tests get the default SIGINT, even when pytest itself was started with `&` from
    a script (which makes SIGINT ignored, and an exec keeps an ignored signal ignored). Ctrl-C is how tests end
    `stream`, `record`, `monitor`, boards and listeners, and what the signal tests check."""
    previous = signal.getsignal(signal.SIGINT)
    if previous == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if previous == signal.SIG_IGN:
            signal.signal(signal.SIGINT, previous)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Move the longest files' tests to the front, each file's own order kept (a stable sort)."""
    root = config.rootpath

    def rank(item: pytest.Item) -> int:
        name = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else ""
        return _LONGEST_FIRST.index(name) if name in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` across processes (polled, so the wait ends: ``_BUILD_S``)."""
    with open(path, "w") as fh:
        def take() -> bool:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        wait_until(take, f"the lock {path.name} (another worker builds it)", timeout=_BUILD_S, interval=0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """``build(dir)`` once per test run: under pytest-xdist the first worker builds it into the run's common
    temp directory and the others wait for it and read the same files (the fixtures are read-only: a test
    that changes a bundle takes ``bundle_copy``)."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # pytest-of-USER/pytest-N: the base of every worker's own temp directory
    out, done = root / f"shared-{name}", root / f"shared-{name}.done"
    with _locked(root / f"shared-{name}.lock"):
        if not done.exists():
            shutil.rmtree(out, ignore_errors=True)  # a build that failed half-way
            build(out)
            done.touch()
    return out


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN bundle trained for two epochs on 600 windows (model.keras + manifest, no artifacts).

    ``--orientation fixed``: the transports, sinks and the C export are tested on labels that do not depend on
    where a stream starts (a calibrated bundle's do, until it locks); the default (free) has its own tests."""
    return _built_once(tmp_path_factory, "trained", lambda d: hartool(
        "train", "--arch", "cnn", "--orientation", "fixed", "--out", str(d / "cnn"), *TINY_TRAIN)) / "cnn"


@pytest.fixture(scope="session")
def quantized_bundle(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN bundle quantized to every mode: tflite fp32/fp16/dynamic/int8/int16x8, onnx fp32/dynamic/int8."""
    def build(d: Path) -> None:
        shutil.copytree(trained_bundle, d / "cnn")
        hartool("quantize", str(d / "cnn"), "--calibration-windows", "64")

    return _built_once(tmp_path_factory, "quantized", build) / "cnn"


@pytest.fixture()
def bundle_copy(quantized_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the quantized bundle that a test may modify or corrupt."""
    dst = tmp_path / "bundle"
    shutil.copytree(quantized_bundle, dst)
    return dst


# ---------------------------------------------------------------------------------------------------------
# Real services (tests/services.py): an MQTT broker on a free localhost port, mosquitto or amqtt.


@pytest.fixture(scope="session")
def mqtt_broker():
    """A broker shared by the session (do not kill it: use ``fresh_mqtt_broker`` for that)."""
    from services import MqttBroker

    broker = MqttBroker().start()
    yield broker
    broker.close()


@pytest.fixture()
def fresh_mqtt_broker():
    """A broker of the test's own, which the test may ``kill()`` / ``restart()`` (same port)."""
    from services import MqttBroker

    broker = MqttBroker().start()
    yield broker
    broker.close()
