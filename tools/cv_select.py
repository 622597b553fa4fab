"""Choose the shipped configuration by patient-wise cross-validation over all of DS1 (and svdb).

``train`` trains each candidate (``tools/candidates/<name>.json``) once per fold of
:data:`FOLDS` and per seed, with ``edge-ecg train`` in a subprocess, the fold's records held
out for validation (a candidate that trains on svdb also holds out that fold of
:data:`SVDB_FOLDS`); a fold whose ``metrics.json`` exists is skipped, and a fold that was
interrupted continues from its last finished epoch (``edge-ecg train --resume``), so a round
spans sessions. ``score``
scores every fold's QAT model on its held-out records, offline and end to end through the
stream (:func:`edge_ecg.evaluate.end_to_end_scores`), pools them, applies the rule
(:data:`SELECTION_RULE`: :func:`rule_score`, :data:`MARGIN`, :func:`choose`) and writes the
result (``--out``) with the rule's text in it. The choice never reads DS2. Run::

    python tools/cv_select.py train rr_scale5 rr_scale5_rrnoise --runs runs/cv --jobs 2
    python tools/cv_select.py score rr_scale5 rr_scale5_rrnoise --runs runs/cv --ds2 --out tools/results/cv_round1.json

``score --ds2`` adds each candidate's fold-1 model on DS2, offline and end to end, after
the choice has been made. ``--out`` names the result in ``tools/results/``. ``--seeds 0,1,2``
trains and scores each fold with several seeds (a candidate's score is then their mean);
``--svdb`` scores the svdb folds too, pooled with DS1's and each apart. ``score-fold`` scores
the folds that have finished while others still train (each fold's per-record scores are kept
in its run folder, ``held_out_scores.pkl``), so ``score`` then only pools them; ``folds`` prints a
reading of the folds scored so far, per fold, from those kept files (never a verdict).

Every round run so far (what was compared, why, when it was defined and what won) is logged
in the model card, ``models/MODEL_CARD.md``, section "Cross-validation rounds"; the results
are ``tools/results/cv_round*.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from edge_ecg.evaluate.runs import IN_RUN_PREV_RR_RATIO  # round 10's in-run threshold (0.85)

HERE = Path(__file__).resolve().parent
CANDIDATES = HERE / "candidates"
RESULTS = HERE / "results" / "cv_selection.json"  # default --out

#: The selection rule, fixed (and committed) before any candidate was trained under it; written
#: into every result as ``"rule"``. Its numbers are :data:`FOLDS`, :func:`rule_score` and :data:`MARGIN`.
SELECTION_RULE = """Choose the shipped configuration by patient-wise cross-validation over all of DS1.

The rule was fixed (and committed) before any candidate was trained under it:

1. DS1's 22 records are split into the four :data:`FOLDS` below, whole records only. Fold 1
   is the usual validation set (``train.val_records``); the other three spread the records
   rich in S and V beats (209, 201, 207, 223, 208, 119, 203) so that every fold holds some.
2. Each candidate (``tools/candidates/<name>.json``) is trained four times with
   ``edge-ecg train``, with its own seed and schedule, holding out one fold each time as the
   validation records (early stopping reads them too, the same for every candidate).
3. Each fold's quantization-aware model (``model_qat.keras``) is scored on its held-out
   records in two conditions: offline at the reference beat positions, and end to end
   through the stream pipeline with our own QRS detector (what a device does; EC57 beat
   matching). The 22 held-out records are pooled (EC57 gross statistics).
4. A candidate's score is the mean of its two pooled macro-F1 (N, S, V). The highest
   wins; a challenger must beat the first-listed candidate (the baseline) by more than
   ``--margin`` (default 0.005, half a point) to replace it.
5. What ships is the winner's fold-1 run: the same as ``edge-ecg train --config
   tools/candidates/<winner>.json``, since fold 1 is its validation set."""

#: Round 10's rule (issue 28), fixed and committed before any of its candidates trained; the
#: model card's "Cross-validation rounds" has it with the candidates. Computed by
#: :func:`round10_value` from ``score --inrun`` results.
ROUND10_RULE = """Round 10: speed and S beats inside runs (issue 28).

