"""`hartool export c` end to end on the tiny trained bundle: the host gcc build of the exported library against
the TFLite Micro interpreter on real test windows, streaming against one-shot classification, and the refusals."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from c_testing import CFLAGS, need_gcc, tflm

from hartool.bench.mcu import run_host
from hartool.core.bundle import Bundle
from hartool.core.errors import ExportError
from hartool.core.preprocess import preprocess
from hartool.export.c.library import export_c
from hartool_testing import hartool

N_WINDOWS = 96


@pytest.fixture(scope="module")
def library(quantized_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clib") / "hartool_model"
    res = hartool("export", "c", str(quantized_bundle), "--out", str(out), "--json")
    info = json.loads(res.stdout)
    assert info["ops"].count("CONV_2D") == 4 and info["arena_bytes"] < 16_000
    return out


@pytest.fixture(scope="module")
def test_windows(quantized_bundle: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw float32 windows (manifest units) of the bundle's test subjects, evenly spread, and their labels."""
    from hartool.data import load_dataset, make_windows

    m = Bundle.load(quantized_bundle).manifest
    w = make_windows(load_dataset("hapt"), m["window"], m["stride"], labels=m["labels"])
    test = w.subset(np.isin(w.subject, m["dataset"]["test_subjects"]))
    pick = np.linspace(0, len(test.y) - 1, N_WINDOWS).astype(int)
    return np.asarray(test.x[pick], dtype=np.float32), test.y[pick]


def test_arduino_layout_and_api(library: Path) -> None:
    props = (library / "library.properties").read_text()
    assert "name=hartool_model" in props and "includes=hartool_model.h" in props
    assert (library / "examples" / "hartool_classify" / "hartool_classify.ino").is_file()
    header = (library / "src" / "hartool_model.h").read_text()
    for line in ("#define HARTOOL_WINDOW 128", "#define HARTOOL_STRIDE 64", "#define HARTOOL_CHANNELS 6",
                 "#define HARTOOL_CLASSES 6", "#define HARTOOL_SAMPLE_RATE_HZ 50",
                 "extern const char *const hartool_labels[HARTOOL_CLASSES];",
                 "int hartool_classify(const float *window, float *probs);",
                 "void hartool_stream_init(hartool_stream *s);",
                 "int hartool_stream_push(hartool_stream *s, const float *sample, hartool_result *out);"):
        assert line in header
    src = "\n".join(p.read_text() for p in (library / "src").glob("*.c"))
    assert not re.search(r"\b(malloc|calloc|realloc)\s*\(", src)


def test_host_build_equals_tflite_micro(library: Path, quantized_bundle: Path, test_windows, tmp_path: Path) -> None:
    need_gcc()
    bundle = Bundle.load(quantized_bundle)
    raw, y = test_windows
    got = run_host(library / "src", raw, tmp_path)
    it = tflm().Interpreter.from_file(str(bundle.artifact_path(bundle.artifact("tflite-int8"))))
    x = preprocess(raw, bundle.preprocessing)
    for i in range(len(raw)):
        it.set_input(x[i:i + 1], 0)
        it.invoke()
        want = np.concatenate([np.asarray(it.get_output(k), np.float32).ravel() for k in range(2)]).tobytes()
        assert got["outputs"][i] == want, f"window {i}: C outputs differ from tflite-micro"
        assert got["labels"][i] == int(np.argmax(it.get_output(1)))
    # the tiny model is weak, but it has learned something: well above chance on real windows
    assert np.mean(got["labels"] == y) > 0.3


