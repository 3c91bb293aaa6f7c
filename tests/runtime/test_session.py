"""The Python API: open_session / Session (iteration, summary, sinks, close), Classifier, the README example."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import hartool
from hartool.core.bundle import Bundle
from hartool.core.errors import DataError, HartoolError
from hartool.core.preprocess import preprocess
from hartool.data import load_dataset, recording_for_subject
from hartool.runtime.artifacts import load_bundle_predictor
from hartool.runtime.session import run_stream
from hartool.runtime.stream import StreamOptions
from hartool.wire.spec import SourceSpec

REPO = Path(__file__).resolve().parents[2]
N = 128 + 9 * 64  # ten windows


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """N samples of test subject 9 as a plain CSV file (acc in g, gyro in rad/s, no timestamps)."""
    values = np.concatenate([r.values for r in recording_for_subject(load_dataset("hapt"), 9)])[:N]
    path = tmp_path_factory.mktemp("session") / "walk.csv"
    np.savetxt(path, values, fmt="%.6f", delimiter=",")
    return path, np.loadtxt(path, delimiter=",", dtype=np.float32)


class ListSink:
    """A sink that keeps what it was given (the Sink protocol: on_window, counters, close)."""

    def __init__(self) -> None:
        self.windows: list[int] = []
        self.closed_with: Any = "open"

    def on_window(self, prediction: Any) -> None:
        self.windows.append(prediction.window)

    def counters(self) -> dict[str, Any]:
        return {"list_windows": len(self.windows)}

    def close(self, summary: Any = None) -> dict[str, Any]:
        self.closed_with = summary
        return self.counters()


def test_session_iterates_every_window_and_drives_its_sinks(quantized_bundle: Path, recording: tuple) -> None:
    path, values = recording
    sink = ListSink()
    with hartool.open_session(quantized_bundle, source=str(path), smooth="none", artifact="tflite-int8",
                              sinks=[sink]) as session:
        preds = list(session)
    assert [p.window for p in preds] == list(range(10)) and sink.windows == list(range(10))
    s = session.summary
    assert s.end_reason == "eof" and s.windows == 10 and s.samples == N and s.dropped == 0
    assert sink.closed_with is s and session.sink_counters == {"list_windows": 10}
    # Unsmoothed, the session's probabilities are the interpreter's on the same windows.
    b = Bundle.load(quantized_bundle)
    _, pred = load_bundle_predictor(b, "tflite-int8")
    x = np.stack([preprocess(values[p.end_sample - b.window:p.end_sample], b.preprocessing) for p in preds])
    np.testing.assert_allclose([p.probs for p in preds], pred.predict(x), atol=1e-5)


def test_max_windows_ends_the_session_and_break_closes_it(quantized_bundle: Path, recording: tuple) -> None:
    path, _ = recording
    session = hartool.open_session(quantized_bundle, source=SourceSpec(str(path)), max_windows=4)
    assert [p.window for p in session] == [0, 1, 2, 3]
    assert session.summary.end_reason == "max_windows" and session.summary.windows == 4
    with hartool.open_session(quantized_bundle, source=str(path), smooth="none") as early:
        for p in early:
            if p.window == 2:
                break
    assert early.summary.windows == 3 and early.summary.end_reason == "stopped"


def test_open_session_refuses_unknown_options_and_bad_sources(quantized_bundle: Path, recording: tuple) -> None:
    path, _ = recording
    with pytest.raises(TypeError, match="unknown options: smoothing"):
        hartool.open_session(quantized_bundle, source=str(path), smoothing="none")
    sink = ListSink()
    with pytest.raises(HartoolError, match="--columns names unknown channel 'gyro_w'"):
        hartool.open_session(quantized_bundle, source=SourceSpec(str(path), columns="acc_x,gyro_w"), sinks=[sink])
    assert sink.closed_with is None  # a session that cannot start still closes the sinks it was given


def test_run_stream_is_the_callback_form(quantized_bundle: Path, recording: tuple) -> None:
    path, _ = recording
    rows: list[Any] = []
    summary = run_stream(quantized_bundle, StreamOptions(SourceSpec(str(path)), smooth="none"), rows.append)
    assert summary.windows == len(rows) == 10 and summary.end_reason == "eof"


def test_classifier_classifies_one_window_as_the_stream_does(quantized_bundle: Path, recording: tuple) -> None:
    path, values = recording
    clf = hartool.Classifier(quantized_bundle, artifact="tflite-int8")
    streamed = list(hartool.open_session(quantized_bundle, source=str(path), smooth="none", artifact="tflite-int8"))
    for p in streamed[:3]:
        one = clf.classify(values[p.end_sample - clf.bundle.window:p.end_sample])
        assert one.label == p.label and one.dropped == 0
        np.testing.assert_allclose(one.probs, p.probs, atol=1e-6)
    assert hartool.classify(clf, values[:clf.bundle.window]).label in clf.labels
    with pytest.raises(DataError, match=r"a window is 128 samples x 6 channels, got shape \(100, 6\)"):
        clf.classify(values[:100])


def test_import_hartool_is_light() -> None:
    code = ("import sys, hartool\n"
            "heavy = [m for m in ('numpy', 'tensorflow', 'hartool.runtime', 'hartool.wire') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(hartool.open_session) and 'numpy' in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_readme_python_example_runs(quantized_bundle: Path, recording: tuple, tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Use hartool from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    (tmp_path / "bundles").mkdir()
    (tmp_path / "bundles" / "cnn").symlink_to(quantized_bundle)
    (tmp_path / "walk.csv").write_bytes(recording[0].read_bytes())
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    out = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, check=True).stdout.splitlines()
    labels = Bundle.load(quantized_bundle).labels
    assert len(out) == 12 and out[10] == "10 windows, 0 samples dropped"
    assert all(line.split()[2] in labels for line in out[:10])
    assert out[11].split(": ")[1] in labels
