"""Compare benchmark result files side by side: rows matched by (artifact, backend, threads), time ratios.

Every ratio is a *time* ratio, ``this / reference`` on a latency statistic: 1.0 = same, 0.5 = twice as fast,
6.0 = six times slower. ``ratio_vs_first`` compares each file with the first (laptop vs Pi); ``ratio_vs_ref``
compares each row with a reference row of the same file (``--ref tflite-fp32`` for int8 vs fp32,
``--ref onnx-fp32/onnxruntime`` for LiteRT vs ORT).

Output (``hartool.compare/1``)::

    {"schema", "statistic": "p50",
     "files": [{"label": "A", "path", "created", "machine": "one line", "settings": {runs, warmup, batch}}],
     "reference": null | {"artifact", "backend"},
     "rows": [{"bundle": str | null, "artifact", "backend", "threads",
               "cells": [null | {"status", "p50_us", "p99_us", "mean_us", "accuracy", "bytes",
                                 "throughput_per_s", "error"}],            # one per file
               "ratio_vs_first": [float | null], "p99_ratio_vs_first": [float | null],
               "ratio_vs_ref": [float | null]}],                           # one per file
     "warnings": [str]}

When every file holds one bundle, rows match regardless of the bundle folder's name (``bundles/cnn`` on a
laptop, ``~/cnn`` on a Pi); merged multi-bundle files match on the bundle name too.
"""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

from .machine import machine_summary
from .schema import ResultsError, all_rows, load_results

COMPARE_SCHEMA = "hartool.compare/1"
STATISTIC = "p50"
# Settings that change what a latency means; a difference is worth a warning, not a refusal.
COMPARED_SETTINGS = ("runs", "warmup", "batch", "seed", "recompute_accuracy")

Key = tuple[Any, ...]


def file_labels(count: int) -> list[str]:
    """A, B, C, ... then A2, B2, ... so ratio headers stay short ("B/A")."""
    letters = string.ascii_uppercase
    return [letters[i % 26] + (str(i // 26 + 1) if i >= 26 else "") for i in range(count)]


def parse_ref(spec: str | None) -> tuple[str, str | None] | None:
    """``"ARTIFACT"`` or ``"ARTIFACT/BACKEND"`` -> (artifact, backend or None)."""
    if spec is None:
        return None
    artifact, _, backend = spec.partition("/")
    if not artifact.strip():
        raise ResultsError(f"--ref {spec!r}: expected ARTIFACT or ARTIFACT/BACKEND (e.g. tflite-fp32/litert)")
    return artifact.strip(), backend.strip() or None


def _ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return round(value / reference, 3)


def _stat(row: dict[str, Any] | None, key: str) -> float | None:
    if row is None or row.get("status") != "ok":
        return None
    return row["latency_us"][key]


def _cell(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"status": row["status"], "p50_us": _stat(row, "p50"), "p99_us": _stat(row, "p99"),
            "mean_us": _stat(row, "mean"), "accuracy": row.get("accuracy"), "bytes": row.get("bytes"),
            "throughput_per_s": row.get("throughput_per_s"), "error": row.get("error")}


def _find_ref(rows: dict[Key, dict[str, Any]], key: Key,
              ref: tuple[str, str | None]) -> dict[str, Any] | None:
    """The reference row for ``key`` in one file: same bundle and threads, the ref artifact, and the ref
    backend, or else the same backend, or else the only row of that artifact."""
    bundle, _, backend, threads = key
    artifact, ref_backend = ref
    same = [r for (b, a, _, t), r in rows.items()
            if b == bundle and a == artifact and (t == threads or t is None or threads is None)]
    for wanted in (ref_backend,) if ref_backend else (backend,):
        hits = [r for r in same if r["backend"] == wanted]
        if hits:
            return hits[0]
    return same[0] if not ref_backend and len(same) == 1 else None


def compare_results(docs: list[dict[str, Any]], paths: list[str], ref: str | None = None) -> dict[str, Any]:
    """Match rows across validated result documents and compute time ratios (see the module docstring)."""
    if not docs:
        raise ResultsError("nothing to compare: give at least one result file")
    single = all(len(d["bundles"]) == 1 for d in docs)
    labels = file_labels(len(docs))
    tables: list[dict[Key, dict[str, Any]]] = []
    order: dict[Key, None] = {}
    warnings: list[str] = []
    for label, doc in zip(labels, docs, strict=True):
        table: dict[Key, dict[str, Any]] = {}
        for row in all_rows(doc):
            key = (None if single else row["bundle"], row["artifact"], row["backend"], row["threads"])
            if key in table:
                warnings.append(f"{label}: two rows for {_key_text(key)}; the first is used")
                continue
            table[key] = row
            order.setdefault(key)
        tables.append(table)
    warnings += _settings_warnings(docs, labels)
    reference = parse_ref(ref)
    if reference and not any(k[1] == reference[0] for k in order):
        known = ", ".join(sorted({k[1] for k in order}))
        raise ResultsError(f"--ref {ref}: no row has artifact {reference[0]!r} (artifacts: {known})")
    rows = []
    for key in order:
        found = [t.get(key) for t in tables]
        firsts = [_stat(found[0], s) for s in ("p50", "p99")]
        refs = [_find_ref(t, key, reference) if reference else None for t in tables]
        rows.append({
            "bundle": key[0], "artifact": key[1], "backend": key[2], "threads": key[3],
            "cells": [_cell(r) for r in found],
            "ratio_vs_first": [_ratio(_stat(r, "p50"), firsts[0]) for r in found],
            "p99_ratio_vs_first": [_ratio(_stat(r, "p99"), firsts[1]) for r in found],
            "ratio_vs_ref": [_ratio(_stat(r, STATISTIC), _stat(rr, STATISTIC)) if reference else None
                             for r, rr in zip(found, refs, strict=True)],
        })
    files = [{"label": label, "path": path, "created": doc["created"],
              "machine": machine_summary(doc["machine"]),
              "settings": {k: doc["settings"].get(k) for k in COMPARED_SETTINGS}}
             for label, path, doc in zip(labels, paths, docs, strict=True)]
    return {"schema": COMPARE_SCHEMA, "statistic": STATISTIC, "files": files,
            "reference": reference and {"artifact": reference[0], "backend": reference[1]},
            "rows": rows, "warnings": warnings}


def _key_text(key: Key) -> str:
    bundle, artifact, backend, threads = key
    return f"{bundle + ':' if bundle else ''}{artifact} on {backend} x{threads}"


def _settings_warnings(docs: list[dict[str, Any]], labels: list[str]) -> list[str]:
    warnings = []
    for name in COMPARED_SETTINGS:
        values = [d["settings"].get(name) for d in docs]
        if len(set(map(repr, values))) > 1:
            listed = ", ".join(f"{v} ({label})" for v, label in zip(values, labels, strict=True))
            warnings.append(f"settings differ: {name} {listed}")
    return warnings


def compare_files(paths: list[str | os.PathLike[str]],
                  ref: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load, validate and compare result files; returns (comparison, the loaded documents)."""
    docs = [load_results(p) for p in paths]
    return compare_results(docs, [str(Path(p)) for p in paths], ref), docs