1. Each seed run's four fold models (Keras QAT) are scored on their held-out records, the 62 of
   DS1 + svdb pooled (EC57 gross): offline macro-F1 (N, S, V) at the reference beats, the same
   end to end through the stream with our own detector, and in-run S sensitivity: the share of
   the reference S beats whose prev_rr_ratio (from the reference beats) is below 0.85 that are
   labelled S offline. A seed's score is the mean of the three.
2. A candidate's value is the mean of its seeds' scores minus one third of the sample standard
   deviation of its in-run S sensitivity over the seeds (0 with one seed).
3. Only a candidate whose int8 p50 is at most 0.25x the shipped model's, side by side
   (tools/arch_speed.py, measured before training), may replace the baseline (the first listed,
   the shipped recipe).
4. The eligible candidate of highest value replaces the baseline if its value is higher than the
   baseline's (no margin); between challengers the higher value wins, a tie going to the one
   listed first.
5. What ships is the winner's seed-0 fold-1 run, converted to int8; DS2 chooses nothing."""

#: Round 11's rule (issue 28), fixed and committed before any of its candidates trained: round
#: 10's mechanics unchanged (:func:`round10_value`, :func:`round10_choose`, the speed gate), new
#: challengers and speed file. ``score --round11 tools/results/arch_speed_round11.json``.
ROUND11_RULE = """Round 11: keep V morphology while going five times faster (issue 28).

Round 10's rules 1-5, unchanged, applied to a new set of candidates, seeds 0, 1 and 2 each, on
round 8's folds of DS1 + the 40 svdb records:
- the baseline (listed first, always eligible) is round 10's choice (tools/results/cv_round10.json);
- fast_wide_rr: the shipped 1.5 + 1.0 s window, pooling 4 after each convolution (7 LSTM steps),
  LSTM 24, RR inputs pre_rr_ratio, prev_rr_ratio, pre_rr_long_ratio, pre_rr, rr_irregularity_median;
- fast_mid_rr: a 0.7 + 0.8 s window, pooling 3 (10 steps), LSTM 24, the same RR inputs.
The speed gate (0.25x the shipped int8 p50) reads tools/results/arch_speed_round11.json, measured
before any round-11 training. DS2 chooses nothing."""

#: Round 12's rule (issue 28), fixed and committed before any of its new candidates trained:
#: round 10's mechanics unchanged, one new challenger that trains on S beats inside runs, and
#: speed read from round 11's measurement of the same network. ``score --round12 SPEED_JSON``.
ROUND12_RULE = """Round 12: teach the fast network S beats inside runs (issue 28).

Round 10's rules 1-5, unchanged, applied to these candidates, seeds 0, 1 and 2 each, on round 8's
folds of DS1 + the 40 svdb records:
- the baseline (listed first, always eligible) is round 11's choice (tools/results/cv_round11.json);
- fast_wide_rr: round 11's candidate, its round-11 fold runs reused (training without the two
  settings below is unchanged, bit for bit);
- wide_runs: fast_wide_rr's network, window and RR inputs, trained with augment.run_prob 0.3 (an N
  or S beat's context before its R peak becomes its last cycle repeated back to the window's start,
  prev_rr_ratio set to pre_rr_ratio: a synthetic run) and train.in_run_weight 4 (S beats inside
  runs, reference prev_rr_ratio < 0.85, drawn four times as often).
The speed gate (0.25x the shipped int8 p50) reads tools/results/arch_speed_round11.json; a candidate
not measured there takes the measurement of the candidate whose model and window sections are
identical to its own (the int8 graph is the same: both settings act in training only). DS2 chooses
nothing."""

#: Round 10: the largest int8 p50 ratio to the shipped model a challenger may have.
ROUND10_SPEED_LIMIT = 0.25

#: How much a challenger's score must exceed the baseline's (the first-listed candidate's) to
#: replace it (a fraction: 0.005 is half a point); ``score --margin`` overrides it.
MARGIN = 0.005

#: DS1 split into four folds of whole records (S and V beats per fold in the comments).
FOLDS: tuple[tuple[str, ...], ...] = (
    ("106", "118", "124", "205", "215", "220"),  # S 227, V 818 (the usual validation records)
    ("209", "119", "101", "112", "230"),  # S 388, V 484
    ("201", "207", "203", "115", "122"),  # S 237, V 852
    ("223", "208", "114", "116", "108", "109"),  # S 91, V 1672
)


