"""The MicroPython side (hartool_wire.py, imu.py, main.py) under CPython: vector bytes, streamer, drivers."""

from __future__ import annotations

import ast
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
from hartool_fw_support import MICROPYTHON, MICROPYTHON_MJS, SETUP_HINT, load_vectors, micropython_modules

from hartool.wire.binary import BinaryDecoder
from hartool.wire.text import TextDecoder

PRIMITIVES = load_vectors("primitives.json")
TEXT_LINES = load_vectors("text_lines.json")["cases"]
FRAMES = load_vectors("binary_frames.json")["cases"]
PREDICTIONS = load_vectors("predictions.json")["cases"]
hwire, fw_main, fw_imu = micropython_modules()
REST = (0.0123, -0.9871, 0.1042, 0.0021, -0.0143, 0.0007)


# ---------------------------------------------------------------------------------------------------------
# hartool_wire.py reproduces every vector


def test_crc_vectors():
    for case in PRIMITIVES["crc16"]:
        assert hwire.crc16(bytes.fromhex(case["data_hex"])) == case["crc"]


def test_cobs_vectors():
    for case in PRIMITIVES["cobs"]:
        assert hwire.cobs_encode(bytes.fromhex(case["data_hex"])).hex() == case["encoded_hex"]


@pytest.mark.parametrize("case", TEXT_LINES, ids=[c["name"] for c in TEXT_LINES])
def test_text_vectors(case):
    assert hwire.format_text_line(case["values"], case["t_ms"], case["decimals"]).hex() == case["line_hex"]


@pytest.mark.parametrize("case", FRAMES, ids=[c["name"] for c in FRAMES])
def test_frame_vectors(case):
    wire = hwire.encode_frame(
        case["seq"], case["t_ms"], case["scales"], case["values"], case["has_timestamp"]
    )
    assert wire.hex() == case["frame_hex"]
    assert (
        bytes(
            hwire.pack_payload(
                case["seq"], case["t_ms"], case["scales"], case["values"], case["has_timestamp"]
            )
        ).hex()
        == case["payload_hex"]
    )


@pytest.mark.parametrize("case", FRAMES, ids=[c["name"] for c in FRAMES])
def test_framer_builds_the_same_frames(case):
    framer = hwire.Framer(case["scales"], len(case["values"]), case["has_timestamp"], case["seq"])
    outputs = [framer.add(row, case["t_ms"] + 1000 * i) for i, row in enumerate(case["values"])]
    assert outputs[:-1] == [None] * (len(outputs) - 1)
    assert outputs[-1].hex() == case["frame_hex"]  # only the first sample's time is sent


@pytest.mark.parametrize("case", PREDICTIONS, ids=[c["name"] for c in PREDICTIONS])
def test_prediction_vectors(case):
    assert [hwire.prob_count(p) for p in case["probs"]] == case["counts"]
    assert hwire.encode_prediction(case["window"], case["label"], case["probs"], case["t_ms"]).hex() == case["frame_hex"]
    assert hwire.format_prediction_line(case["window"], case["label"], case["probs"], case["t_ms"]).hex() == case["line_hex"]


def test_default_scales_are_the_float32_constants():
    assert struct.pack("<f", hwire.ACC_SCALE_G) == struct.pack("<f", 1 / 2048)
    assert struct.pack("<f", hwire.GYRO_SCALE_RAD_S) == struct.pack("<f", (2000 / 32768) * np.pi / 180)


def test_quantize_edge_cases():
    assert [hwire.quantize(v, 1.0) for v in (0.5, -0.5, 1.49, -1.51, 1e9, -1e9, float("nan"))] == [
        1,
        -1,
        1,
        -2,
        32767,
        -32768,
        0,
    ]
    assert hwire.quantize(float("inf"), 1.0) == 32767 and hwire.quantize(float("-inf"), 1.0) == -32768


def test_framer_skip_flushes_partial_frame_and_makes_a_gap():
    framer = hwire.Framer(per_frame=3)
    assert framer.add(REST, 0) is None
    partial = framer.skip(4)
    stream = partial + b"".join(f for f in (framer.add(REST, 100 + i) for i in range(3)) if f)
    dec = BinaryDecoder()
    batch = dec.feed(stream)
    assert batch is not None and len(batch.values) == 4
    assert (dec.frames, dec.dropped, dec.seq_gaps) == (2, 4, 1)


# ---------------------------------------------------------------------------------------------------------
# main.Streamer: the hardware-free core of the board program


