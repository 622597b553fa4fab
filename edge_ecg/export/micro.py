"""The microcontroller check: run the int8 model under TFLite-Micro's Python interpreter.

:func:`find_arena_size` searches for the smallest tensor arena the model allocates and runs
in; :func:`micro_parity` compares TFLite-Micro's raw int8 outputs with LiteRT's on the same
windows (the two use different LSTM kernels, so small differences are expected and
measured, not assumed). Arena sizes are those of the host build (64-bit pointers); a
32-bit microcontroller needs slightly less.
"""

from __future__ import annotations

import platform

import numpy as np

from edge_ecg.errors import EdgeEcgError, first_line
from edge_ecg.tfcompat import quiet_native_stderr
from edge_ecg.runtime.interpreter import TFLiteClassifier, quantize
from edge_ecg.runtime.metadata import ModelMetadata, read_metadata

#: Arena sizes are searched in steps of this many bytes (TFLite-Micro aligns to 16).
ARENA_STEP = 16
#: The largest arena tried (bytes).
MAX_ARENA = 64 * 1024 * 1024
INSTALL_HINT = "pip install tflite-micro (or 'edge-ecg[micro]')"


def micro_runtime():
    """The ``tflite_micro.runtime`` module; :class:`EdgeEcgError` naming the package when missing."""
    try:
        from tflite_micro import runtime
    except ImportError:
        raise EdgeEcgError(f"the tflite-micro package is not installed; {INSTALL_HINT}") from None
    return runtime


def micro_version() -> str:
    """The installed tflite-micro version ('' when unknown)."""
    try:
        import tflite_micro

        return str(getattr(tflite_micro, "__version__", ""))
    except ImportError:
        return ""


def _inputs_by_index(meta: ModelMetadata, beat: np.ndarray, rr: np.ndarray | None) -> list[tuple[int, np.ndarray]]:
    out = [(meta.input("beat").index, quantize(beat, meta.input("beat")))]
    if meta.uses_rr:
        out.append((meta.input("rr").index, quantize(rr, meta.input("rr"))))
    return out


def make_micro_interpreter(model: bytes, arena_size: int):
    """A TFLite-Micro interpreter for ``model`` with an ``arena_size``-byte arena (or RuntimeError)."""
    return micro_runtime().Interpreter.from_bytes(bytes(model), arena_size=int(arena_size))


def _works(model: bytes, arena: int, probe: list[tuple[int, np.ndarray]]) -> bool:
    try:
        with quiet_native_stderr():
            interp = make_micro_interpreter(model, arena)
            for index, data in probe:
                interp.set_input(data, index)
            interp.invoke()
        return True
    except (RuntimeError, ValueError):
        return False


