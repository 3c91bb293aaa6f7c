"""Session fixtures shared across rooms: a tiny trained bundle and its quantized artifacts, built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hartool_testing import TINY_TRAIN, hartool


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNN bundle trained for one epoch on 600 windows (model.keras + manifest, no artifacts)."""
    out = tmp_path_factory.mktemp("bundles") / "cnn"
    hartool("train", "--arch", "cnn", "--out", str(out), *TINY_TRAIN)
    return out


@pytest.fixture(scope="session")
def quantized_bundle(trained_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CNN bundle quantized to every mode: tflite fp32/fp16/dynamic/int8/int16x8, onnx fp32/dynamic/int8."""
    out = tmp_path_factory.mktemp("quantized") / "cnn"
    shutil.copytree(trained_bundle, out)
    hartool("quantize", str(out), "--calibration-windows", "64")
    return out


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
