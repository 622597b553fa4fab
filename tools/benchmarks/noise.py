"""Noise robustness: DS2 with nstdb noise at calibrated SNR, our detector + the int8 model.

For each noise type (em electrode motion, ma muscle, bw baseline wander) and SNR (24, 18,
12, 6, 0 dB, as ``nst`` defines it: see :mod:`edge_ecg.signal.noise`), every DS2 record's
MLII lead gets noise from the **last 15 minutes** of the noise record (the first 15 are for
training), then runs the device pipeline offline: resample to the model's rate, our QRS
detector, beat windows and RR features, the int8 model. Beats are scored against the
reference annotations with EC57 matching, so missed and extra beats count.

Also: our detector on nstdb's own 118e*/119e* records (noise in alternate 2-minute
segments after minute 5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAME = "noise"
TITLE = "Noise robustness (DS2 + nstdb noise, int8 model, own detector)"

SNRS_DB = (24, 18, 12, 6, 0)
NOISE_TYPES = ("em", "ma", "bw")
NOISE_NAMES = {"em": "electrode motion", "ma": "muscle artefact", "bw": "baseline wander"}


def detect_and_classify(signal_mv: np.ndarray, fs: float, clf, window):
    """Our device pipeline over a whole record: ``(r samples at fs, class letters)``."""
    from edge_ecg.beats.dataset import prepare_signal
    from edge_ecg.beats.rr import rr_features
    from edge_ecg.beats.windows import beat_windows
    from edge_ecg.config import CLASSES
    from edge_ecg.records.load import Record
    from edge_ecg.signal.detect import ecg_peaks
    from edge_ecg.signal.resample import ecg_resample

    x_model = ecg_resample(signal_mv, fs, window.fs, window.resample_width)
    r_model = ecg_peaks(x_model, window.fs)
    clean = prepare_signal(Record("noisy", fs, window.lead, signal_mv), window)
    X = beat_windows(clean, r_model, window)
    rr = rr_features(r_model, window.fs, window.rr_features)
    if hasattr(clf, "reset"):
        clf.reset()  # each record is its own stream (a variant (b) model's beat history)
    probs = clf.predict_batch(X, rr) if len(r_model) else np.zeros((0, len(CLASSES)))
    labels = [CLASSES[i] for i in np.argmax(probs, axis=1)]
    return np.round(r_model * fs / window.fs).astype(np.int64), labels


def _gross(results) -> dict:
    from edge_ecg.evaluate import Report

    rep = Report(results)
    g = rep.gross
    return {
        "veb_f1": g["V"]["f1"], "sveb_f1": g["S"]["f1"], "veb_se": g["V"]["se"], "veb_ppv": g["V"]["ppv"],
        "sveb_se": g["S"]["se"], "sveb_ppv": g["S"]["ppv"], "qrs_se": g["qrs"]["se"], "qrs_ppv": g["qrs"]["ppv"],
        "accuracy": g["accuracy"], "records": len(results),
    }


def run(ctx) -> dict:
    from tqdm.auto import tqdm

    from edge_ecg.evaluate import match_beats, score_record
    from edge_ecg.records import DS2, load_record
    from edge_ecg.runtime.interpreter import TFLiteClassifier
    from edge_ecg.signal.detect import ecg_peaks
    from edge_ecg.signal.noise import add_noise, load_noise
    from edge_ecg.signal.resample import ecg_resample

    from benchmarks import shipped_model

    model = shipped_model(ctx)
    clf = TFLiteClassifier(model, threads=1)
    window = clf.window
    records = ("100", "232") if ctx.quick else DS2
    snrs = (12, 0) if ctx.quick else SNRS_DB
    types = ("em",) if ctx.quick else NOISE_TYPES
    seconds = 300 if ctx.quick else None

    recs = {}
    for name in records:
        rec = load_record(ctx.mitdb, name, lead=window.lead)
        if seconds:
            n = int(seconds * rec.fs)
            keep = rec.beat_samples < n
            rec.signal, rec.beat_samples, rec.beat_classes = rec.signal[:n], rec.beat_samples[keep], rec.beat_classes[keep]
        recs[name] = rec

    def score_all(noisy_by_record) -> dict:
        scores = []
        for name, x in noisy_by_record.items():
            rec = recs[name]
            r, labels = detect_and_classify(x, rec.fs, clf, window)
            scores.append(score_record(rec.beat_samples, rec.beat_classes, r, labels, rec.fs,
                                       excluded=rec.excluded, name=name))
        return _gross(scores)

    out = {"model": str(model), "records": list(records), "snrs_db": list(snrs), "types": list(types),
           "quick": ctx.quick, "clean": score_all({n: r.signal for n, r in recs.items()}), "noisy": {}}
    jobs = [(t, s) for t in types for s in snrs]
    for kind, snr in tqdm(jobs, desc="noise", unit="level"):
        noise = load_noise(ctx.nstdb, kind, part="test")
        noisy = {}
        for i, (name, rec) in enumerate(recs.items()):
            # each record starts at its own place in the noise's test half
            offset = (i * 37 * int(rec.fs)) % len(noise)
            segment = np.roll(noise, -offset)
            noisy[name] = add_noise(rec.signal, rec.fs, rec.beat_samples, segment, snr)
        out["noisy"].setdefault(kind, {})[str(snr)] = score_all(noisy)

    # our detector on nstdb's own noisy records
    nst = {}
    for name in ("118e24", "118e12", "118e06", "118e00", "118e_6", "119e24", "119e12", "119e06", "119e00", "119e_6"):
        if ctx.quick and not name.endswith(("e12", "e00")):
            continue
        rec = load_record(ctx.nstdb, name, lead="MLII")
        r = np.round(ecg_peaks(ecg_resample(rec.signal, rec.fs, window.fs, window.resample_width), window.fs) * rec.fs / window.fs)
        ref_i, test_i = match_beats(rec.beat_samples, r.astype(np.int64), rec.fs)
        nst[name] = {"se": len(ref_i) / max(1, len(rec.beat_samples)), "ppv": len(test_i) / max(1, len(r)),
                     "ref": int(len(rec.beat_samples)), "detected": int(len(r))}
    out["nstdb_records"] = nst
    _plots(out, ctx.out_dir)
    return out


def _plots(out: dict, out_dir: Path) -> None:
    from edge_ecg.plotting import pyplot

    plt = pyplot()
    for kind, by_snr in out["noisy"].items():
        snrs = sorted(int(s) for s in by_snr)
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for key, label, color in (("veb_f1", "VEB F1", "tab:red"), ("sveb_f1", "SVEB F1", "tab:orange"),
                                  ("qrs_se", "QRS Se", "tab:blue"), ("qrs_ppv", "QRS +P", "tab:cyan")):
            ax.plot(snrs, [by_snr[str(s)][key] * 100 for s in snrs], "o-", color=color, label=label)
            ax.axhline(out["clean"][key] * 100, color=color, ls=":", lw=0.8)
        ax.set_xlabel("SNR (dB, nst definition)")
        ax.set_ylabel("%")
        ax.set_title(f"{NOISE_NAMES[kind]} ({kind}); dotted: no added noise", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(alpha=0.3)
        fig.savefig(out_dir / f"noise_{kind}.png", dpi=100, bbox_inches="tight")
        plt.close(fig)


def _pct(x) -> str:
    return "-" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{100 * x:.1f}"


def render(result: dict) -> str:
    lines = [
        f"Model `{Path(result['model']).name}`; {len(result['records'])} DS2 records; noise from the last 15 min of "
        "each nstdb noise record; SNR as WFDB's `nst` defines it. Scored with EC57 beat matching (own detector).",
        "",
        "| noise | SNR dB | VEB F1 | SVEB F1 | VEB Se | VEB +P | SVEB Se | SVEB +P | QRS Se | QRS +P |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    c = result["clean"]
    keys = ("veb_f1", "sveb_f1", "veb_se", "veb_ppv", "sveb_se", "sveb_ppv", "qrs_se", "qrs_ppv")
    lines.append("| none | - | " + " | ".join(_pct(c[k]) for k in keys) + " |")
    for kind, by_snr in result["noisy"].items():
        for snr in sorted(by_snr, key=lambda s: -int(s)):
            lines.append(f"| {kind} | {snr} | " + " | ".join(_pct(by_snr[snr][k]) for k in keys) + " |")
    lines += ["", " ".join(f"![{k}](tools/results/noise_{k}.png)" for k in result["noisy"]), "",
              "Our detector on nstdb's own records (noise in alternate 2-minute segments from minute 5):", "",
              "| record | QRS Se | QRS +P | reference beats | detected |", "|---|---:|---:|---:|---:|"]
    for name, r in result.get("nstdb_records", {}).items():
        lines.append(f"| {name} | {_pct(r['se'])} | {_pct(r['ppv'])} | {r['ref']} | {r['detected']} |")
    return "\n".join(lines)
