"""The model on the microcontroller: `hartool export c` of a cnn bundle, checked and measured.

- host (gcc) build vs the tflite-micro interpreter on every test window: differing output values (int8);
- argmax agreement with LiteRT's int8 artifact and test accuracy of both;
- Cortex-M4 build under qemu-system-arm -M mps2-an386 on evenly spread test windows: outputs equal to the host
  build, instructions per window (qemu -icount + SysTick), stack high-water mark, implied time at 64 MHz;
- Cortex-M4 instructions per window of each graph op (a build whose graph brackets every op with SysTick reads),
  and the library at -O3 and -Os beside the default -O2 (sizes, instructions, outputs equal to the host);
- Cortex-M0+ and RV32IMC builds: sizes.

Usage: .venv/bin/python benchmarks/mcu.py BUNDLE [--m4-windows 60]   (BUNDLE quantized with --modes int8)
Writes benchmarks/results/mcu.json and prints the markdown rows for RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import md_table, save, stamp  # noqa: E402


def raw_test_windows(bundle):
    """The bundle's test windows in manifest units (what the C library is fed), checked to be the evaluation's."""
    from hartool.core.preprocess import preprocess
    from hartool.data import load_dataset, make_windows
    from hartool.data.evalset import bundle_eval_set

    m = bundle.manifest
    w = make_windows(load_dataset(m["dataset"]["name"]), m["window"], m["stride"], labels=m["labels"])
    test = w.subset(np.isin(w.subject, m["dataset"]["test_subjects"]))
    ev = bundle_eval_set(m, calibration_windows=1)
    if not np.array_equal(preprocess(test.x, bundle.preprocessing), ev.x_test):
        raise SystemExit("raw test windows do not reproduce the bundle's evaluation set")
    return np.asarray(test.x, np.float32), ev.x_test, test.y


def tflm_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    """Both float outputs of each window, concatenated, from the tflite-micro interpreter."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_file(str(path))
    rows = []
    for i in range(len(x)):
        it.set_input(x[i:i + 1], 0)
        it.invoke()
        rows.append(np.concatenate([np.asarray(it.get_output(k), np.float32).ravel() for k in range(2)]))
    return np.stack(rows)