def find_arena_size(model: bytes, probe: list[tuple[int, np.ndarray]] | None = None, step: int = ARENA_STEP) -> int:
    """The smallest arena (bytes, a multiple of ``step``) in which ``model`` allocates and runs.

    ``probe`` is ``[(input index, model-ready array)]`` run once per trial (zeros by
    default). Raises :class:`EdgeEcgError` when even :data:`MAX_ARENA` fails (an op
    TFLite-Micro lacks, for example).
    """
    if probe is None:
        meta = read_metadata(model)
        probe = [(t.index, np.zeros(t.shape, dtype=t.dtype)) for t in meta.inputs]
    hi = max(4096, (len(model) // step + 1) * step)
    while not _works(model, hi, probe):
        if hi >= MAX_ARENA:
            raise EdgeEcgError(f"tflite-micro cannot run the model even with a {MAX_ARENA // 1024 // 1024} MiB arena "
                               f"({_micro_error(model, probe)})")
        hi *= 2
    lo = 0  # lo fails (or is zero), hi works
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        if mid <= lo:
            break
        if _works(model, mid, probe):
            hi = mid
        else:
            lo = mid
    return int(hi)


def _micro_error(model: bytes, probe) -> str:
    try:
        interp = make_micro_interpreter(model, MAX_ARENA)
        for index, data in probe:
            interp.set_input(data, index)
        interp.invoke()
    except Exception as exc:
        return first_line(exc)
    return "unknown failure"


def micro_outputs(model: bytes, X: np.ndarray, rr: np.ndarray | None, arena_size: int) -> np.ndarray:
    """Raw outputs ``(n, 5)`` of TFLite-Micro for windows ``X`` ``(n, L)`` and ``rr`` ``(n, F)``.

    The interpreter is reset before each beat (the LSTM state starts at zero every time).
    """
    meta = read_metadata(model)
    out_info = meta.outputs[0]
    interp = make_micro_interpreter(model, arena_size)
    out = np.zeros((len(X), int(np.prod(out_info.shape))), dtype=np.dtype(out_info.dtype))
    for i in range(len(X)):
        interp.reset()
        for index, data in _inputs_by_index(meta, X[i], None if rr is None else rr[i]):
            interp.set_input(data, index)
        interp.invoke()
        out[i] = np.asarray(interp.get_output(out_info.index)).reshape(-1)
    return out


def micro_parity(
    model: bytes, X: np.ndarray, rr: np.ndarray | None, arena_size: int | None = None, reference: np.ndarray | None = None,
    max_listed: int = 100,
) -> dict:
    """TFLite-Micro vs LiteRT on the same windows.

    ``X`` ``(n, L)`` normalised windows, ``rr`` ``(n, F)``; ``reference`` LiteRT's raw
    outputs ``(n, 5)`` (computed here when None). Returns ``arena_bytes``, ``n_beats``,
    ``max_diff_steps`` / ``mean_abs_diff_steps`` (output difference in int8 steps),
    ``label_agreement_pct``, the LiteRT runtime used, and ``disagreements``: for each beat
    whose labels differ (at most ``max_listed``), its index, both labels and the largest
    output difference in int8 steps.
    """
    if arena_size is None:
        arena_size = find_arena_size(model)
    clf = TFLiteClassifier(model, delegate="none")
    if reference is None:
        reference = clf.predict_raw_batch(X, rr)
    micro = micro_outputs(model, X, rr, arena_size)
    diff = np.abs(micro.astype(np.int32) - reference.astype(np.int32))
    micro_label, ref_label = np.argmax(micro, axis=1), np.argmax(reference, axis=1)
    agree = micro_label == ref_label
    classes = clf.classes
    disagreements = [
        {"index": int(i), "litert": classes[int(ref_label[i])], "micro": classes[int(micro_label[i])],
         "diff_steps": int(diff[i].max())}
        for i in np.flatnonzero(~agree)[:max_listed]
    ]
    return {
        "version": micro_version(),
        "platform": f"{platform.machine()} host build",
        "arena_bytes": int(arena_size),
        "n_beats": int(len(X)),
        "reference": clf.runtime_name,
        "max_diff_steps": int(diff.max()) if diff.size else 0,
        "mean_abs_diff_steps": float(diff.mean()) if diff.size else 0.0,
        "diff_histogram": {int(k): int(v) for k, v in zip(*np.unique(diff.max(axis=1), return_counts=True))},
        "label_agreement_pct": 100.0 * float(np.mean(agree)) if len(agree) else float("nan"),
        "n_disagree": int((~agree).sum()),
        "disagreements": disagreements,
    }


def micro_check(model: bytes, X: np.ndarray, rr: np.ndarray | None, beats_from: str = "",
                reference: np.ndarray | None = None) -> dict:
    """:func:`find_arena_size` then :func:`micro_parity`; ``{"skipped": reason}`` without tflite-micro.

    ``reference``: LiteRT's raw outputs for the same windows when already computed.
    """
    try:
        micro_runtime()
    except EdgeEcgError as exc:
        return {"skipped": str(exc)}
    meta = read_metadata(model)
    probe = _inputs_by_index(meta, X[0], None if rr is None else rr[0])
    arena = find_arena_size(model, probe)
    result = micro_parity(model, X, rr, arena, reference)
    result["beats_from"] = beats_from
    return result