#: svdb's 40 records here in four folds of whole patients (round 8), S beats spread evenly:
#: ``patient_folds(records, svdb.patient_of, 4, S beats per record)``, checked by tests/test_cv_select.py.
SVDB_FOLDS: tuple[tuple[str, ...], ...] = (
    ("800", "810", "822", "824", "846", "872", "876", "882", "890"),  # S 1171, V 246
    ("808", "812", "826", "840", "858", "862", "866", "868", "878", "892"),  # S 1173, V 1940
    ("820", "842", "850", "854", "860", "874", "880", "884", "886", "888"),  # S 1171, V 1877
    ("802", "804", "806", "828", "844", "848", "852", "856", "864", "870", "894"),  # S 1165, V 962
)


def uses_svdb(config: dict) -> bool:
    """True when a candidate's configuration trains on svdb (``train.data``)."""
    return any(str(spec).split(":")[0].split("@")[0].rstrip("/").endswith("svdb")
               for spec in config.get("train", {}).get("data", []))


def held_out(k: int, svdb: bool) -> list[str]:
    """Fold ``k``'s held-out record ids: DS1's (bare names) and, with ``svdb``, ``svdb/<record>``."""
    return list(FOLDS[k]) + ([f"svdb/{r}" for r in SVDB_FOLDS[k]] if svdb else [])


def fold_dir(runs: Path, candidate: str, k: int) -> Path:
    return runs / candidate / f"fold{k + 1}"


def split_seed(candidate: str) -> tuple[str, int | None]:
    """``"name@seed2"`` -> ``("name", 2)``; a plain name -> ``(name, None)`` (its own seed)."""
    name, _, seed = candidate.partition("@seed")
    if seed and not seed.isdigit():
        sys.exit(f"Error: {candidate!r}: write a seed variant as <candidate>@seed<N>")
    return name, int(seed) if seed else None


def with_seeds(candidate: str, seeds: list[int]) -> list[str]:
    """The run names of ``candidate`` for ``seeds``: seed 0 is the plain name, others ``@seedN``."""
    return [candidate if s == 0 else f"{candidate}@seed{s}" for s in seeds]


def fold_config(candidate: str, k: int) -> dict:
    """The candidate's configuration with fold ``k`` held out for validation (and, for a
    ``name@seedN`` variant, ``train.seed`` N)."""
    name, seed = split_seed(candidate)
    path = CANDIDATES / f"{name}.json"
    if not path.is_file():
        sys.exit(f"Error: no candidate {name!r} ({path} does not exist)")
    config = json.loads(path.read_text())
    config.setdefault("train", {})["val_records"] = held_out(k, uses_svdb(config))
    if seed is not None:
        config["train"]["seed"] = seed
    return config


def train_fold(candidate: str, k: int, runs: Path, data: Path | None, feed: str | None = None) -> str:
    """Train one fold with ``edge-ecg train --resume`` in a subprocess; returns a one-line outcome.

    An interrupted fold continues from its last finished epoch the next time (``--resume``).
    ``feed`` overrides ``train.feed`` (``memory`` or ``shards``: both make the same draws and
    give the same run; ``memory`` is faster when the beats fit in RAM).
    """
    out = fold_dir(runs, candidate, k)
    if (out / "metrics.json").is_file():
        return f"{candidate} fold {k + 1}: already trained ({out})"
    out.parent.mkdir(parents=True, exist_ok=True)
    cfg_path = out.parent / f"fold{k + 1}.json"
    config = fold_config(candidate, k)
    if feed:
        config["train"]["feed"] = feed
    cfg_path.write_text(json.dumps(config, indent=2) + "\n")
    cmd = [sys.executable, "-m", "edge_ecg", "train", "--config", str(cfg_path), "--out", str(out), "--force",
           "--resume", "--quiet"]
    if data:
        cmd += ["--data", str(data), "--data-root", str(Path(data).parent)]
    t0 = time.perf_counter()
    with open(out.parent / f"fold{k + 1}.log", "a") as log:  # a resumed fold's log goes on
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONHASHSEED="0"))
    if proc.returncode:
        return f"{candidate} fold {k + 1}: FAILED (exit {proc.returncode}; see {out.parent / f'fold{k + 1}.log'})"
    return f"{candidate} fold {k + 1}: trained in {time.perf_counter() - t0:.0f} s"