def to_int8(values: np.ndarray, graph) -> np.ndarray:
    """Each DEQUANTIZE'd output back to its int8 tensor (exact: the dequantization is one-to-one)."""
    cols, start = [], 0
    producers = {o: op for op in graph.operators for o in op.outputs}
    for t in graph.outputs:
        src = graph.tensors[producers[t].inputs[0]]
        n = graph.tensors[t].size
        cols.append(np.rint(values[:, start:start + n].astype(np.float64) / src.scale) + src.zero_point)
        start += n
    return np.concatenate(cols, axis=1).astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--m4-windows", type=int, default=60)
    args = ap.parse_args()
    from hartool.bench.mcu import TARGETS, run_host, target_row
    from hartool.core.bundle import Bundle
    from hartool.export.c.graph import read_graph
    from hartool.export.c.library import export_c
    from hartool.runtime.backends import load_predictor

    bundle = Bundle.load(args.bundle)
    tfl = bundle.artifact_path(bundle.artifact("tflite-int8"))
    raw, x, y = raw_test_windows(bundle)
    work = Path(tempfile.mkdtemp(prefix="hartool-mcu-"))
    info = export_c(args.bundle, work / "lib")
    src = work / "lib" / "src"
    host = run_host(src, raw, work / "host")
    c_vals = np.stack([np.frombuffer(b, np.float32) for b in host["outputs"]])
    ref = tflm_outputs(tfl, x)
    graph = read_graph(tfl)
    diff_int8 = int(np.sum(to_int8(c_vals, graph) != to_int8(ref, graph)))
    litert = load_predictor(tfl).predict(x)
    litert_label = np.argmax(litert, axis=1)
    pick = np.linspace(0, len(raw) - 1, args.m4_windows).astype(int)
    rows = [target_row(src, name, work / "t", raw[pick] if name == "cortex-m4" else None) for name in TARGETS]
    m4 = rows[0]
    m4_equal_to_host = m4["equal_to_host"]
    per_op, opt_levels = m4_profile(src, raw[pick], work, info["ops"])
    doc = {**stamp(["python", "benchmarks/mcu.py", *sys.argv[1:]]), "export": info, "windows": len(raw),
           "values_compared": int(c_vals.size), "differing_int8_values_vs_tflm": diff_int8,
           "differing_float_bytes_vs_tflm": int(np.sum(c_vals.view(np.uint32) != ref.view(np.uint32))),
           "argmax_agreement_vs_litert_int8": float(np.mean(host["labels"] == litert_label)),
           "accuracy_c": float(np.mean(host["labels"] == y)), "accuracy_litert_int8": float(np.mean(litert_label == y)),
           "accuracy_manifest_tflite_int8": bundle.artifact("tflite-int8").get("accuracy"),
           "m4_windows": len(pick), "m4_equal_to_host": bool(m4_equal_to_host), "targets": rows,
           "m4_per_op": per_op, "m4_opt_levels": opt_levels}
    path = save("mcu.json", doc)
    print(f"raw results: {path}")
    print(f"{doc['date']} {doc['machine']}")
    print(f"host vs tflite-micro: {diff_int8} differing int8 values of {c_vals.size:,} ({len(raw):,} windows x "
          f"{c_vals.shape[1]} outputs); argmax vs LiteRT int8 {doc['argmax_agreement_vs_litert_int8']:.4%}; "
          f"accuracy C {doc['accuracy_c']:.4%}, LiteRT int8 {doc['accuracy_litert_int8']:.4%}, "
          f"manifest {doc['accuracy_manifest_tflite_int8']}")
    print(md_table(["target", "flash B (text+rodata+data)", "text", "rodata", "data", "bss (arena)", "stack",
                    "instructions / window", "ms @ 64 MHz (1 IPC)", "qemu windows = host"],
                   [[r["target"], f"{r['flash_bytes']:,}", f"{r['text']:,}", f"{r['rodata']:,}", r["data"],
                     f"{r['bss']:,} ({info['arena_bytes']:,})", r["stack_bytes"] or "-",
                     f"{r['instructions_per_window']:,.0f}" if r["instructions_per_window"] else "-",
                     f"{r['ms_at_clock']:.1f}" if r["ms_at_clock"] else "-",
                     f"{r['windows_run']}: {'yes' if m4_equal_to_host else 'NO'}" if r["windows_run"] else "build only"]
                    for r in rows]))
    print(md_table(["op", "instructions / window"],
                   [[f"{o['index']} {o['op']}", f"{o['instructions']:,.0f}"] for o in per_op]))
    print(md_table(["-O", "text", "rodata", "instructions / window", "qemu = host"],
                   [[o["opt"], f"{o['text']:,}", f"{o['rodata']:,}", f"{o['instructions_per_window']:,.0f}",
                     "yes" if o["equal_to_host"] else "NO"] for o in opt_levels]))


def m4_profile(src: Path, windows: np.ndarray, work: Path, ops: list[str]) -> tuple[list[dict], list[dict]]:
    """Cortex-M4: instructions per window of each op (-O2), and the whole library at -O2, -O3 and -Os."""
    from hartool.bench.mcu import TARGETS, library_sizes, run_cortex_m4, run_host

    prof = run_cortex_m4(src, windows, work / "profile", profile=True)
    per_op = [{"index": i, "op": op, "instructions": float(n)} for i, (op, n) in enumerate(zip(ops, prof["op_instructions"],
                                                                                              strict=True))]
    host = run_host(src, windows, work / "host-m4")
    levels = []
    for opt in ("-O2", "-O3", "-Os"):
        board = run_cortex_m4(src, windows, work / f"m4{opt}", opt=opt)
        sizes = library_sizes(src, TARGETS["cortex-m4"], work / f"size{opt}", opt=opt)
        levels.append({"opt": opt, **sizes, "instructions_per_window": float(np.mean(board["instructions"])),
                       "equal_to_host": board["outputs"] == host["outputs"]})
    return per_op, levels


if __name__ == "__main__":
    main()