def test_streamer_text_mode_matches_host_encoder():
    streamer = fw_main.Streamer(fw_imu.FakeIMU([REST]), mode="text", text_timestamp=True)
    assert streamer.sample(1234) == b"1234,0.0123,-0.9871,0.1042,0.0021,-0.0143,0.0007\r\n"
    plain = fw_main.Streamer(fw_imu.FakeIMU([REST]), mode="text", text_timestamp=False)
    assert plain.sample(0) == b"0.0123,-0.9871,0.1042,0.0021,-0.0143,0.0007\r\n"


def test_streamer_commands_and_host_decoding():
    rows = [tuple(round(0.01 * i + k * 0.1, 4) for k in range(6)) for i in range(12)]
    streamer = fw_main.Streamer(fw_imu.FakeIMU(rows), mode="text", samples_per_frame=2)
    out = bytearray()
    out += streamer.sample(0)  # text line
    out += streamer.command(ord("b"))  # -> delimiter
    for t in range(1, 6):
        out += streamer.sample(20 * t)  # 5 samples: 2 full frames + 1 pending
    out += streamer.command(ord("p"))  # pause flushes the pending sample as a 1-sample frame
    assert streamer.sample(999) == b""  # paused: nothing sampled
    out += streamer.command(ord("s"))
    out += streamer.missed(2)  # two ticks lost: a sequence gap of 2
    out += streamer.sample(200)
    out += streamer.command(ord("t"))  # flushes the pending binary sample, back to text
    out += streamer.sample(220)
    assert streamer.command(ord("?")) == b""  # unknown bytes are ignored

    first_line_end = out.index(b"\r\n") + 2
    assert bytes(out[:first_line_end]) == b"0.0000,0.1000,0.2000,0.3000,0.4000,0.5000\r\n"
    binary_part = bytes(out[first_line_end : out.rindex(b"\x00") + 1])
    dec = BinaryDecoder(expected_channels=6)
    batch = dec.feed(binary_part)
    assert batch is not None
    assert (dec.frames, dec.samples, dec.bad_frames, dec.dropped, dec.seq_gaps) == (4, 6, 0, 2, 1)
    assert np.allclose(batch.values, np.asarray(rows[1:7], np.float32), atol=1e-3)
    text_tail = bytes(out[out.rindex(b"\x00") + 1 :])
    tdec = TextDecoder(6, detect_lines=1, skip_first_line=False)
    assert tdec.feed(text_tail).values.shape == (1, 6)


# ---------------------------------------------------------------------------------------------------------
# imu.py drivers against a register-level fake I2C bus


class FakeI2C:
    def __init__(self, regs: dict, present: list):
        self.regs = regs
        self.present = present
        self.writes: list = []

    def scan(self):
        return list(self.present)

    def readfrom_mem(self, addr, reg, n):
        return bytes(self.regs.get(reg, b"\x00" * n)[:n])

    def readfrom_mem_into(self, addr, reg, buf):
        buf[:] = self.regs[reg][: len(buf)]

    def writeto_mem(self, addr, reg, data):
        self.writes.append((addr, reg, bytes(data)))


def test_mpu6050_configuration_and_units():
    raw = struct.pack(">7h", 2048, -1024, 32767, 1234, 164, -1640, 0)
    bus = FakeI2C({0x75: b"\x68", 0x3B: raw}, [0x68])
    dev = fw_imu.detect(bus)
    assert isinstance(dev, fw_imu.MPU6050)
    assert bus.writes == [
        (0x68, 0x6B, b"\x01"),
        (0x68, 0x1A, b"\x03"),
        (0x68, 0x19, b"\x00"),
        (0x68, 0x1B, b"\x18"),
        (0x68, 0x1C, b"\x18"),
    ]
    ax, ay, az, gx, gy, gz = dev.read()
    assert (ax, ay) == (1.0, -0.5) and az == pytest.approx(32767 / 2048)
    assert gx == pytest.approx(np.deg2rad(10.0)) and gy == pytest.approx(np.deg2rad(-100.0)) and gz == 0.0


