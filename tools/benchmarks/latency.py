"""Inference latency of the shipped model in every form, on this machine, in one run.

What most ECG repositories ship (a Keras model and ``model.predict`` on one window) is the
baseline; beside it the same network as TFLite float32, float16 and int8 in LiteRT, int8 in
tflite-runtime (in its own virtual environment, when pip can install it), and int8 in the
TFLite-Micro interpreter, with 1 and 2 threads. Every interpreter is timed the same way:
set the inputs, invoke, read the output, for one real DS2 beat at a time. Ratios to the
Keras baseline make the comparison hold on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

NAME = "latency"
TITLE = "Latency and throughput"

#: Standalone timing script run inside the tflite-runtime venv (which has no edge_ecg).
_TFLITE_RUNTIME_SCRIPT = r"""
import json, sys, time
import numpy as np
from tflite_runtime.interpreter import Interpreter
path, runs, threads, inputs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
it = Interpreter(model_path=path, num_threads=threads)
it.allocate_tensors()
details = it.get_input_details()
feed = [(details[d["position"]]["index"], np.array(d["data"], dtype=d["dtype"]).reshape(d["shape"])) for d in inputs]
out = it.get_output_details()[0]["index"]
times = []
for i in range(runs + 10):
    t0 = time.perf_counter()
    for idx, arr in feed:
        it.set_tensor(idx, arr)
    it.invoke()
    it.get_tensor(out)
    if i >= 10:
        times.append((time.perf_counter() - t0) * 1e6)
print(json.dumps({"times_us": times, "output": it.get_tensor(out).tolist()}))
"""


def find_models(ctx) -> tuple[Path, Path]:
    """``(Keras run folder, int8 .tflite)`` of the model shipped in ``models/`` (or ``--model``'s folder)."""
    from benchmarks import shipped_model

    tflite = shipped_model(ctx)
    keras_dirs = [p.parent for p in sorted(tflite.parent.rglob("config.json"))
                  if any(p.parent.glob("*.keras")) or any(p.parent.glob("*.h5"))]
    if not keras_dirs:
        raise SystemExit(f"no Keras model folder (config.json + a .keras/.h5 model) beside {tflite}")
    return keras_dirs[0], tflite


def percentiles(times_us) -> dict:
    t = np.asarray(times_us, dtype=np.float64)
    return {"p50_us": float(np.percentile(t, 50)), "p99_us": float(np.percentile(t, 99)),
            "mean_us": float(t.mean()), "runs": int(len(t))}


def time_calls(fn, runs: int, warmup: int = 10) -> dict:
    """Call ``fn`` ``warmup + runs`` times; percentiles of the last ``runs`` (µs)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return percentiles(times)


def time_side_by_side(calls: dict, runs: int, warmup: int = 10) -> dict:
    """Time several callables call by call in turn (a, b, a, b, ...), so that load on the machine
    falls on all of them alike; percentiles (µs) per name."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict = {name: [] for name in calls}
    for _ in range(runs):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e6)
    return {name: {**percentiles(t), "times_us": t} for name, t in times.items()}