def score_candidate(candidate: str, runs: Path, mitdb: Path, svdb: bool = False) -> dict:
    """Pooled EC57 scores of the candidate's four held-out folds, offline and end to end
    (with ``svdb``, round 8: each fold's svdb records too, and the two databases apart).

    Kept in ``<runs>/<candidate>/cv_score[_svdb].json`` and reused while no fold run is newer.
    """
    cached = runs / candidate / ("cv_score_svdb.json" if svdb else "cv_score.json")
    folds = [fold_dir(runs, candidate, k) / "metrics.json" for k in range(len(FOLDS))]
    if cached.is_file() and all(f.is_file() and f.stat().st_mtime < cached.stat().st_mtime for f in folds):
        return json.loads(cached.read_text())
    result = _score_folds(candidate, runs, mitdb, svdb)
    cached.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _score_folds(candidate: str, runs: Path, mitdb: Path, svdb: bool = False) -> dict:
    stream, offline = [], []
    for k in range(len(FOLDS)):
        run = fold_dir(runs, candidate, k)
        if not (run / "metrics.json").is_file():
            sys.exit(f"Error: {run} is not a finished training run; run `cv_select.py train {candidate}` first")
        s, o = fold_scores(run, mitdb, held_out(k, svdb))
        stream += s
        offline += o
    result = _summary(offline, stream)
    if svdb:
        def part(is_svdb):
            keep = [i for i, r in enumerate(offline) if str(r.name).startswith("svdb/") == is_svdb]
            return _summary([offline[i] for i in keep], [stream[i] for i in keep])

        result["ds1_only"], result["svdb_only"] = part(False), part(True)
    return result


def fold_scores(run: Path, mitdb: Path, records) -> tuple[list, list]:
    """:func:`_end_to_end` of one fold run, kept in ``<run>/held_out_scores.pkl`` (with the
    records it scored) and reused while the run's ``metrics.json`` is not newer: a round's
    finished folds can be scored while others still train (``score-fold``)."""
    import pickle

    cache = run / "held_out_scores.pkl"
    saved = _kept_scores(run, records)
    if saved is not None:
        return saved["stream"], saved["offline"]
    stream, offline = _end_to_end(run, mitdb, records)
    tmp = cache.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps({"records": list(records), "stream": stream, "offline": offline,
                                  "metrics_sha256": _metrics_hash(run)}))
    tmp.replace(cache)
    return stream, offline


def _metrics_hash(run: Path) -> str:
    """SHA-256 of a fold run's ``metrics.json``: what a kept score belongs to."""
    import hashlib

    return hashlib.sha256((run / "metrics.json").read_bytes()).hexdigest()


def _kept(cache: Path, run: Path, records, load):
    """A kept score of ``run`` for ``records`` (``load()`` reads ``cache``), or None. It names the run's
    ``metrics.json`` by hash (so it survives a git checkout, which sets file times anew); one kept
    before hashes counts while it is newer than ``metrics.json``."""
    if not cache.is_file():
        return None
    saved = load()
    if "metrics_sha256" in saved:
        fresh = saved["metrics_sha256"] == _metrics_hash(run)
    else:
        fresh = cache.stat().st_mtime > (run / "metrics.json").stat().st_mtime
    return saved if fresh and saved["records"] == list(records) else None


def _kept_scores(run: Path, records) -> dict | None:
    """:func:`fold_scores`' kept file of ``run`` for ``records`` (``stream``, ``offline``), or None."""
    import pickle

    cache = run / "held_out_scores.pkl"
    return _kept(cache, run, records, lambda: pickle.loads(cache.read_bytes()))


def _kept_in_run(run: Path, records) -> dict | None:
    """:func:`fold_in_run`'s kept file of ``run`` for ``records`` (``counts``), or None."""
    cache = run / "held_out_inrun.json"
    return _kept(cache, run, records, lambda: json.loads(cache.read_text()))


def fold_in_run(run: Path, mitdb: Path, records) -> dict:
    """Round 10: per held-out record, its S beats in runs labelled S offline by ``run``'s QAT model
    (:func:`edge_ecg.evaluate.in_run_scores`), kept in ``<run>/held_out_inrun.json`` and reused
    while the run's ``metrics.json`` is not newer."""
    cache = run / "held_out_inrun.json"
    saved = _kept_in_run(run, records)
    if saved is not None:
        return saved["counts"]
    counts = _in_run(run, mitdb, records)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"records": list(records), "counts": counts, "metrics_sha256": _metrics_hash(run)},
                              indent=1) + "\n")
    tmp.replace(cache)
    return counts


