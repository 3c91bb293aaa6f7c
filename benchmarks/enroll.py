"""Enrollment acceptance (issue 11): teach a bundle an activity it was never trained on, per person, on the device.

Usage:
  .venv/bin/python benchmarks/enroll.py new [--held WALKING_DOWNSTAIRS] [--epochs N] [--out benchmarks/out/enroll]
  .venv/bin/python benchmarks/enroll.py personalize --bundle /work/bundles/cnn [--out ...]
  .venv/bin/python benchmarks/enroll.py tune --bundle BUNDLE --held LABEL   # validation subjects only
  .venv/bin/python benchmarks/enroll.py latency --bundle BUNDLE [--head ENROLLED_BUNDLE]

``new``: train on HAPT without ``--held`` (``hartool train --labels`` with the other five), quantize to
int8; for each of the 9 UCI test subjects, ``hartool enroll`` the held activity into a copy of the bundle
from a CSV file holding that person's first 30 s of it, then ``hartool stream`` that person's whole
recording (a CSV replay) through the bundle before and after. Windows overlapping the enrollment samples
are not scored. ``--fast`` scores in-process instead of through ``hartool stream`` (the same artifact, the
same windows: used for the information tables). Cross-person recall applies each person's head to the
other 8 people's windows (in-process).

``personalize``: per test subject, ``hartool enroll --personalize`` with the first 60 s of each activity,
then that subject's accuracy on the rest of their data, before and after.

``tune``: the head's hyperparameters are chosen here, on the bundle's *validation* subjects, never on the
test subjects (``--held`` a label of the bundle: personalization parameters; else the new-class ones).

``latency``: the int8 model converted without and with the embedding output, timed interleaved.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `hartool enroll` does (see cli/enroll_cmd.py)

import numpy as np  # noqa: E402
from _common import hartool, md_table, save, stamp

from hartool.core.csvformat import format_header, format_row
from hartool.data import BASIC_ACTIVITIES, HAPT_LABEL_NAMES, UCI_HAR_TEST_SUBJECTS, load_dataset

RATE = 50.0
ENROLL_S = 30.0
PERSONAL_S = 60.0
NAMES = [HAPT_LABEL_NAMES[a] for a in BASIC_ACTIVITIES]
CODE = {HAPT_LABEL_NAMES[a]: a for a in BASIC_ACTIVITIES}


def subject_stream(ds, subject: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """All of a subject's recordings end to end: values (n, 6) and activity codes (n,), -1 unlabeled."""
    recs = [r for r in ds.recordings if r.subject == subject]
    return np.concatenate([r.values for r in recs]), np.concatenate([r.labels for r in recs]).astype(np.int64)


