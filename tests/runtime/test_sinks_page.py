"""The live page in real headless Chromium (Debian chromium + chromedriver) while a stream is fed through a pipe:
the shown activity follows the recording's activity, and the page's parts (timeline, lines, counters) render."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from stream_proc import StreamProc, subject_recording, text_lines

from hartool.core.bundle import Bundle
from hartool.core.preprocess import preprocess
from hartool.runtime.artifacts import load_bundle_predictor
from hartool_testing import wait_until
from webdriver import Browser, browser_available

SEG = 512  # samples per segment: 7 windows of 128 / 64 for the first, 8 more for the second
TAIL = 8   # a window is classified once a later sample arrived (the resampler's look-ahead): feed a bit past

pytestmark = pytest.mark.skipif(not browser_available(), reason="needs Debian chromium + chromium-driver")


def _runs(labels: np.ndarray, length: int) -> list[tuple[int, int]]:
    """(start, true label) of every stretch of ``length`` samples with one label, stepping by ``length``."""
    out = []
    start = 0
    while start + length <= len(labels):
        lab = int(labels[start])
        if lab >= 0 and np.all(labels[start:start + length] == lab):
            out.append((start, lab))
            start += length
        else:
            start += length // 4
    return out


def _predict_last(bundle: Path, values: np.ndarray) -> str:
    """The label of the last window the stream makes from ``values`` (text keeps 4 decimals)."""
    b = Bundle.load(bundle)
    _, pred = load_bundle_predictor(b, "tflite-int8")
    n = (len(values) - b.window) // b.stride
    end = b.window + n * b.stride
    x = preprocess(np.round(values[end - b.window:end], 4), b.preprocessing)[None]
    return b.labels[int(pred.predict(x.astype(np.float32))[0].argmax())]


@pytest.fixture(scope="module")
def two_activities(quantized_bundle: Path) -> tuple[np.ndarray, str, str]:
    """Two recorded segments of different activities that the model also tells apart, concatenated
    (plus TAIL samples of the second activity's continuation)."""
    values, labels = subject_recording(9)
    runs = _runs(labels, SEG)
    for i, (a, lab_a) in enumerate(runs):
        for b, lab_b in runs[i + 1:]:
            if lab_a == lab_b:
                continue
            seq = np.concatenate([values[a:a + SEG], values[b:b + SEG + TAIL]])
            # A live pipe may lose its first line (the host resyncs on a line boundary), so require the
            # same labels with and without that first sample.
            first = {_predict_last(quantized_bundle, seq[k:SEG + k]) for k in (0, 1)}
            second = {_predict_last(quantized_bundle, seq[k:2 * SEG + k]) for k in (0, 1)}
            if len(first) == len(second) == 1 and first != second:
                return seq, first.pop(), second.pop()
    raise AssertionError("the test model gives one label to every activity of subject 9")


def test_page_shows_the_activity_of_the_recording(quantized_bundle: Path, two_activities, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    seq, first, second = two_activities
    sp = StreamProc(quantized_bundle, "--serve", "127.0.0.1:0", "--jsonl", "--device-name", "pagetest",
                    "--artifact", "tflite-int8")
    try:
        url = sp.wait_err(r"live page on (http://\S+)").group(1)
        sp.feed(text_lines(seq[:SEG + TAIL]))
        wait_until(lambda: len(sp.out_lines) == 7, what="the first activity's windows")
        with Browser() as browser:
            browser.get(url)
            shown = browser.wait_for("const a = document.getElementById('activity');"
                                     "return a.dataset.window === '6' ? a.textContent : null;")
            assert shown == first == json.loads(sp.out_lines[-1])["label"]
            conf = browser.js("return document.getElementById('confidence').textContent")
            assert conf.endswith("%") and float(conf.split()[0]) == pytest.approx(
                100 * json.loads(sp.out_lines[-1])["confidence"], abs=0.051)
            # Then the recording changes activity: the page follows over server-sent events, no reload.
            sp.feed(text_lines(seq[SEG + TAIL:]))
            shown = browser.wait_for("const a = document.getElementById('activity');"
                                     "return a.dataset.window === '14' ? a.textContent : null;")
            assert shown == second != first
            assert json.loads(sp.out_lines[-1])["label"] == second
            counters = browser.wait_for("const v = document.getElementById('counter-windows');"
                                        "return v && v.textContent === '15' ? v.textContent : null;")
            assert counters == "15"
            # The timeline band and the probability lines are drawn in the labels' colours.
            painted = browser.js("""
                const px = (id) => { const c = document.getElementById(id);
                  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; };
                return [px('timeline'), px('probs'), document.querySelectorAll('#legend span').length];""")
            assert painted[0] > 0 and painted[1] > 0 and painted[2] == len(Bundle.load(quantized_bundle).labels)
            assert browser.screenshot(tmp_path / "live_page.png").stat().st_size > 1000
        assert sp.finish() == 0
    finally:
        sp.kill()