def in_run_summary(candidate: str, runs: Path, mitdb: Path, svdb: bool) -> dict:
    """Round 10: the candidate's held-out S beats (every fold pooled) in runs, alone and by run length:
    ``{kind: {"n", "labelled_s", "se"}}``."""
    from edge_ecg.evaluate.runs import add_counts, sensitivity

    per_record = {}
    for k in range(len(FOLDS)):
        per_record.update(fold_in_run(fold_dir(runs, candidate, k), mitdb, held_out(k, svdb)))
    total = add_counts(list(per_record.values()))
    return {kind: {"n": n, "labelled_s": s, "se": sensitivity((n, s))} for kind, (n, s) in total.items()}


def round10_value(seed_scores: list[float], in_run_se: list[float]) -> float:
    """Round 10's value of a candidate (rule 2): the mean of its seeds' scores minus a third of the
    sample standard deviation of its in-run S sensitivity over the seeds (0 with one seed)."""
    import statistics

    spread = statistics.stdev(in_run_se) if len(in_run_se) > 1 else 0.0
    return sum(seed_scores) / len(seed_scores) - spread / 3.0


def same_network(candidate: str, speed: dict) -> str | None:
    """The entry of a speed file's ``models`` that times ``candidate``'s network: its own, else
    that of a measured candidate whose ``model`` and ``window`` sections are identical (the same
    int8 graph: augmentation and sampling settings act in training only; round 12); None if none."""
    if candidate in speed:
        return candidate
    mine = json.loads((CANDIDATES / f"{candidate}.json").read_text())
    for name in speed:
        path = CANDIDATES / f"{name}.json"
        if path.is_file():
            other = json.loads(path.read_text())
            if all(other.get(k) == mine.get(k) for k in ("model", "window")):
                return name
    return None


def round10_choose(values: list[float], eligible: list[bool]) -> int:
    """Round 10's winner (rules 3-4): index 0 (the baseline) unless an eligible challenger's value
    is higher; among challengers the highest value, a tie to the one listed first."""
    best = 0
    for i in range(1, len(values)):
        if eligible[i] and values[i] > values[best]:
            best = i
    return best


def trained_seeds(candidate: str, runs: Path, seeds: list[int]) -> list[int]:
    """Those of ``seeds`` whose four fold runs of ``candidate`` have finished."""
    return [sd for sd, name in zip(seeds, with_seeds(candidate, seeds))
            if all((fold_dir(runs, name, k) / "metrics.json").is_file() for k in range(len(FOLDS)))]


def score_round10(candidates: list[str], runs: Path, mitdb: Path, seeds: list[int], speed_file: Path,
                  rule: str = ROUND10_RULE) -> dict:
    """Round 10 (:data:`ROUND10_RULE`; round 11 applies the same with :data:`ROUND11_RULE`): every
    candidate's trained seeds scored with the in-run line, its value, eligibility by speed
    (``speed_file``: ``tools/arch_speed.py --out``) and the choice, with ``rule``'s text."""
    speed = json.loads(speed_file.read_text())["models"]
    results = []
    for i, c in enumerate(candidates):
        done = trained_seeds(c, runs, seeds)
        if not done:
            sys.exit(f"Error: {c} has no seed with all {len(FOLDS)} folds trained in {runs}")
        per_seed = {}
        for sd, name in zip(done, with_seeds(c, done)):
            summary = score_candidate(name, runs, mitdb, svdb=True)
            in_run = in_run_summary(name, runs, mitdb, svdb=True)
            se = in_run["in_run"]["se"]
            per_seed[str(sd)] = {**summary, "in_run": in_run, "seed_score": (
                summary["offline"]["macro_f1"] + summary["stream"]["macro_f1"] + se) / 3.0}
        scores = [x["seed_score"] for x in per_seed.values()]
        ses = [x["in_run"]["in_run"]["se"] for x in per_seed.values()]
        measured = same_network(c, speed)
        ratio = speed[measured]["ratio_p50"] if measured else None
        results.append({"candidate": c, "seeds_scored": done, "value": round10_value(scores, ses),
                        "mean_score": sum(scores) / len(scores), "in_run_se": ses, "speed_ratio_p50": ratio,
                        "speed_measured_as": measured,
                        "eligible": i == 0 or (ratio is not None and ratio <= ROUND10_SPEED_LIMIT),
                        "seeds": per_seed})
    winner = round10_choose([r["value"] for r in results], [r["eligible"] for r in results])
    return {"rule": rule, "folds": [list(f) for f in FOLDS], "svdb_folds": [list(f) for f in SVDB_FOLDS],
            "in_run_prev_rr_ratio": IN_RUN_PREV_RR_RATIO, "speed_limit": ROUND10_SPEED_LIMIT,
            "speed_file": str(speed_file), "candidates": results, "chosen": results[winner]["candidate"]}