def median_ratio_interval(a_us, b_us, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % bootstrap interval of ``median(a) / median(b)`` (each sample resampled on its own)."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a_us), np.asarray(b_us)
    ratios = [np.median(rng.choice(a, a.size)) / np.median(rng.choice(b, b.size)) for _ in range(resamples)]
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def _litert_call(model_bytes: bytes, threads: int, beat: np.ndarray, rr: np.ndarray):
    from edge_ecg.runtime.interpreter import TFLiteClassifier

    clf = TFLiteClassifier(model_bytes, threads=threads, runtime="ai_edge_litert")
    feed = clf.quantize_inputs(beat, rr)
    return lambda: clf.invoke_raw(feed), clf


def positional_inputs(clf, beat, rr) -> list[tuple[int, np.ndarray]]:
    """``[(input position, model-ready array)]`` for one beat, as every interpreter takes them."""
    return [(clf.input_info(role).index, np.asarray(arr)) for role, arr in clf.quantize_inputs(beat, rr).items()]


def _tflite_runtime(ctx, path: Path, threads: int, clf, beat, rr, runs: int) -> dict:
    """Time int8 in tflite-runtime inside its own venv (created once under the scratch folder)."""
    venv = ctx.out_dir / "_venvs" / "tflite-runtime"
    py = venv / "bin" / "python"
    if not py.exists():
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", "tflite-runtime", "numpy<2"],
                             capture_output=True, text=True)
        if res.returncode != 0:
            return {"error": f"pip could not install tflite-runtime: {res.stderr.strip().splitlines()[-1:]}"}
    inputs = [{"position": pos, "dtype": str(arr.dtype), "shape": list(arr.shape), "data": arr.ravel().tolist()}
              for pos, arr in positional_inputs(clf, beat, rr)]
    res = subprocess.run([str(py), "-c", _TFLITE_RUNTIME_SCRIPT, str(path), str(runs), str(threads), json.dumps(inputs)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    data = json.loads(res.stdout)
    version = subprocess.run([str(py), "-c", "import importlib.metadata as m; print(m.version('tflite-runtime'))"],
                             capture_output=True, text=True).stdout.strip()
    return {**percentiles(data["times_us"]), "version": version}


def _micro(model_bytes: bytes, clf, beat, rr, runs: int) -> dict:
    from edge_ecg.export.micro import find_arena_size, make_micro_interpreter, micro_version

    probe = positional_inputs(clf, beat, rr)
    arena = find_arena_size(model_bytes, probe)
    interp = make_micro_interpreter(model_bytes, arena)

    def call():
        for i, data in probe:
            interp.set_input(data, i)
        interp.invoke()
        interp.get_output(0)

    return {**time_calls(call, runs), "arena_bytes": int(arena), "version": micro_version()}


def _own_inputs(ctx, model: bytes, record: str = "100", index: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """The same DS2 beat as a model's own inputs ``(beat (L,), rr (F,))``: its window and RR
    features from its metadata (models side by side need not share them)."""
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.runtime.metadata import read_metadata

    beats = build_beatset(ctx.mitdb, (record,), read_metadata(model).window, progress=False)
    return beats.X[index], beats.rr[index]


def run(ctx) -> dict:
    from benchmarks import ds1_only_model, model_label, previous_model
    from edge_ecg.beats.dataset import build_beatset
    from edge_ecg.export.convert import convert_model, load_source_model
    from edge_ecg.export.report import describe_model
    from edge_ecg.tfcompat import load_tf

    tf, _ = load_tf()
    runs = 50 if ctx.quick else 500
    run_dir, int8_path = find_models(ctx)
    source = load_source_model(run_dir)
    window = source.window
    ds2 = build_beatset(ctx.mitdb, ("100",), window, progress=False)
    beat, rr = ds2.X[100], ds2.rr[100]
    model = source.model
    uses_rr = len(model.inputs) > 1
    keras_in = {"beat": beat[None, :, None], **({"rr": rr[None, :]} if uses_rr else {})}

    rows = {}
    rows["keras_predict"] = {**time_calls(lambda: model.predict(keras_in, verbose=0), max(20, runs // 5)),
                             "label": "tf-keras `model.predict` (one window)", "threads": "TF default"}
    rows["keras_call"] = {**time_calls(lambda: model(keras_in, training=False), runs),
                          "label": "tf-keras `model(x)` (one window)", "threads": "TF default"}
    forms = {"float32": convert_model(model, window, "float32").tflite,
             "float16": convert_model(model, window, "float16").tflite,
             "int8": int8_path.read_bytes()}
    int8_clf = None
    for form, data in forms.items():
        for threads in (1, 2):
            call, clf = _litert_call(data, threads, beat, rr)
            rows[f"litert_{form}_t{threads}"] = {**time_calls(call, runs), "label": f"LiteRT {form}",
                                                 "threads": threads, "size_bytes": len(data)}
            if form == "int8" and threads == 1:
                int8_clf = clf
    for threads in (1, 2):
        # its own venv is a PyPI download: not in --quick runs (the test suite)
        measured = ({"error": "skipped in --quick runs"} if ctx.quick
                    else _tflite_runtime(ctx, int8_path, threads, int8_clf, beat, rr, runs))
        rows[f"tflite_runtime_int8_t{threads}"] = {**measured, "label": "tflite-runtime int8", "threads": threads}
    try:
        rows["micro_int8"] = {**_micro(forms["int8"], int8_clf, beat, rr, runs), "label": "TFLite-Micro int8 (host)",
                              "threads": 1}
    except Exception as exc:  # report, don't hide
        rows["micro_int8"] = {"error": str(exc).splitlines()[0], "label": "TFLite-Micro int8 (host)", "threads": 1}
    # the shipped model against the models kept beside it (the one it replaced, the DS1-only one):
    # LiteRT int8, one thread, call by call in turn
    side = {}
    kept = {key: path for key, path in (("previous", previous_model(ctx)), ("ds1_only", ds1_only_model(ctx)))
            if path is not None}
    if kept:
        files = {"shipped": (int8_path, forms["int8"]), **{k: (p, p.read_bytes()) for k, p in kept.items()}}
        calls = {key: _litert_call(data, 1, *_own_inputs(ctx, data))[0] for key, (_, data) in files.items()}
        timed = time_side_by_side(calls, runs * 4)
        times = {key: timed[key].pop("times_us") for key in timed}
        for key, (path, data) in files.items():
            side[key] = {**timed[key], "model": _rel(path), "trained_on": model_label(path),
                         "macs": describe_model(data)["macs"], "size_bytes": len(data)}
        for key in kept:
            side[f"shipped_over_{key}_p50"] = side["shipped"]["p50_us"] / side[key]["p50_us"]
            side[f"shipped_over_{key}_interval_95"] = list(median_ratio_interval(times["shipped"], times[key]))
    # where one inference goes: every op cut out and timed alone on the values it sees for this beat
    from benchmarks.op_timing import time_ops

    feed = dict(positional_inputs(int8_clf, beat, rr))
    per_op = time_ops(forms["int8"], feed, rounds=10 if ctx.quick else 60)
    desc_int8 = describe_model(forms["int8"])
    counts = desc_int8["ops"]
    per_op["by_type"] = {name: {"us": us, "count": counts.get(name, 0), "macs": desc_int8["macs_by_op"].get(name, 0)}
                         for name, us in per_op["by_type"].items()}
    base = rows["keras_predict"]["p50_us"]
    for r in rows.values():
        if "p50_us" in r:
            r["speedup_vs_keras_predict"] = base / r["p50_us"]
    desc = describe_model(forms["int8"])
    return {"model": str(int8_path), "keras": str(run_dir), "macs": desc["macs"], "rows": rows,
            "int8_size_bytes": len(forms["int8"]), "runs": runs, "side_by_side": side, "per_op": per_op}


def _rel(path: Path) -> str:
    from benchmarks import ROOT

    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)



def _ratio(x: float) -> str:
    return f"{x:.1f}x" if x < 10 else f"{x:.0f}x"


def render(result: dict) -> str:
    lines = [
        f"One DS2 beat per call, {result['runs']} timed calls after 10 warm-up calls. Model "
        f"`{Path(result['model']).name}`, {result['macs']:,} MACs per inference.",
        "",
        "| runtime | threads | p50 µs | p99 µs | vs Keras predict | size (bytes) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = result["rows"]
    order = ["keras_predict", "keras_call"] + [f"litert_{f}_t{t}" for f in ("float32", "float16", "int8") for t in (1, 2)]
    order += ["tflite_runtime_int8_t1", "tflite_runtime_int8_t2", "micro_int8"]
    for key in order + sorted(set(rows) - set(order)):
        r = rows.get(key)
        if r is None:
            continue
        if "error" in r:
            lines.append(f"| {r['label']} | {r['threads']} | - | - | not run: {r['error']} | |")
            continue
        extra = f" (arena {r['arena_bytes']:,} B)" if "arena_bytes" in r else ""
        lines.append(f"| {r['label']}{extra} | {r['threads']} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                     f"{_ratio(r['speedup_vs_keras_predict'])} | {r.get('size_bytes', '')} |")
    side = result.get("side_by_side") or {}
    if side:
        names = {"shipped": "shipped", "previous": "previously shipped", "ds1_only": "DS1-only"}
        lines += ["", "The shipped model against the models kept beside it, LiteRT int8, one thread, timed call by call "
                  f"in turn ({side['shipped']['runs']} calls each; issue 28's target: the shipped p50 <= 0.25x the "
                  "previously shipped model's, stretch 0.15x):", "",
                  "| model | file | trained on | MACs | size (bytes) | p50 µs | p99 µs | shipped / this, p50 (95 % interval) |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for key in [k for k in names if k in side]:
            r = side[key]
            ratio = ("" if key == "shipped" else f"{side[f'shipped_over_{key}_p50']:.3f} "
                     f"({side[f'shipped_over_{key}_interval_95'][0]:.3f}-{side[f'shipped_over_{key}_interval_95'][1]:.3f})")
            lines.append(f"| {names[key]} | `{r['model']}` | {r['trained_on']} | {r['macs']:,} | {r['size_bytes']:,} | "
                         f"{r['p50_us']:.0f} | {r['p99_us']:.0f} | {ratio} |")
        if "previous" in side:
            lo, hi = side["shipped_over_previous_interval_95"]
            lines.append(f"\nShipped p50 / previously shipped p50 = {side['shipped_over_previous_p50']:.3f} (95 % bootstrap "
                         f"interval {lo:.3f}-{hi:.3f}): target <= 0.25 {'met' if hi <= 0.25 else '**not met**'}, "
                         f"stretch <= 0.15 {'met' if hi <= 0.15 else 'not met'} (met when the whole interval is below).")
    per_op = result.get("per_op")
    if per_op:
        total = per_op["sum_us"]
        lines += ["", "Where one int8 inference goes (LiteRT, one thread): each op cut out into a one-op model and "
                  f"timed alone on the values it sees for this beat, median of {per_op['rounds']} blocks of "
                  f"{per_op['calls']} calls, all in turn with the full model "
                  f"(`tools/benchmarks/op_timing.py`). Sum over ops {total:.0f} µs; the full model's invoke "
                  f"{per_op['full_us']:.0f} µs in the same rounds.", "",
                  "| op type | ops | MACs | µs | share of time |", "|---|---:|---:|---:|---:|"]
        for name, r in sorted(per_op["by_type"].items(), key=lambda kv: -kv[1]["us"]):
            lines.append(f"| {name} | {r['count']} | {r['macs']:,} | {r['us']:.1f} | {100 * r['us'] / total:.1f} % |")
    return "\n".join(lines)


def headline(result: dict) -> list[tuple[str, str, str]]:
    """README row: one int8 inference in LiteRT against the Keras baseline."""
    r = result["rows"]["litert_int8_t1"]
    k = result["rows"]["keras_predict"]
    rows = [("one beat, int8 in LiteRT (1 thread), p50", f"{r['p50_us']:.0f} µs ({_ratio(r['speedup_vs_keras_predict'])} "
             f"faster than Keras `predict`, {k['p50_us'] / 1000:.0f} ms)", "")]
    side = result.get("side_by_side") or {}
    if "previous" in side:
        lo, hi = side["shipped_over_previous_interval_95"]
        rows.append(("the same side by side with the previously shipped model, p50 (shipped / previous)",
                     f"{side['shipped']['p50_us']:.0f} / {side['previous']['p50_us']:.0f} µs "
                     f"({side['shipped_over_previous_p50']:.3f}x, 95 % interval {lo:.3f}-{hi:.3f})",
                     "<= 0.25x (stretch 0.15x)"))
    return rows
