"""Interpreter backends (LiteRT, tflite-runtime, onnxruntime) behind one Predictor, with input-contract checks."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ModelError

TFLITE_BACKENDS = ("litert", "tflite-runtime", "tf")
ONNX_BACKENDS = ("onnxruntime",)
BACKENDS = ("auto", *TFLITE_BACKENDS, *ONNX_BACKENDS)

# backend name -> module providing `Interpreter`; tried in this order for backend "auto".
TFLITE_MODULES = {
    "litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "tf": "tensorflow.lite",  # last resort on a training machine; never installed by the edge extra
}


def model_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".tflite":
        return "tflite"
    if suffix == ".onnx":
        return "onnx"
    raise ModelError(f"{path}: unknown model format {suffix!r} (expected .tflite or .onnx)")


def available_backends(fmt: str) -> list[str]:
    """Backends that import on this machine for ``fmt``, in preference order (imports nothing heavy)."""
    if fmt == "onnx":
        return ["onnxruntime"] if importlib.util.find_spec("onnxruntime") else []
    found = []
    for name, module in TFLITE_MODULES.items():
        top = module.split(".")[0]
        if importlib.util.find_spec(top) is not None:
            found.append(name)
    return found


@dataclass
class Predictor:
    """A loaded model: ``predict`` takes preprocessed float32 windows (N, window, C) and returns probabilities.

    Artifacts exported by this hartool carry a second output, the network's embedding (the input of its
    last layer); ``predict_with_embedding`` returns both from the same single interpreter call, while
    ``predict`` reads only the probabilities (no extra work on the plain path).
    """

    path: Path
    backend: str
    input_shape: tuple[int, ...]
    input_dtype: str
    output_dtype: str
    n_classes: int
    threads: int
    _run: Callable[[np.ndarray], np.ndarray]
    fixed_batch: int | None
    # Size of the embedding output, None for artifacts without one (exported before enrollment existed).
    embedding_dim: int | None = None
    _run_both: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_classes) float32; loops over windows when the model's batch is fixed to 1."""
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == len(self.input_shape) - 1:  # one window (or one feature vector) without a batch axis
            x = x[None]
        if self.fixed_batch is None or x.shape[0] == self.fixed_batch:
            return self._run(x)
        return np.concatenate([self._run(x[i : i + 1]) for i in range(x.shape[0])], axis=0)

    def predict_with_embedding(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (N, n_classes), embeddings (N, embedding_dim)), both float32, from one invoke."""
        if self._run_both is None:
            raise ModelError(f"{self.path}: model has no embedding output (re-export it with 'hartool quantize')")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == len(self.input_shape) - 1:  # one window (or one feature vector) without a batch axis
            x = x[None]
        if self.fixed_batch is None or x.shape[0] == self.fixed_batch:
            return self._run_both(x)
        pairs = [self._run_both(x[i : i + 1]) for i in range(x.shape[0])]
        return np.concatenate([p for p, _ in pairs]), np.concatenate([e for _, e in pairs])


def _split_outputs(shapes: list[tuple[Any, ...]], n_classes: int | None) -> tuple[int, int | None]:
    """(index of the probabilities output, index of the embedding output or None).

    The converters do not keep Keras' output order (TFLite puts the embedding first), so outputs are told
    apart by width: the probabilities have ``n_classes`` columns (when unknown: the narrowest output, as
    an embedding is always wider than the label list: export refuses one that is not).
    """
    if len(shapes) == 1:
        return 0, None
    widths = [s[-1] if s and isinstance(s[-1], int) else -1 for s in shapes]
    matches = [i for i, w in enumerate(widths) if n_classes is not None and w == n_classes]
    probs = matches[0] if len(matches) == 1 else int(np.argmin([w if w > 0 else 1 << 30 for w in widths]))
    others = [i for i in range(len(shapes)) if i != probs]
    return probs, (others[0] if len(others) == 1 else None)


def _quantize(x: np.ndarray, dtype: np.dtype, scale: float, zero_point: int) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _check_contract(path: Path, shape: tuple[Any, ...], window: int | None, channels: int | None,
                    out_classes: int, n_classes: int | None) -> None:
    """Fail at load, in one line, when a model does not fit the bundle (magic_wand's setup() check).

    A feature model (``--arch features``) takes (batch, n_features): callers say so with ``window=None``
    and ``channels=n_features``.
    """
    if len(shape) == 2 and window is None:
        if channels is not None and shape[1] != channels:
            raise ModelError(f"{path}: model input has {shape[1]} features but the bundle computes {channels}")
        if n_classes is not None and out_classes != n_classes:
            raise ModelError(f"{path}: model outputs {out_classes} classes but the bundle has {n_classes} labels")
        return
    if len(shape) != 3:
        raise ModelError(f"{path}: model input has rank {len(shape)} {tuple(shape)}, expected (batch, window, channels)")
    if window is not None and channels is not None and (shape[1], shape[2]) != (window, channels):
        raise ModelError(
            f"{path}: model input is {shape[1]} samples x {shape[2]} channels but the bundle says "
            f"{window} x {channels}"
        )
    if n_classes is not None and out_classes != n_classes:
        raise ModelError(f"{path}: model outputs {out_classes} classes but the bundle has {n_classes} labels")


_FD2_LOCK = threading.Lock()  # two loads in two threads must not swap each other's saved stderr


@contextlib.contextmanager
def _native_info_hidden() -> Iterator[None]:
    """Hide the ``INFO:`` lines LiteRT's C++ logger writes to fd 2 while an interpreter is built, when
    ``TF_CPP_MIN_LOG_LEVEL`` >= 1 (the CLI sets 2 unless ``--debug``).

    LiteRT's minimal logger ignores that variable and writes "INFO: Created TensorFlow Lite XNNPACK delegate
    for CPU." into every process that loads a .tflite, between hartool's own status lines. What native code
    writes meanwhile is caught in a temporary file and written back without its INFO lines, so a WARNING or
    an ERROR it logs there still reaches stderr, in order.
    """
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0").strip()
    if not (level.isdigit() and int(level) >= 1):
        yield
        return
    with _FD2_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 (a detached daemon): nothing to hide
            saved = None
        if saved is None:
            yield
            return
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = b"".join(ln for ln in sink.read().splitlines(keepends=True) if not ln.startswith(b"INFO: "))
            if kept:
                os.write(2, kept)


def _load_tflite(path: Path, backend: str, threads: int, xnnpack: bool) -> tuple[Any, str]:
    order = TFLITE_BACKENDS if backend == "auto" else (backend,)
    errors = []
    for name in order:
        try:
            module = importlib.import_module(TFLITE_MODULES[name])
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads}
        if not xnnpack:
            kwargs["experimental_op_resolver_type"] = module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with _native_info_hidden():
                interp = module.Interpreter(**kwargs)
                interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            # tflite-runtime 2.14 rejects newer op versions here; say which backend and why.
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"{path}: {name} cannot load this model ({msg})") from exc
        return interp, name
    raise ModelError(f"{path}: no TFLite interpreter installed ({'; '.join(errors)}); "
                     "install 'hartool[edge]' (ai-edge-litert)")


def load_predictor(path: str | os.PathLike[str], *, backend: str = "auto", threads: int = 1,
                   window: int | None = None, channels: int | None = None, n_classes: int | None = None,
                   xnnpack: bool = True) -> Predictor:
    """Load a .tflite or .onnx file and check it against the bundle's window/channels/labels.

    For a feature model pass ``window=None, channels=n_features`` (see ``runtime.artifacts.contract``).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file not found")
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    fmt = model_format(path)
    if fmt == "tflite":
        if backend == "onnxruntime":
            raise ModelError(f"{path}: onnxruntime cannot run a .tflite model")
        return _tflite_predictor(path, backend, threads, window, channels, n_classes, xnnpack)
    if backend not in ("auto", "onnxruntime"):
        raise ModelError(f"{path}: backend {backend!r} cannot run an .onnx model (use onnxruntime)")
    return _onnx_predictor(path, threads, window, channels, n_classes)


def _tflite_predictor(path: Path, backend: str, threads: int, window: int | None, channels: int | None,
                      n_classes: int | None, xnnpack: bool) -> Predictor:
    interp, name = _load_tflite(path, backend, threads, xnnpack)
    inp = interp.get_input_details()[0]
    outs = interp.get_output_details()
    probs_i, emb_i = _split_outputs([tuple(int(v) for v in o["shape"]) for o in outs], n_classes)
    out = outs[probs_i]
    shape = tuple(int(v) for v in inp["shape"])
    _check_contract(path, shape, window, channels, int(out["shape"][-1]), n_classes)
    in_dtype, out_dtype = np.dtype(inp["dtype"]), np.dtype(out["dtype"])
    in_scale, in_zp = inp["quantization"]
    out_scale, out_zp = out["quantization"]
    in_index, out_index = inp["index"], out["index"]
    quantized_in = in_dtype.kind in "iu" and in_scale != 0
    quantized_out = out_dtype.kind in "iu" and out_scale != 0

    def invoke(x: np.ndarray) -> np.ndarray:
        interp.set_tensor(in_index, x)
        interp.invoke()
        return interp.get_tensor(out_index)

    def convert_and_invoke(x: np.ndarray) -> np.ndarray:
        # Integer edges (--integer-io): quantize inputs and dequantize outputs here, so every artifact
        # takes the same float windows.
        y = invoke(_quantize(x, in_dtype, in_scale, in_zp) if quantized_in else x.astype(in_dtype, copy=False))
        if quantized_out:
            return (y.astype(np.float32) - out_zp) * out_scale
        return y.astype(np.float32, copy=False)

    # Float-edged models (integer ones too, by default) take the hot path: nothing but the interpreter.
    run = invoke if in_dtype == np.float32 and out_dtype == np.float32 else convert_and_invoke
    both = None
    if emb_i is not None:
        emb = outs[emb_i]
        emb_index, emb_dtype = emb["index"], np.dtype(emb["dtype"])
        emb_scale, emb_zp = emb["quantization"]

        def both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            probs = run(x)  # the probabilities exactly as `predict` gives them; the embedding is then read
            e = interp.get_tensor(emb_index)
            if emb_dtype.kind in "iu" and emb_scale != 0:
                return probs, (e.astype(np.float32) - emb_zp) * emb_scale
            return probs, e.astype(np.float32, copy=True)

    return Predictor(path=path, backend=name if xnnpack else f"{name}-noxnnpack", input_shape=shape,
                     input_dtype=in_dtype.name, output_dtype=out_dtype.name, n_classes=int(out["shape"][-1]),
                     threads=threads, _run=run, fixed_batch=shape[0],
                     embedding_dim=int(outs[emb_i]["shape"][-1]) if emb_i is not None else None, _run_both=both)


def _onnx_predictor(path: Path, threads: int, window: int | None, channels: int | None,
                    n_classes: int | None) -> Predictor:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError(f"{path}: onnxruntime is not installed; install 'hartool[edge]'") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    # ORT's errors derive straight from Exception; name them so anything else still surfaces as a bug.
    ort_errors = (RuntimeError, ValueError, OSError, ort_state.Fail, ort_state.InvalidArgument, ort_state.NoSuchFile,
                  ort_state.InvalidProtobuf, ort_state.InvalidGraph, ort_state.RuntimeException,
                  ort_state.NotImplemented)
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except ort_errors as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"{path}: onnxruntime cannot load this model ({msg[:200]})") from exc
    inp, outs = sess.get_inputs()[0], sess.get_outputs()
    probs_i, emb_i = _split_outputs([tuple(o.shape) for o in outs], n_classes)
    out = outs[probs_i]
    shape = tuple(d if isinstance(d, int) else -1 for d in inp.shape)
    out_classes = out.shape[-1] if isinstance(out.shape[-1], int) else (n_classes or -1)
    _check_contract(path, shape, window, channels, out_classes, n_classes)
    in_name, out_name = inp.name, out.name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run([out_name], {in_name: x})[0].astype(np.float32, copy=False)

    both = None
    emb_dim = None
    if emb_i is not None:
        names = [out_name, outs[emb_i].name]
        emb_dim = outs[emb_i].shape[-1] if isinstance(outs[emb_i].shape[-1], int) else None

        def both(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            probs, emb = sess.run(names, {in_name: x})
            return probs.astype(np.float32, copy=False), emb.astype(np.float32, copy=False)

    dtype = inp.type.replace("tensor(", "").rstrip(")").replace("float", "float32")
    return Predictor(path=path, backend="onnxruntime", input_shape=shape, input_dtype=dtype,
                     output_dtype=out.type.replace("tensor(", "").rstrip(")").replace("float", "float32"),
                     n_classes=out_classes, threads=threads, _run=run,
                     fixed_batch=shape[0] if shape[0] > 0 else None, embedding_dim=emb_dim, _run_both=both)