def _print_round10(result: dict) -> None:
    for r in result["candidates"]:
        ses = ", ".join(f"{100 * x:.1f}" for x in r["in_run_se"])
        speed = f"{r['speed_ratio_p50']:.3f}x" if r["speed_ratio_p50"] is not None else "1x (incumbent)"
        if r.get("speed_measured_as") not in (None, r["candidate"]):
            speed += f" (as {r['speed_measured_as']}: same network)"
        print(f"{r['candidate']:<16} value {100 * r['value']:.2f}  mean score {100 * r['mean_score']:.2f}  "
              f"in-run S Se {ses} (seeds {r['seeds_scored']})  speed {speed}  "
              f"{'eligible' if r['eligible'] else 'NOT eligible (too slow)'}", flush=True)
        for sd, x in r["seeds"].items():
            print(f"    seed {sd}: {_figures(x, 'S F1', 'V F1')}; in-run S Se {100 * x['in_run']['in_run']['se']:.1f} "
                  f"of {x['in_run']['in_run']['n']}", flush=True)
    print(f"chosen: {result['chosen']}")


def _keras_classifier(run: Path):
    from edge_ecg.config import load_config
    from edge_ecg.model.predict import KerasClassifier
    from edge_ecg.model.run import load_keras_model

    model = run / "model_qat.keras"
    return KerasClassifier(load_keras_model(model), load_config(run / "config.json"), model)


def _in_run(run: Path, mitdb: Path, records) -> dict:
    """Per-record in-run S counts (:func:`edge_ecg.evaluate.in_run_scores`) of ``run``'s QAT model."""
    from edge_ecg.evaluate import in_run_scores

    return in_run_scores(_keras_classifier(run), mitdb, records)


def _end_to_end(run: Path, mitdb: Path, records) -> tuple[list, list]:
    """Per-record EC57 scores ``(stream, offline)`` of ``run``'s QAT model on ``records``."""
    from edge_ecg.evaluate import end_to_end_scores

    scores = end_to_end_scores(_keras_classifier(run), mitdb, records)
    return scores["stream"], scores["offline"]


def rule_score(summary: dict) -> float:
    """The rule's score of pooled figures (:func:`edge_ecg.evaluate.summarise_scores`): the mean
    of the offline and the end-to-end macro-F1 over N, S and V (a fraction)."""
    return (summary["offline"]["macro_f1"] + summary["stream"]["macro_f1"]) / 2.0


def _summary(offline: list, stream: list) -> dict:
    """Pooled (EC57 gross) figures of per-record scores, and the rule's score."""
    from edge_ecg.evaluate import summarise_scores

    summary = summarise_scores(offline, stream)
    return {**summary, "score": rule_score(summary)}


def choose(scores: list[float], margin: float) -> int:
    """Index of the winner: the best score, unless it beats the baseline (index 0) by <= margin."""
    best = max(range(len(scores)), key=lambda i: scores[i])
    if best != 0 and scores[best] - scores[0] <= margin:
        return 0
    return best


def ds2_after_choice(candidate: str, runs: Path, mitdb: Path) -> dict:
    """The candidate's fold-1 (shippable) QAT model on DS2, offline and end to end."""
    from edge_ecg.records.aami import DS2

    stream, offline = _end_to_end(fold_dir(runs, candidate, 0), mitdb, DS2)
    return _summary(offline, stream)


def _figures(summary: dict, s_name: str, v_name: str) -> str:
    """One line of a :func:`_summary`: macro-F1, then S and V F1, offline / stream (%)."""
    o, s = summary["offline"], summary["stream"]
    return (f"offline macro-F1 {100 * o['macro_f1']:.2f}, stream {100 * s['macro_f1']:.2f}; "
            f"{s_name} {100 * o['S_f1']:.1f} / {100 * s['S_f1']:.1f}, {v_name} {100 * o['V_f1']:.1f} / "
            f"{100 * s['V_f1']:.1f}")


