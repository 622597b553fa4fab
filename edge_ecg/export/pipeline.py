"""``edge-ecg convert`` as one function: load, convert, check, compare, compile, report.

:func:`run_convert` does every step the command line asks for and returns the report as
a JSON-able dict (:func:`edge_ecg.export.report.render_text` prints it). Steps that need
something absent (MIT-BIH data, tflite-micro, edgetpu_compiler) are skipped with a note.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from edge_ecg.errors import ConfigError, DataError, EdgeEcgError
from edge_ecg.export.convert import (
    DEFAULT_CALIBRATION,
    ConvertedModel,
    SourceModel,
    convert_source,
    load_source_model,
    representative_from_db,
    stratified_indices,
)
from edge_ecg.export.report import compare_predictions, describe_model

log = logging.getLogger(__name__)

#: DS2 beats run through TFLite-Micro by default (its reference kernels are slow in Python).
DEFAULT_MICRO_BEATS = 2000


def default_output(source: SourceModel, mode: str) -> Path:
    """``<run>/model_<mode>.tflite`` for a run folder, else ``<stem>_<mode>.tflite`` beside the file."""
    if source.run_dir is not None:
        return source.run_dir / f"model_{mode}.tflite"
    base = source.path if source.path.is_dir() else source.path.with_suffix("")
    return base.parent / f"{base.name}_{mode}.tflite"


def keras_predict(model, X: np.ndarray, rr: np.ndarray | None, batch_size: int = 1024) -> np.ndarray:
    """Keras class probabilities ``(n, 5)`` for windows ``X`` ``(n, L)`` and ``rr`` ``(n, F)``
    (variant (b): sequences ``(n, K, L)`` and ``(n, K, F)``)."""
    inputs = {"beat": np.asarray(X, dtype=np.float32)[..., None]}
    if "rr" in (getattr(model, "input_names", None) or []):
        inputs["rr"] = np.asarray(rr, dtype=np.float32)
    return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float32)


def compare_on_ds2(source: SourceModel, converted: ConvertedModel, db_dir: Path, progress: bool = True,
                   echo: Callable[[str], None] = log.info) -> tuple[dict, dict]:
    """The float Keras model vs the converted model on every DS2 beat.

    The float reference is the Keras model that was converted (a QAT model's float form);
    for a QAT source the agreement with the fake-quantised QAT model (the source itself or
    the run's ``qat_wrapped.h5``) is added as ``qat_model``. Returns ``(comparison, data)``: :func:`compare_predictions`' dict and
    the arrays reused by the TFLite-Micro check (``X``, ``rr``, ``y``, ``raw`` outputs).
    """
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.evaluate import score_predictions
    from edge_ecg.records.aami import DS2
    from edge_ecg.runtime.interpreter import TFLiteClassifier, dequantize

    from edge_ecg.export.report import class_table

    beats = build_beatset(db_dir, DS2, source.window, progress=progress)
    X, rr = beats.X, beats.rr
    if source.sequence_beats:  # variant (b): each beat with the ones before it, within its record
        from edge_ecg.beats.sequence import sequence_index

        seq = sequence_index(beats.record, source.sequence_beats)
        X, rr = X[seq], rr[seq]
    echo(f"DS2: {len(beats)} beats; running the float Keras model")
    reference = keras_predict(converted.float_model or source.model, X, rr)
    clf = TFLiteClassifier(converted.tflite, delegate="none")
    echo(f"DS2: running the {converted.mode} model with {clf.runtime_name}")
    rr = rr if clf.uses_rr else None
    raw = clf.predict_raw_batch(X, rr)
    probs = dequantize(raw, converted.metadata.outputs[0])
    from edge_ecg.records.load import vf_episodes

    excluded = vf_episodes(db_dir, DS2, source.window.fs)
    cmp = compare_predictions(
        reference, probs, beats.y, beats.record, beats.sample, source.window.fs,
        excluded=excluded, names=("float", converted.mode),
    )
    cmp["runtime"] = clf.runtime_name
    qat_model = source.qat_reference() if source.qat else None
    if qat_model is not None:
        echo("DS2: running the QAT Keras model (fake quantisation)")
        qat_probs = keras_predict(qat_model, X, rr)
        report = score_predictions(beats.record, beats.sample, beats.y, qat_probs, source.window.fs, excluded=excluded)
        cmp["qat_model"] = {
            "agreement_with_converted_pct": 100.0 * float(np.mean(qat_probs.argmax(1) == probs.argmax(1))),
            "agreement_with_float_pct": 100.0 * float(np.mean(qat_probs.argmax(1) == reference.argmax(1))),
            **class_table(report),
        }
    return cmp, {"X": X, "rr": rr, "y": beats.y, "raw": raw}


def run_convert(
    model: str | Path,
    mode: str = "int8",
    out: str | Path | None = None,
    config: str | Path | None = None,
    data: str | Path | None = None,
    calibration: int = DEFAULT_CALIBRATION,
    compare: bool = True,
    micro: bool = True,
    micro_beats: int = DEFAULT_MICRO_BEATS,
    edgetpu: bool = False,
    c_array: bool = False,
    seed: int = 0,
    prefer: str = "qat",
    quantizer: str = "legacy",
    progress: bool = True,
    echo: Callable[[str], None] = log.info,
) -> dict:
    """Convert ``model`` (a run folder or Keras file) and check it; return the report dict.

    ``mode``: int8 | float16 | float32 (``edgetpu`` needs int8). ``data``: the MIT-BIH
    folder (calibration draws ``calibration`` DS1 beats, stratified by class; the
    comparison uses all of DS2). ``micro``: run ``micro_beats`` windows (0 = all) through
    TFLite-Micro. ``prefer``: ``qat`` or ``float`` model of a run folder; ``quantizer``:
    ``legacy`` or ``mlir`` (:data:`edge_ecg.export.convert.QUANTIZERS`). Writes ``out`` (default :func:`default_output`), a ``<stem>.json`` report
    beside it, and with ``c_array`` ``<stem>.c``/``.h``.
    """
    from edge_ecg.records.locate import find_database

    if edgetpu and mode != "int8":
        raise ConfigError("--edgetpu needs the int8 model; drop --float16/--float32")
    if calibration < 1:
        raise ConfigError(f"--calibration must be at least 1 beat, got {calibration}")
    notes: list[str] = []
    echo(f"loading {model}")
    source = load_source_model(model, config, prefer)
    if source.qat:
        echo(f"{source.path.name}: quantization-aware model; converting its trained weights with calibration")
    db_dir: Path | None = None
    try:
        db_dir = find_database("mitdb", data)
    except DataError as exc:
        if mode == "int8":
            raise DataError(f"int8 calibration needs MIT-BIH DS1 windows: {exc}") from None
        notes.append(f"no MIT-BIH data ({exc})")

    representative, calibration_info = None, {}
    if mode == "int8":
        echo(f"calibration: {calibration} DS1 beats, stratified by class")
        X, rr, counts = representative_from_db(db_dir, source.window, calibration, seed, progress,
                                               sequence_beats=source.sequence_beats)
        representative = (X, rr)
        calibration_info = {"beats": int(len(X)), "records": "DS1", "class_counts": counts, "seed": seed}
    echo(f"converting to {mode}")
    converted = convert_source(source, mode, representative, calibration_info, quantizer=quantizer)
    out_path = converted.save(Path(out) if out else default_output(source, mode))

    result: dict = {
        "source": str(source.path), "output": str(out_path), "mode": mode, "qat": source.qat,
        "window": json.loads(json.dumps(converted.metadata.to_dict()["window"])),
        "window_from": source.window_source, "calibration": calibration_info,
        "model": describe_model(converted.tflite),
    }
    result["model"].pop("metadata", None)

    ds2 = None
    if compare and db_dir is not None:
        cmp, ds2 = compare_on_ds2(source, converted, db_dir, progress, echo)
        result["comparison"] = cmp
    elif compare:
        result["comparison"] = {"skipped": "no MIT-BIH data for DS2"}
    else:
        result["comparison"] = {"skipped": "--no-compare"}

    if micro and mode == "int8":
        result["micro"] = _micro_step(converted, ds2, representative, micro_beats, seed, echo)

    if edgetpu:
        result["edgetpu"] = _edgetpu_step(out_path, converted, echo)
    if c_array:
        arena = (result.get("micro") or {}).get("arena_bytes")
        from edge_ecg.export.c_array import write_c_array

        paths = write_c_array(converted.tflite, out_path.with_suffix(".c"), metadata=converted.metadata,
                              arena_bytes=arena)
        result["c_array"] = [str(p) for p in paths]
    result["notes"] = notes
    report_path = out_path.with_suffix(".json")
    try:
        report_path.write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
        result["report"] = str(report_path)
    except OSError as exc:
        notes.append(f"could not write {report_path} ({exc.strerror or exc})")
    return result


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def _micro_step(converted: ConvertedModel, ds2: dict | None, representative, n: int, seed: int, echo) -> dict:
    from edge_ecg.export.micro import micro_check, micro_runtime

    try:
        micro_runtime()
    except EdgeEcgError as exc:
        return {"skipped": str(exc)}
    if ds2 is not None:
        X, rr, y, raw, source = ds2["X"], ds2["rr"], ds2["y"], ds2["raw"], "DS2"
    else:
        X, rr = representative
        y, raw, source = np.zeros(len(X), dtype=np.int64), None, "DS1 calibration"
    idx = np.arange(len(X)) if n <= 0 or n >= len(X) else stratified_indices(y, n, seed)
    echo(f"tflite-micro: arena search and parity on {len(idx)} {source} windows")
    return micro_check(converted.tflite, X[idx], None if rr is None else rr[idx], beats_from=source,
                       reference=None if raw is None else raw[idx])


def _edgetpu_step(out_path: Path, converted: ConvertedModel, echo) -> dict:
    from dataclasses import replace

    from edge_ecg.export.edgetpu import INSTALL_HINT, compile_edgetpu, find_compiler
    from edge_ecg.export.metadata import attach_metadata

    if find_compiler() is None:
        return {"skipped": INSTALL_HINT, "lines": [f"Edge TPU: skipped; {INSTALL_HINT} (the int8 model {out_path} "
                                                   f"is written)"]}
    echo("compiling for the Edge TPU")
    res = compile_edgetpu(out_path)
    compiled = res.model_path.read_bytes()
    res.model_path.write_bytes(attach_metadata(compiled, replace(converted.metadata, edgetpu=True)))
    return {**res.to_dict(), "lines": res.lines()}