STREAM_MAIN = r"""
#include <stdio.h>
#include "hartool_model.h"
int main(void) {
  static hartool_stream s;
  static float window[HARTOOL_WINDOW * HARTOOL_CHANNELS];
  float sample[HARTOOL_CHANNELS], probs[HARTOOL_CLASSES];
  hartool_result r;
  int k;
  hartool_stream_init(&s);
  while (fread(sample, sizeof(float), HARTOOL_CHANNELS, stdin) == HARTOOL_CHANNELS)
    if (hartool_stream_push(&s, sample, &r)) {
      printf("%lu %d", r.window, r.label);
      for (k = 0; k < HARTOOL_CLASSES; ++k) printf(" %a", r.probs[k]);
      printf("\n");
    }
  /* the last window again through hartool_classify: same label and probabilities */
  fseek(stdin, -(long)sizeof(window), SEEK_END);
  if (fread(window, sizeof(float), HARTOOL_WINDOW * HARTOOL_CHANNELS, stdin) != HARTOOL_WINDOW * HARTOOL_CHANNELS) return 1;
  printf("classify %d", hartool_classify(window, probs));
  for (k = 0; k < HARTOOL_CLASSES; ++k) printf(" %a", probs[k]);
  printf("\n");
  return 0;
}
"""


def test_stream_push_windows_like_classify(library: Path, test_windows, tmp_path: Path) -> None:
    """A recording of 4*128 samples gives 7 windows, every 64 samples; the last equals hartool_classify's."""
    raw, _ = test_windows
    samples = np.concatenate(raw[:4]).astype(np.float32)
    (tmp_path / "main.c").write_text(STREAM_MAIN)
    exe = tmp_path / "stream"
    subprocess.run([need_gcc(), *CFLAGS, f"-I{library / 'src'}", "-o", str(exe), str(tmp_path / "main.c"),
                    *sorted(str(p) for p in (library / "src").glob("*.c")), "-lm"], check=True, timeout=120)
    (tmp_path / "rec.bin").write_bytes(samples.tobytes())
    with open(tmp_path / "rec.bin", "rb") as fh:
        lines = subprocess.run([str(exe)], stdin=fh, capture_output=True, text=True, check=True).stdout.splitlines()
    windows = [ln.split() for ln in lines[:-1]]
    assert [int(w[0]) for w in windows] == list(range(7))
    assert windows[-1][1:] == lines[-1].split()[1:]


def _edit(bundle: Path, **changes) -> Path:
    m = json.loads((bundle / "manifest.json").read_text())
    for key, value in changes.items():
        m[key] = value if not callable(value) else value(m[key])
    (bundle / "manifest.json").write_text(json.dumps(m))
    return bundle


@pytest.mark.parametrize("changes, message", [
    ({"orientation": {"mode": "free"}}, "--orientation free"),
    ({"preprocessing": lambda p: {**p, "type": "features"}}, "preprocessing 'features' has no C implementation"),
    ({"arch": "lstm"}, "--arch lstm bundles are not supported"),
    ({"artifacts": []}, "no tflite-int8 artifact; run 'hartool quantize"),
])
def test_refusals_say_what_is_missing(bundle_copy: Path, tmp_path: Path, changes, message) -> None:
    with pytest.raises(ExportError, match=message.replace("(", r"\(")):
        export_c(_edit(bundle_copy, **changes), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_refusal_is_one_line(bundle_copy: Path, tmp_path: Path) -> None:
    res = hartool("export", "c", str(_edit(bundle_copy, orientation={"mode": "free"})), "--out",
                  str(tmp_path / "o"), check=False)
    assert res.returncode != 0
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("Error:")] == [
        "Error: bundle was trained with --orientation free: the C library has no on-device orientation "
        "calibration yet; train one with --orientation fixed"]


def test_hostile_label_text_becomes_an_inert_c_string(tmp_path: Path) -> None:
    """Labels come from the manifest: quotes, backslashes, trigraphs, newlines and UTF-8 survive as data."""
    from hartool.export.c.library import _c_string

    label = 'WALK"ING??/\\ */ é\n#include <x>'
    (tmp_path / "s.c").write_text('#include <stdio.h>\nint main(void) { fputs(' + _c_string(label) + ', stdout); return 0; }\n')
    subprocess.run([need_gcc(), *CFLAGS, "-o", str(tmp_path / "s"), str(tmp_path / "s.c")], check=True, timeout=60)
    assert subprocess.run([str(tmp_path / "s")], capture_output=True, check=True).stdout == label.encode("utf-8")