def fold_reading(run: Path, records) -> dict | None:
    """A finished fold's kept scores (``score-fold``) pooled over its held-out ``records``: offline
    and stream figures (:func:`_summary`) and its in-run S beats (``[n, labelled S]``), or None
    while the fold is not trained or not scored. Reads only kept files: scores nothing."""
    from edge_ecg.evaluate.runs import add_counts

    if not (run / "metrics.json").is_file():
        return None
    scores, in_run = _kept_scores(run, records), _kept_in_run(run, records)
    if scores is None:
        return None
    reading = _summary(scores["offline"], scores["stream"])
    if in_run is not None:
        reading["in_run"] = list(add_counts(list(in_run["counts"].values()))["in_run"])
    return reading


def _print_readings(candidates: list[str], runs: Path, seeds: list[int], svdb: bool) -> None:
    """``folds``: one line per candidate and seed, one cell per fold (``-`` not scored yet)."""
    for c in candidates:
        for name in with_seeds(c, seeds):
            cells = []
            for k in range(len(FOLDS)):
                r = fold_reading(fold_dir(runs, name, k), held_out(k, svdb))
                if r is None:
                    cells.append("-")
                    continue
                cell = (f"{100 * r['offline']['macro_f1']:.1f}/{100 * r['stream']['macro_f1']:.1f} "
                        f"S {100 * r['offline']['S_f1']:.0f} V {100 * r['offline']['V_f1']:.0f}")
                if "in_run" in r:
                    cell += f" in-run {r['in_run'][1]}/{r['in_run'][0]}"
                cells.append(cell)
            print(f"{name:<22} " + " | ".join(f"fold {k + 1}: {x}" for k, x in enumerate(cells)), flush=True)


def _mitdb(path: Path | None) -> Path:
    from edge_ecg.records.locate import find_database

    return find_database("mitdb", path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__ + "\nThe rule:\n\n" + SELECTION_RULE)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "score", "score-fold", "folds"):
        p = sub.add_parser(name)
        p.add_argument("candidates", nargs="+", help="names in tools/candidates/; the first is the baseline")
        p.add_argument("--runs", type=Path, default=Path("runs/cv"), help="where the fold runs live")
        p.add_argument("--data", type=Path, help="MIT-BIH folder (default: the usual places)")
    sub.choices["train"].add_argument("--jobs", type=int, default=1, help="trainings at once (one thread each)")
    sub.choices["train"].add_argument("--feed", choices=("memory", "shards"), help="override train.feed (same run "
                                      "either way; memory is faster when the beats fit in RAM)")
    score_p = sub.choices["score"]
    score_p.add_argument("--margin", type=float, default=MARGIN)
    score_p.add_argument("--out", type=Path, default=RESULTS)
    score_p.add_argument("--ds2", action="store_true", help="after choosing, score each candidate's fold-1 model on DS2")
    score_p.add_argument("--svdb", action="store_true", help="round 8: score the svdb folds too (DS1 + svdb pooled, "
                         "and each apart)")
    score_p.add_argument("--round10", type=Path, metavar="SPEED_JSON", help="score by round 10's rule (issue 28: "
                         "in-run S beats, seed spread, speed gate from this tools/arch_speed.py result); implies --svdb")
    score_p.add_argument("--round11", type=Path, metavar="SPEED_JSON", help="score by round 11's rule (round 10's, "
                         "with round 11's candidates and speed file); implies --svdb")
    score_p.add_argument("--round12", type=Path, metavar="SPEED_JSON", help="score by round 12's rule (round 10's, "
                         "with round 12's candidates; speed of an identical network allowed); implies --svdb")
    sub.choices["score-fold"].add_argument("--svdb", action="store_true", help="as for score")
    sub.choices["folds"].add_argument("--svdb", action="store_true", help="as for score")
    sub.choices["folds"].description = ("A reading while a round trains, never its verdict: each scored fold's held-out "
                                        "offline/stream macro-F1, S and V F1 (offline) and in-run S beats labelled S, "
                                        "from the kept scores only (nothing is scored; '-': not trained or scored yet).")
    sub.choices["score-fold"].description = ("Score every finished fold run that is not scored yet (kept in the run "
                                             "folder, reused by `score`), skipping folds still training.")
    for p in (sub.choices["train"], score_p, sub.choices["score-fold"], sub.choices["folds"]):
        p.add_argument("--seeds", default="0", help="comma-separated training seeds per fold (default 0); a "
                       "candidate's score is the mean over its seeds (round 5)")
    args = parser.parse_args(argv)
    from edge_ecg.errors import EdgeEcgError

    try:
        return _run(args)
    except EdgeEcgError as exc:  # a missing data folder, an unknown candidate: one line, no traceback
        print(f"cv_select: {exc}", file=sys.stderr)
        return 1