def test_lsm6ds3_configuration_and_units():
    raw = struct.pack("<6h", 1000, -2000, 0, 2049, 0, -2049)  # gyro x,y,z then accel x,y,z
    bus = FakeI2C({0x0F: b"\x69", 0x22: raw}, [0x6A])
    dev = fw_imu.detect(bus)
    assert isinstance(dev, fw_imu.LSM6DS3)
    assert bus.writes == [(0x6A, 0x12, b"\x44"), (0x6A, 0x10, b"\x44"), (0x6A, 0x11, b"\x4c")]
    ax, ay, az, gx, gy, gz = dev.read()
    assert ax == pytest.approx(2049 * 0.000488) and ay == 0.0 and az == pytest.approx(-2049 * 0.000488)
    assert gx == pytest.approx(np.deg2rad(70.0)) and gy == pytest.approx(np.deg2rad(-140.0))


def test_detect_skips_wrong_chip_and_reports_none():
    with pytest.raises(OSError, match="no supported IMU"):
        fw_imu.detect(FakeI2C({0x75: b"\x00"}, [0x68, 0x3C]))


def test_fake_imu_loops_or_ends():
    fake = fw_imu.FakeIMU([(1,) * 6, (2,) * 6], loop=False)
    assert [fake.read()[0], fake.read()[0]] == [1, 2]
    with pytest.raises(IndexError):
        fake.read()
    assert fw_imu.FakeIMU([(3,) * 6]).read() == (3,) * 6


# ---------------------------------------------------------------------------------------------------------
# MicroPython compatibility


ALLOWED_IMPORTS = {"struct", "math", "machine", "select", "sys", "time", "imu", "hartool_wire", "micropython"}


@pytest.mark.parametrize("name", ["hartool_wire.py", "imu.py", "main.py"])
def test_sources_use_only_what_micropython_has(name):
    tree = ast.parse((MICROPYTHON / name).read_text())
    assert ast.get_docstring(tree)
    for node in ast.walk(tree):
        assert not isinstance(node, ast.JoinedStr), f"{name}:{node.lineno}: f-string"
        assert not isinstance(node, (ast.Match, ast.NamedExpr, ast.AnnAssign)), f"{name}:{node.lineno}"
        if isinstance(node, ast.Import):
            assert {a.name for a in node.names} <= ALLOWED_IMPORTS
        if isinstance(node, ast.ImportFrom):
            pytest.fail(f"{name}:{node.lineno}: 'from' import")
        if isinstance(node, ast.FunctionDef):
            assert node.returns is None and all(a.annotation is None for a in node.args.args)


def test_under_real_micropython_when_available(tmp_path):
    """Runs the vectors in MicroPython itself (the WebAssembly port under node).

    tests/setup_services.sh installs it into .cache/npm, where it is found by default;
    HARTOOL_MICROPYTHON_MJS=PATH/micropython.mjs points at another copy.
    """
    mjs = os.environ.get("HARTOOL_MICROPYTHON_MJS") or str(MICROPYTHON_MJS)
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node not installed ({SETUP_HINT}: apt-get install nodejs)")
    if not os.path.exists(mjs):
        pytest.skip(f"MicroPython (WebAssembly port) not installed at {mjs} ({SETUP_HINT})")
    vectors = {"crc": PRIMITIVES["crc16"], "cobs": PRIMITIVES["cobs"], "text": TEXT_LINES, "frames": FRAMES,
               "preds": PREDICTIONS}
    script = (
        (MICROPYTHON / "hartool_wire.py").read_text()
        + "\nV = "
        + repr(json.dumps(vectors))
        + "\n"
        + """
import json
V = json.loads(V)
bad = [c["data_hex"] for c in V["crc"] if crc16(bytes.fromhex(c["data_hex"])) != c["crc"]]
bad += [c["data_hex"] for c in V["cobs"]
        if cobs_encode(bytes.fromhex(c["data_hex"])).hex() != c["encoded_hex"]]
bad += [c["name"] for c in V["text"]
        if format_text_line(c["values"], c["t_ms"], c["decimals"]).hex() != c["line_hex"]]
bad += [c["name"] for c in V["frames"]
        if encode_frame(c["seq"], c["t_ms"], c["scales"], c["values"], c["has_timestamp"]).hex()
        != c["frame_hex"]]
bad += [c["name"] for c in V["preds"]
        if encode_prediction(c["window"], c["label"], c["probs"], c["t_ms"]).hex() != c["frame_hex"]
        or format_prediction_line(c["window"], c["label"], c["probs"], c["t_ms"]).hex() != c["line_hex"]]
print("MPY-RESULT", len(bad), bad)
"""
    )
    path = tmp_path / "vectors_mpy.py"
    path.write_text(script)
    result = subprocess.run(
        [node, mjs, "-X", "heapsize=16m", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert "MPY-RESULT 0 []" in result.stdout, result.stdout + result.stderr