def write_csv(path: Path, values: np.ndarray, codes: np.ndarray | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(format_header({"sample_rate_hz": RATE, "units": "acc=g gyro=rad/s"}))
        for i, row in enumerate(values):
            label = HAPT_LABEL_NAMES.get(int(codes[i]), "") if codes is not None and codes[i] > 0 else ""
            fh.write(format_row(i / RATE, row, label))
    return path


def first_seconds(codes: np.ndarray, code: int, seconds: float) -> np.ndarray:
    """Indices of the first ``seconds`` of samples labelled ``code`` (across runs, in stream order)."""
    return np.flatnonzero(codes == code)[: int(seconds * RATE)]


def window_truth(codes: np.ndarray, ends: np.ndarray, window: int) -> np.ndarray:
    """Activity code of each window ending at ``ends`` when all its samples share one basic activity, else -1."""
    out = np.full(len(ends), -1, dtype=np.int64)
    for i, e in enumerate(ends):
        seg = codes[e - window : e]
        if len(seg) == window and seg[0] in BASIC_ACTIVITIES and (seg == seg[0]).all():
            out[i] = seg[0]
    return out


def overlaps(ends: np.ndarray, window: int, used: np.ndarray, n: int) -> np.ndarray:
    mask = np.zeros(n + 1, dtype=np.int64)
    mask[1:][used] = 1
    csum = np.cumsum(mask)
    return (csum[ends] - csum[ends - window]) > 0


def stream_rows(bundle: Path, csv: Path) -> tuple[np.ndarray, list[str], list[str]]:
    # Per-window answers: smoothing (stream's default is hysteresis) would blur what the head does.
    proc, _ = hartool("stream", str(bundle), "--port", str(csv), "--jsonl", "--artifact", "tflite-int8",
                      "--smooth", "none")
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return (np.array([r["end_sample"] for r in rows]), [r["label"] for r in rows],
            [r.get("head", "model") for r in rows])


def inproc_rows(bundle: Path, values: np.ndarray, head_from: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """What `hartool stream` computes, in-process: the same windows (stride from 0), artifact and head."""
    from hartool.core.bundle import Bundle
    from hartool.core.preprocess import preprocess
    from hartool.core.transform import InputTransform
    from hartool.runtime.artifacts import load_bundle_predictor
    from hartool.runtime.enroll import embed
    from hartool.runtime.heads import load_head

    b = Bundle.load(bundle)
    _, pred = load_bundle_predictor(b, "tflite-int8")
    ends = np.arange(b.window, len(values) + 1, b.stride)
    x = np.stack([values[e - b.window : e] for e in ends])
    x = InputTransform(b.manifest).stream_windows(x)  # a `free` bundle: turned as the stream turns them
    probs, emb = embed(pred, preprocess(x, b.preprocessing))
    head = load_head(Bundle.load(head_from)) if head_from else None
    labels = b.labels
    if head is not None:
        probs, labels = head.apply_batch(emb, probs), head.labels
    return ends, [labels[i] for i in probs.argmax(axis=1)]


def score(codes: np.ndarray, ends: np.ndarray, labels: list[str], window: int, held: str,
          skip: np.ndarray) -> dict:
    truth = window_truth(codes, ends, window)
    ok = (truth > 0) & ~skip
    names = np.array([HAPT_LABEL_NAMES.get(int(t), "") for t in truth])
    pred = np.array(labels)
    new = ok & (names == held)
    old = ok & (names != held)
    return {"new_windows": int(new.sum()), "new_hits": int((pred[new] == held).sum()),
            "old_windows": int(old.sum()), "old_hits": int((pred[old] == names[old]).sum()),
            "per_class": {n: [int(((pred == n) & ok & (names == n)).sum()), int((ok & (names == n)).sum())]
                          for n in NAMES}}


def train_without(held: str, out: Path, epochs: int | None, orientation: str = "fixed") -> Path:
    bundle = out / (f"without-{held}" if orientation == "fixed" else f"without-{held}-{orientation}")
    if (bundle / "manifest.json").is_file() and (bundle / "enroll_reference.npz").is_file():
        return bundle
    others = ",".join(n for n in NAMES if n != held)
    args = ["train", "--arch", "cnn", "--labels", others, "--orientation", orientation, "--out", str(bundle),
            "--quiet", "--json"]
    if epochs:
        args += ["--epochs", str(epochs)]
    print(f"training without {held} ...", file=sys.stderr)
    hartool(*args)
    hartool("quantize", str(bundle), "--formats", "tflite", "--modes", "int8")
    return bundle


def run_new(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    held = args.held
    bundle = train_without(held, out, args.epochs, args.orientation)
    ds = load_dataset("hapt")
    window = json.loads((bundle / "manifest.json").read_text())["window"]
    per, heads, streams = [], {}, {}
    for s in UCI_HAR_TEST_SUBJECTS:
        values, codes = subject_stream(ds, s)
        streams[s] = (values, codes)
        csv = write_csv(out / "subjects" / f"s{s:02d}.csv", values, codes)
        used = first_seconds(codes, CODE[held], ENROLL_S)
        enroll_csv = write_csv(out / f"without-{held}-enroll" / f"s{s:02d}.csv", values[used])
        copy = out / f"without-{held}-enroll" / f"bundle-s{s:02d}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(bundle, copy)
        proc, wall = hartool("enroll", str(copy), "--label", held, "--port", str(enroll_csv), "--seconds",
                             str(ENROLL_S), "--json")
        result = json.loads(proc.stdout)
        heads[s] = copy
        if args.fast:
            ends, before = inproc_rows(bundle, values)
            _, after = inproc_rows(bundle, values, head_from=copy)
            used_heads: list[str] = []
        else:
            ends, before, _ = stream_rows(bundle, csv)
            ends_after, after, used_heads = stream_rows(copy, csv)
            assert np.array_equal(ends, ends_after)
        skip = overlaps(ends, window, used, len(codes))
        b, a = score(codes, ends, before, window, held, skip), score(codes, ends, after, window, held, skip)
        row = {"subject": s, "enroll_wall_s": round(wall, 2), "enroll_lib_s": round(result["elapsed_s"], 2),
               "enroll_cpu_s": round(result.get("cpu_s", 0.0), 2),
               "enroll_windows": result["windows"], "warnings": result["warnings"],
               "expected_recall": (result["expected"].get(held) or {}).get("recall"),
               "before": b, "after": a, "heads_used": sorted(set(used_heads))}
        per.append(row)
        print(f"s{s:02d}: recall {a['new_hits']}/{a['new_windows']}, old {b['old_hits']}->{a['old_hits']} of "
              f"{a['old_windows']}, enroll {wall:.1f} s wall ({result['elapsed_s']:.1f} s in the library)",
              file=sys.stderr)
    cross = cross_person(bundle, heads, streams, window, held) if args.cross else None
    return {"held": held, "bundle": str(bundle), "epochs": args.epochs, "orientation": args.orientation,
            "mode": "fast" if args.fast else "stream",
            "subjects": per, "cross": cross, "summary": summarize(per, held)}


def cross_person(bundle: Path, heads: dict[int, Path], streams: dict, window: int, held: str) -> dict:
    """Recall of the held activity when enrolled from person A and scored on each of the other 8 people."""
    hits = total = 0
    old_before = old_after = old_n = 0
    for a, head_bundle in heads.items():
        for s, (values, codes) in streams.items():
            if s == a:
                continue
            ends, before = inproc_rows(bundle, values)
            _, after = inproc_rows(bundle, values, head_from=head_bundle)
            skip = np.zeros(len(ends), bool)
            b, r = score(codes, ends, before, window, held, skip), score(codes, ends, after, window, held, skip)
            hits, total = hits + r["new_hits"], total + r["new_windows"]
            old_before, old_after, old_n = old_before + b["old_hits"], old_after + r["old_hits"], old_n + r["old_windows"]
    return {"recall": hits / max(total, 1), "windows": total, "old_before": old_before / max(old_n, 1),
            "old_after": old_after / max(old_n, 1)}


def summarize(per: list[dict], held: str) -> dict:
    nh = sum(r["after"]["new_hits"] for r in per)
    nw = sum(r["after"]["new_windows"] for r in per)
    ob = sum(r["before"]["old_hits"] for r in per)
    oa = sum(r["after"]["old_hits"] for r in per)
    on = sum(r["after"]["old_windows"] for r in per)
    return {"recall": nh / max(nw, 1), "new_windows": nw, "old_before": ob / max(on, 1), "old_after": oa / max(on, 1),
            "old_delta_pp": 100.0 * (oa - ob) / max(on, 1), "old_windows": on,
            "per_subject_recall": {r["subject"]: r["after"]["new_hits"] / max(r["after"]["new_windows"], 1) for r in per},
            "enroll_wall_max_s": max(r["enroll_wall_s"] for r in per),
            "enroll_lib_max_s": max(r["enroll_lib_s"] for r in per)}


def run_personalize(args: argparse.Namespace) -> dict:
    out = Path(args.out) / "personalize"
    bundle = Path(args.bundle)
    labels = json.loads((bundle / "manifest.json").read_text())["labels"]
    window = json.loads((bundle / "manifest.json").read_text())["window"]
    ds = load_dataset("hapt")
    per = []
    for s in UCI_HAR_TEST_SUBJECTS:
        values, codes = subject_stream(ds, s)
        used = np.concatenate([first_seconds(codes, CODE[n], PERSONAL_S) for n in labels])
        used.sort()
        pcsv = write_csv(out / f"s{s:02d}-personal.csv", values[used], codes[used])
        copy = out / f"bundle-s{s:02d}"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(bundle, copy)
        proc, wall = hartool("enroll", str(copy), "--personalize", "--port", str(pcsv), "--json")
        ends, before = inproc_rows(bundle, values)
        _, after = inproc_rows(bundle, values, head_from=copy)
        skip = overlaps(ends, window, used, len(codes))
        b = score(codes, ends, before, window, "", skip)
        a = score(codes, ends, after, window, "", skip)
        per.append({"subject": s, "before": b["old_hits"] / max(b["old_windows"], 1),
                    "after": a["old_hits"] / max(a["old_windows"], 1), "windows": a["old_windows"],
                    "enroll_wall_s": round(wall, 2), "enroll_lib_s": round(json.loads(proc.stdout)["elapsed_s"], 2)})
        print(f"s{s:02d}: {per[-1]['before']:.4f} -> {per[-1]['after']:.4f} ({per[-1]['windows']} windows)",
              file=sys.stderr)
    gains = [100.0 * (r["after"] - r["before"]) for r in per]
    return {"bundle": str(bundle), "subjects": per, "mean_gain_pp": float(np.mean(gains)),
            "worst_gain_pp": float(np.min(gains)), "best_gain_pp": float(np.max(gains))}


def _subject_windows(bundle, pred, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    from hartool.core.preprocess import preprocess
    from hartool.runtime.enroll import embed

    ends = np.arange(bundle.window, len(values) + 1, bundle.stride)
    x = preprocess(np.stack([values[e - bundle.window : e] for e in ends]), bundle.preprocessing)
    return (ends, *embed(pred, x))


def run_tune(args: argparse.Namespace) -> dict:
    """Grid over the head's hyperparameters, on the bundle's validation subjects only (in-process)."""
    from dataclasses import replace

    from hartool.core.bundle import Bundle
    from hartool.core.transform import InputTransform
    from hartool.runtime import enroll as lib
    from hartool.runtime.heads import FitParams

    b = Bundle.load(args.bundle)
    _, pred = lib.require_embedding(b, "tflite-int8")
    ref = lib.load_reference(b, pred)
    with np.load(b.path / "enroll_reference.npz") as f:
        ref_subject = f["subject"]
    val_subjects = [int(v) for v in b.manifest["dataset"]["val_subjects"]]
    ds = load_dataset("hapt")
    held = args.held
    personal = held in b.labels
    grid = ([FitParams(personal_blend=a, personal_weight=w) for a in (0.3, 0.5, 0.7, 1.0) for w in (1.0, 3.0, 10.0)]
            if personal else
            [FitParams(max_false_rate=f, recall_keep=r) for f in (0.005, 0.01, 0.05) for r in (0.8, 0.9, 0.95, 1.0)])
    rows = []
    for params in grid:
        agg = np.zeros(4)
        for v in val_subjects:
            values, codes = subject_stream(ds, v)
            keep = ref_subject != v  # calibrate on the other validation people, as on a stranger
            sub_ref = lib._Reference(ref.probs[keep], ref.emb[keep], ref.y[keep], ref.split[keep])
            names = b.labels if personal else [held]
            used = np.sort(np.concatenate([first_seconds(codes, CODE[n], PERSONAL_S if personal else ENROLL_S)
                                           for n in names]))
            store = lib._Store.empty(InputTransform(b.manifest).input_shape)
            for n in names:
                idx = used[codes[used] == CODE[n]]
                store = store.plus(lib.cut_windows(values[idx], b), n, lib.KIND_PERSONAL if personal else lib.KIND_NEW)
            head, _ = lib.fit_head(b.labels, sub_ref, store, lib.embed(pred, store.x)[1], replace(params))
            ends, probs, emb = _subject_windows(b, pred, values)
            before = [b.labels[i] for i in probs.argmax(1)]
            after = [head.labels[i] for i in head.apply_batch(emb, probs).argmax(1)]
            skip = overlaps(ends, b.window, used, len(codes))
            sb = score(codes, ends, before, b.window, "" if personal else held, skip)
            sa = score(codes, ends, after, b.window, "" if personal else held, skip)
            agg += [sa["new_hits"], sa["new_windows"], sb["old_hits"] - sa["old_hits"], sa["old_windows"]]
        rows.append({"params": {k: getattr(params, k) for k in ("max_false_rate", "recall_keep", "l2",
                                                                 "personal_blend", "personal_weight")},
                     "recall": agg[0] / max(agg[1], 1), "old_delta_pp": -100 * agg[2] / max(agg[3], 1)})
        print(rows[-1], file=sys.stderr)
    return {"bundle": str(b.path), "held": held, "val_subjects": val_subjects, "grid": rows}


def _int8_tflite(model, calib: np.ndarray, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([c[None]] for c in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    path.write_bytes(conv.convert())
    return path


def run_latency(args: argparse.Namespace) -> dict:
    """p50 per window: int8 model without / with the embedding output, and with an enrolled head applied."""
    import keras

    from hartool.core.bundle import Bundle
    from hartool.runtime.backends import load_predictor
    from hartool.runtime.heads import load_head
    from hartool.train.embedding import with_embedding
    from hartool.train.models import fixed_batch_twin

    b = Bundle.load(args.bundle)
    twin = fixed_batch_twin(keras.models.load_model(b.keras_path(), compile=False), b.manifest.get("arch", "cnn"))
    with np.load(b.path / "enroll_reference.npz") as f:
        calib = f["x"][:200].astype(np.float32)
    tmp = Path(args.out) / "latency"
    tmp.mkdir(parents=True, exist_ok=True)
    single = load_predictor(_int8_tflite(twin, calib, tmp / "single.tflite"), n_classes=len(b.labels))
    dual = load_predictor(_int8_tflite(with_embedding(twin)[0], calib, tmp / "dual.tflite"), n_classes=len(b.labels))
    head = load_head(Path(args.head)) if args.head else None
    x = calib[:1]

    def with_head() -> None:
        probs, emb = dual.predict_with_embedding(x)
        head.apply(emb[0], probs[0])  # type: ignore[union-attr]

    runs = {"int8, probs only (no embedding output)": lambda: single.predict(x),
            "int8 + embedding output, predict()": lambda: dual.predict(x),
            "int8 + embedding output, predict_with_embedding()": lambda: dual.predict_with_embedding(x)}
    if head is not None:
        runs["predict_with_embedding() + head.apply()"] = with_head
    samples: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(args.rounds):  # interleaved rounds: the shared machine's load hits every variant alike
        for name, fn in runs.items():
            for _ in range(20):
                fn()
            t = np.empty(200)
            for i in range(200):
                t0 = time.perf_counter_ns()
                fn()
                t[i] = time.perf_counter_ns() - t0
            samples[name].append(float(np.median(t)) / 1000.0)
    return {"bundle": str(b.path), "rounds": args.rounds, "p50_us": {k: float(np.median(v)) for k, v in samples.items()}}


def markdown_new(doc: dict) -> str:
    rows = [[f"s{r['subject']:02d}", f"{r['after']['new_hits']}/{r['after']['new_windows']}",
             f"{100 * r['after']['new_hits'] / max(r['after']['new_windows'], 1):.1f} %",
             f"{100 * r['before']['old_hits'] / max(r['before']['old_windows'], 1):.2f} %",
             f"{100 * r['after']['old_hits'] / max(r['after']['old_windows'], 1):.2f} %",
             f"{r['enroll_wall_s']:.1f} s ({r['enroll_lib_s']:.1f} s)", len(r["warnings"])] for r in doc["subjects"]]
    sm = doc["summary"]
    rows.append(["**all 9**", f"{sm['new_windows']}", f"**{100 * sm['recall']:.1f} %**",
                 f"{100 * sm['old_before']:.2f} %", f"{100 * sm['old_after']:.2f} %",
                 f"max {sm['enroll_wall_max_s']:.1f} s", f"Δ old **{sm['old_delta_pp']:+.2f} pp**"])
    return md_table(["subject", "new windows hit", f"recall {doc['held']}", "old before", "old after",
                     "enroll wall (library)", "overlap warnings"], rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["new", "personalize", "tune", "latency"])
    ap.add_argument("--head", default=None, help="latency: a bundle with an enrolled head to time head.apply")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--held", default="WALKING_DOWNSTAIRS", choices=NAMES)
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--bundle", default="/work/bundles/cnn")
    ap.add_argument("--out", default="benchmarks/out/enroll")
    ap.add_argument("--fast", action="store_true", help="score in-process instead of through hartool stream")
    ap.add_argument("--cross", action="store_true", help="also cross-person recall (in-process)")
    ap.add_argument("--orientation", choices=["fixed", "free"], default="fixed",
                    help="new: train the bundle with this --orientation (free: calibrated windows, issue 25)")
    args = ap.parse_args()
    started = time.perf_counter()
    if args.what == "latency":
        doc = run_latency(args)
        doc.update(stamp(sys.argv))
        print(f"saved {save('enroll_latency.json', doc)}", file=sys.stderr)
        print(md_table(["path", "p50 per window"], [[k, f"{v:.1f} us"] for k, v in doc["p50_us"].items()]))
        return
    if args.what == "tune":
        doc = run_tune(args)
        doc.update(stamp(sys.argv))
        print(f"saved {save(f'enroll_tune_{args.held}.json', doc)}", file=sys.stderr)
        return
    doc = run_new(args) if args.what == "new" else run_personalize(args)
    doc.update(stamp(sys.argv), took_s=round(time.perf_counter() - started, 1))
    free = "_free" if args.orientation == "free" else ""
    name = f"enroll_{args.what}_{args.held if args.what == 'new' else 'personal'}{free}{'_fast' if args.fast else ''}.json"
    print(f"saved {save(name, doc)}", file=sys.stderr)
    if args.what == "new":
        print(markdown_new(doc))
        if doc.get("cross"):
            c = doc["cross"]
            print(f"\ncross-person recall {100 * c['recall']:.1f} % over {c['windows']} windows; "
                  f"old {100 * c['old_before']:.2f} -> {100 * c['old_after']:.2f} %")
    else:
        print(md_table(["subject", "before", "after", "gain", "windows"],
                       [[f"s{r['subject']:02d}", f"{100 * r['before']:.2f} %", f"{100 * r['after']:.2f} %",
                         f"{100 * (r['after'] - r['before']):+.2f} pp", r["windows"]] for r in doc["subjects"]]))
        print(f"\nmean gain {doc['mean_gain_pp']:+.2f} pp, worst {doc['worst_gain_pp']:+.2f} pp")


if __name__ == "__main__":
    main()