def _run(args) -> int:
    try:
        seeds = [int(x) for x in str(args.seeds).split(",")]
    except ValueError:
        sys.exit(f"Error: --seeds takes comma-separated whole numbers, got {args.seeds!r}")
    if args.command == "train":
        jobs = [(c, k) for name in args.candidates for c in with_seeds(name, seeds) for k in range(len(FOLDS))]
        for c in args.candidates:
            fold_config(c, 0)  # unknown candidates fail before anything starts
        mitdb = _mitdb(args.data)  # so does a missing data folder (not once per fold, after the fact)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for line in pool.map(lambda job: train_fold(job[0], job[1], args.runs, mitdb, args.feed), jobs):
                print(line, flush=True)
        return 0
    if args.command == "folds":
        _print_readings(args.candidates, args.runs, seeds, args.svdb)
        return 0

    mitdb = _mitdb(args.data)
    if args.command == "score-fold":
        for c in args.candidates:
            for name in with_seeds(c, seeds):
                for k in range(len(FOLDS)):
                    run = fold_dir(args.runs, name, k)
                    if not (run / "metrics.json").is_file():
                        print(f"{name} fold {k + 1}: not trained yet, skipped", flush=True)
                        continue
                    t0 = time.perf_counter()
                    fold_scores(run, mitdb, held_out(k, args.svdb))
                    if args.svdb:  # round 10's in-run line (cheap: offline labels only)
                        fold_in_run(run, mitdb, held_out(k, args.svdb))
                    print(f"{name} fold {k + 1}: scored ({time.perf_counter() - t0:.0f} s)", flush=True)
        return 0
    speed_file = args.round10 or args.round11 or args.round12
    if speed_file:
        rule = ROUND10_RULE if args.round10 else ROUND11_RULE if args.round11 else ROUND12_RULE
        result = score_round10(args.candidates, args.runs, mitdb, seeds, speed_file, rule)
        _print_round10(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    results = []
    for c in args.candidates:
        runs = [score_candidate(name, args.runs, mitdb, args.svdb) for name in with_seeds(c, seeds)]
        if len(runs) == 1:
            results.append({"candidate": c, **runs[0]})
            print(f"{c:<20} score {100 * runs[0]['score']:.2f}  ({_figures(runs[0], 'S F1', 'V F1')})", flush=True)
            continue
        mean = sum(x["score"] for x in runs) / len(runs)
        results.append({"candidate": c, "score": mean, "seeds": {str(sd): x for sd, x in zip(seeds, runs)}})
        print(f"{c:<20} score {100 * mean:.2f}  (mean of seeds " + ", ".join(
            f"{sd}: {100 * x['score']:.2f}" for sd, x in zip(seeds, runs)) + ")", flush=True)
        for sd, x in zip(seeds, runs):
            print(f"    seed {sd}: {_figures(x, 'S F1', 'V F1')}", flush=True)
    winner = choose([r["score"] for r in results], args.margin)
    print(f"chosen: {results[winner]['candidate']} (ships its fold-1 run: {fold_dir(args.runs, results[winner]['candidate'], 0)})")
    if args.ds2:
        for r in results:
            r["ds2_after_choice"] = d = ds2_after_choice(r["candidate"], args.runs, mitdb)
            print(f"{r['candidate']:<20} DS2 after the choice: {_figures(d, 'SVEB F1', 'VEB F1')}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "rule": SELECTION_RULE, "folds": [list(f) for f in FOLDS],
        "svdb_folds": [list(f) for f in SVDB_FOLDS] if args.svdb else None,
        "margin": args.margin, "seeds": seeds, "candidates": results, "chosen": results[winner]["candidate"],
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
