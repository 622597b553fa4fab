"""``edge-ecg convert``: a trained model -> a self-describing .tflite (+ Edge TPU, C array)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edge_ecg.cli._options import (data_option, deprecated_model_argument, json_option, merge_model, model_option,
                                   quiet_option)


@click.command(context_settings={"max_content_width": 100})
@model_option()
@deprecated_model_argument("convert")
@click.option("--int8", "mode", flag_value="int8", default=True,
              help="Full-integer model: int8 weights, activations, input and output (default).")
@click.option("--float16", "mode", flag_value="float16", help="float16 weights, float32 input/output.")
@click.option("--float32", "mode", flag_value="float32", help="Plain float32 model.")
@click.option("--edgetpu", is_flag=True,
              help="Also compile the int8 model with edgetpu_compiler (when on PATH) into <out>_edgetpu.tflite.")
@click.option("--c-array", "c_array", is_flag=True,
              help="Also write <out>.c and <out>.h: the model as a 16-byte-aligned const array for TFLite Micro.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .tflite [default: <run>/model_<mode>.tflite, or <model>_<mode>.tflite beside a file].")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Run configuration (JSON/TOML) giving the window; default: the run folder's config.json.")
@data_option
@click.option("--calibration", type=click.IntRange(min=1), default=1000, show_default=True, metavar="N",
              help="DS1 beats (stratified by class) used to calibrate the int8 ranges.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Score the Keras and the converted model on all DS2 beats (skipped without data).")
@click.option("--micro/--no-micro", default=True, show_default=True,
              help="int8: find the smallest tflite-micro arena and check parity with LiteRT.")
@click.option("--micro-beats", type=click.IntRange(min=0), default=2000, show_default=True, metavar="N",
              help="Windows (stratified by class) run through tflite-micro; 0 = every DS2 beat.")
@click.option("--float-source", is_flag=True, help="For a run folder: convert model.keras, not the QAT model.")
@click.option("--quantizer", type=click.Choice(["legacy", "mlir"]), default="legacy", show_default=True,
              help="TFLite int8 quantizer. legacy requantizes the LSTM output before it joins the RR features; "
                   "mlir forces them onto one scale (coarser LSTM state).")
@click.option("--strict", is_flag=True,
              help="Exit non-zero when int8 agrees with the float model on < 99.5 % of DS2 beats or loses > 0.5 "
                   "points of macro-F1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the calibration and tflite-micro samples.")
@json_option
@quiet_option
def convert(model, old_model, mode, edgetpu, c_array, out, config_file, data, calibration, compare, micro, micro_beats,
            float_source, quantizer, strict, seed, as_json, quiet):
    """Convert a trained model (--model: a training run folder or a .keras/.h5 file) to a .tflite.

    The .tflite carries its own description (sampling rate, window layout, classes,
    normalisation, RR-feature definitions, input/output quantisation, toolkit version), so
    `edge-ecg stream` and `edge-ecg evaluate` need nothing but the file.

    --int8 converts with a fixed batch of one (the LSTM becomes the fused
    UNIDIRECTIONAL_SEQUENCE_LSTM op), calibrated on DS1 windows; a float op left behind
    is an error that names it. A run folder's QAT model (model_qat.keras or .h5) is
    preferred; a model still wrapped for QAT is converted from its trained weights
    without the fake-quantisation wrappers, calibrated the same way.

    The report gives size (bytes), op counts, MACs per inference, input/output scale and
    zero point, then the float Keras model vs the converted one on DS2: label agreement
    (%), AAMI Se/+P/F1 per class of both, macro-F1 drop (percentage points; for a QAT
    source also the QAT model's agreement), and for int8 the smallest tflite-micro arena
    (bytes) with the largest output difference from LiteRT (int8 steps). The report is
    also written as <out>.json.

    \b
    Examples:
      edge-ecg convert --model runs/a                       # runs/a/model_int8.tflite
      edge-ecg convert --model runs/a --edgetpu --c-array --strict
      edge-ecg convert --model runs/a --float32 --out models/ecg_f32.tflite --no-compare
      edge-ecg convert --model model.keras --config run.json --json > report.json
    """
    model = merge_model(model, old_model)
    if model is None:
        raise click.UsageError("give the model to convert: --model PATH (a run folder or a .keras/.h5 file)")
    from edge_ecg.export.pipeline import run_convert
    from edge_ecg.export.report import render_text

    def echo(msg: str) -> None:
        if not quiet:
            click.echo(msg, err=True)

    if out is not None:
        from edge_ecg.outputs import prepare_output

        prepare_output(out, "--out")  # its folder is made now, not after the conversion
    result = run_convert(
        model, mode=mode, out=out, config=config_file, data=data, calibration=calibration, compare=compare,
        micro=micro, micro_beats=micro_beats, edgetpu=edgetpu, c_array=c_array, seed=seed,
        prefer="float" if float_source else "qat", quantizer=quantizer, progress=not quiet, echo=echo,
    )
    click.echo(json.dumps(result, indent=2, default=str) if as_json else render_text(result))
    cmp = result.get("comparison") or {}
    if strict and mode == "int8" and not cmp.get("skipped") and not cmp.get("pass", True):
        raise click.ClickException(
            f"int8 model misses the acceptance: agreement {cmp['agreement_pct']:.2f} % (need >= "
            f"{cmp['thresholds']['min_agreement_pct']}), macro-F1 drop {cmp['macro_f1_drop_points']:.2f} points "
            f"(allowed {cmp['thresholds']['max_f1_drop_points']})"
        )
