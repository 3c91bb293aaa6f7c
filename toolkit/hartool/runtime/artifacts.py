"""Which artifact of a bundle runs by default: the fastest one within 0.3 pp of the best validation accuracy.

Latencies within 10 % of the fastest count as a tie, which the preference order below breaks.

`quantize` records each artifact's accuracy (through LiteRT / onnxruntime) on the bundle's test windows, which
is reported, and on its validation windows, which is what the choice is made on: picking by test accuracy
would tune on the test subjects (on a small set one artifact "wins" by a window or two). Bundles quantized
before ``val_accuracy`` existed are ranked by their test accuracy, and the reason says so. Also recorded: a
median latency per window (every artifact of the bundle timed in the same interleaved rounds) in the manifest,
then stores the choice and its reason as ``manifest["default_artifact"] = {"name", "reason"}``. `stream` and
`benchmark` take that choice when it still names a runnable artifact, else apply the same rule to what the
manifest holds now, else fall back to a fixed preference order (small integer TFLite first).
"""

from __future__ import annotations

from typing import Any

from ..core.bundle import Bundle
from ..core.errors import BundleError
from ..core.features import FEATURES_TYPE
from .backends import Predictor, available_backends, load_predictor

# Used only when the manifest has no accuracy/latency to decide by: the small, fast, integer ones first.
ARTIFACT_PREFERENCE = ("tflite-int8", "tflite-dynamic", "tflite-fp32", "tflite-fp16", "onnx-fp32", "onnx-int8",
                       "onnx-dynamic", "tflite-int16x8")
ACCURACY_TOLERANCE_PP = 0.3
# Latencies this close are one speed: on a shared 2-core machine the same two artifacts (int8 and dynamic CNN,
# ~12 vs ~13 us) swapped order in 1 of 5 quantize runs (benchmarks/artifact_choice.py). Within it the
# preference order decides, so the pick does not flip from run to run.
LATENCY_TIE = 0.10
RUNNABLE_FORMATS = ("tflite", "onnx")


def _runnable(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Artifacts some installed interpreter can run (an .onnx file is useless without onnxruntime)."""
    have = {fmt: bool(available_backends(fmt)) for fmt in RUNNABLE_FORMATS}
    return [e for e in entries if e.get("format") in RUNNABLE_FORMATS and have[e["format"]]]


def _preferred(entries: list[dict[str, Any]]) -> dict[str, Any]:
    by_name = {e["name"]: e for e in entries}
    for name in ARTIFACT_PREFERENCE:
        if name in by_name:
            return by_name[name]
    return entries[0]


def _accuracy_key(entries: list[dict[str, Any]]) -> str:
    """Rank by validation accuracy when every artifact that has an accuracy also has one (mixing the two
    would compare different windows)."""
    scored = [e for e in entries if e.get("accuracy") is not None or e.get("val_accuracy") is not None]
    return "val_accuracy" if scored and all(e.get("val_accuracy") is not None for e in scored) else "accuracy"


def rank_default(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """The default artifact among ``entries`` (manifest entries) and one sentence saying why.

    Raises BundleError when none can run here.
    """
    runnable = _runnable(entries)
    if not runnable:
        raise BundleError("no .tflite or .onnx artifact that an installed interpreter can run")
    key = _accuracy_key(runnable)
    scored = [e for e in runnable if e.get(key) is not None]
    if not scored:
        pick = _preferred(runnable)
        return pick, "no accuracy recorded: first in the preference order (int8 TFLite first)"
    best = max(scored, key=lambda e: e[key])
    floor = best[key] - ACCURACY_TOLERANCE_PP / 100.0 - 1e-12
    near = [e for e in scored if e[key] >= floor]
    timed = [e for e in near if e.get("latency_us")]
    what, why_test = ("validation", "") if key == "val_accuracy" else ("test", "; no validation accuracy recorded")
    head = (f"of {len(near)} artifact(s) within {ACCURACY_TOLERANCE_PP:g} pp of the best {what} accuracy "
            f"({100 * best[key]:.2f} %, {best['name']}{why_test})")
    if timed:
        timed.sort(key=lambda e: e["latency_us"])
        fastest = timed[0]
        pick = _preferred([e for e in timed if e["latency_us"] <= (1 + LATENCY_TIE) * fastest["latency_us"]])
        which = "fastest" if pick is fastest else (
            f"first in the preference order of those within {100 * LATENCY_TIE:.0f} % of the fastest "
            f"({fastest['name']}, {fastest['latency_us']:.1f} us)")
        return pick, (f"{which} {head}: {pick['latency_us']:.1f} us per window, {what} accuracy "
                      f"{100 * pick[key]:.2f} %")
    pick = _preferred(near)
    return pick, f"no latency recorded: first in the preference order {head}"


def default_artifact_record(entries: list[dict[str, Any]]) -> dict[str, str] | None:
    """``{"name", "reason"}`` for the manifest, or None when nothing is runnable."""
    try:
        pick, reason = rank_default(entries)
    except BundleError:
        return None
    return {"name": pick["name"], "reason": reason}


def choose_artifact(bundle: Bundle, name: str | None = None) -> dict[str, Any]:
    """The manifest entry to run: ``name`` when given, else the bundle's recorded default, else the rule."""
    if name:
        return bundle.artifact(name)
    recorded = bundle.manifest.get("default_artifact") or {}
    runnable = {e["name"]: e for e in _runnable(bundle.artifacts)}
    if recorded.get("name") in runnable:
        return runnable[recorded["name"]]
    try:
        return rank_default(bundle.artifacts)[0]
    except BundleError as exc:
        raise BundleError(f"{bundle.path}: {exc} (run 'hartool quantize {bundle.path}')") from exc


def choice_reason(bundle: Bundle, entry: dict[str, Any], name: str | None = None) -> str:
    """Why ``entry`` runs, for the stream's status line."""
    if name:
        return "named with --artifact"
    recorded = bundle.manifest.get("default_artifact") or {}
    if recorded.get("name") == entry["name"] and recorded.get("reason"):
        return recorded["reason"]
    return rank_default(bundle.artifacts)[1]


def contract(manifest: dict[str, Any]) -> dict[str, int | None]:
    """``load_predictor`` keywords that check a model against a bundle's input and labels.

    Raw-window models take (window, channels); a feature model (``--arch features``) takes the feature
    vector, which ``load_predictor`` checks as ``window=None, channels=n_features``.
    """
    spec = manifest.get("preprocessing") or {}
    if spec.get("type") == FEATURES_TYPE:
        return {"window": None, "channels": int(spec["n_features"]), "n_classes": len(manifest["labels"])}
    return {"window": int(manifest["window"]), "channels": len(manifest["channels"]),
            "n_classes": len(manifest["labels"])}


def load_bundle_predictor(bundle: Bundle, artifact: str | None, backend: str = "auto",
                          threads: int = 1) -> tuple[dict[str, Any], Predictor]:
    """Pick and load an artifact, checking it against the bundle's window, channels and labels."""
    entry = choose_artifact(bundle, artifact)
    path = bundle.artifact_path(entry)
    pred = load_predictor(path, backend=backend, threads=threads, **contract(bundle.manifest))
    return entry, pred
