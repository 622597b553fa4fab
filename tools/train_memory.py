#!/usr/bin/env python
"""Peak memory of training: the beat set in memory versus beats streamed from shards on disk.

    nice -n 10 python tools/train_memory.py                 # DS1, then DS1 + svdb's 40 records
    python tools/train_memory.py --epochs 1 --out tools/results/train_memory.json

For each corpus (DS1 alone; DS1 plus the 40 svdb records of ../shared/data/svdb, lead ECG1,
128 Hz, resampled to the model's 180 Hz by the same builder) and each feed (``train.feed =
memory``: every window in RAM, each epoch augmented at once; ``shards``: per-record shard files
read batch by batch through tf.data), a fresh Python process trains the shipped configuration
for ``--epochs`` float epochs (no QAT, noise augmentation on) and its peak resident set size
(``ru_maxrss`` from ``wait4``) is recorded. Validation is always DS1's six held-out records, in
memory. The shards are built once beforehand (not measured), so every process starts from the
same on-disk cache. One process at a time.

Data: --data-root DIR (holding mitdb/, nstdb/, svdb/), else $EDGE_ECG_DATA, else ../shared/data.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import data_root  # the one data-location rule, with this checkout's ../shared/data

ROOT = Path(__file__).resolve().parents[1]

CORPORA = ("DS1", "DS1+svdb")
FEEDS = ("memory", "shards")


def corpus_sources(data_root: Path, corpus: str, window):
    """The :class:`RecordSource` list of ``corpus`` (DS1 ids are bare, svdb's are ``svdb/NNN``)."""
    from edge_ecg.beats.shards import database_sources
    from edge_ecg.records.aami import DS1
    from edge_ecg.records.locate import list_records

    sources = database_sources(data_root / "mitdb", list(DS1), window)
    if corpus == "DS1+svdb":
        svdb = data_root / "svdb"
        sources += database_sources(svdb, list_records(svdb), window, db="svdb", lead="ECG1")
    return sources


def child(data_root: Path, corpus: str, feed: str, epochs: int) -> dict:
    """Train once in this process (the parent measures it); returns what was trained on."""
    import numpy as np

    from edge_ecg.beats.shards import build_shards
    from edge_ecg.config import RunConfig
    from dataclasses import replace

    base = RunConfig()
    config = replace(base, train=replace(base.train, epochs=epochs, qat=False, feed=feed))
    beats = build_shards(corpus_sources(data_root, corpus, config.window), config.window, progress=False)
    is_val = np.isin(beats.record, config.train.val_records)
    train, val = beats.subset(~is_val), beats.subset(is_val).load()
    if feed == "memory":
        train = train.load()
    from edge_ecg.model.train import train_run

    with tempfile.TemporaryDirectory() as tmp:
        result = train_run(config, data_root / "mitdb", Path(tmp) / "run", nstdb_dir=data_root / "nstdb",
                           progress=False, echo=lambda m: None, beats=(train, val))
    m = result.metrics
    return {"train_beats": len(train), "val_beats": len(val), "train_records": len(m["train_records"]),
            "train_class_counts": m["train_class_counts"], "loss": m["history"][-1]["loss"],
            "val_macro_f1": m["history"][-1]["val"]["macro_f1"], "train_seconds": m["float"]["seconds"],
            "window_bytes_in_ram": int(train.X.nbytes) if feed == "memory" else 0,
            "index_bytes": int(getattr(train, "index_bytes", 0))}


def measure(data_root: Path, corpus: str, feed: str, epochs: int) -> dict:
    """Run :func:`child` in a fresh interpreter; its result plus its peak RSS in MB."""
    cmd = [sys.executable, __file__, "--child", corpus, feed, "--epochs", str(epochs), "--data-root", str(data_root)]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(proc.pid, 0)
        out.seek(0)
        text = out.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{corpus} {feed} failed: {text[-2000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "train_memory.json")
    parser.add_argument("--report", action="store_true", help="print the table of --out again, measuring nothing")
    parser.add_argument("--child", nargs=2, metavar=("CORPUS", "FEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    root = data_root(args.data_root)
    if args.report:
        print(format_table(json.loads(args.out.read_text())))
        return 0
    if args.child:
        print(json.dumps(child(root, args.child[0], args.child[1], args.epochs)), flush=True)
        return 0
    for db in ("mitdb", "nstdb", "svdb"):
        if not (root / db).is_dir():
            print(f"no {root / db}: pass --data-root DIR holding mitdb/, nstdb/ and svdb/", file=sys.stderr)
            return 1
    from benchmarks import machine_info

    from edge_ecg.beats.shards import build_shards
    from edge_ecg.config import WindowConfig

    t0 = time.perf_counter()
    build_shards(corpus_sources(root, "DS1+svdb", WindowConfig()), WindowConfig(), progress=False)
    build_seconds = time.perf_counter() - t0
    runs = []
    for corpus in CORPORA:
        for feed in FEEDS:
            run = {"corpus": corpus, "feed": feed, **measure(root, corpus, feed, args.epochs)}
            print(json.dumps(run), flush=True)
            runs.append(run)
    by = {(r["corpus"], r["feed"]): r for r in runs}
    added = by[("DS1+svdb", "shards")]["train_beats"] - by[("DS1", "shards")]["train_beats"]
    growth = {feed: round((by[("DS1+svdb", feed)]["peak_rss_mb"] - by[("DS1", feed)]["peak_rss_mb"]) * 2**20 / added, 1)
              for feed in FEEDS}
    result = {
        "_meta": {**machine_info(),
                  "command": " ".join(["python tools/train_memory.py", shlex.join(argv or sys.argv[1:])]).strip(),
                  "seconds": round(time.perf_counter() - t0, 1), "shard_build_seconds": round(build_seconds, 1)},
        "epochs": args.epochs,
        "runs": runs,
        "added_train_beats": added,
        "peak_rss_bytes_per_added_beat": growth,
        "window_bytes_per_beat": WindowConfig().length * 4,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(format_table(result))
    print(f"(written to {args.out})")
    return 0


def format_table(result: dict) -> str:
    """The Markdown table README shows, from a result of this script."""
    runs = {(r["corpus"], r["feed"]): r for r in result["runs"]}
    lines = ["| corpus | training beats | peak RSS, memory feed | peak RSS, shards feed | epoch loss (memory / shards) |",
             "|---|---:|---:|---:|---|"]
    for corpus in CORPORA:
        mem, sh = runs[(corpus, "memory")], runs[(corpus, "shards")]
        lines.append(f"| {corpus} | {sh['train_beats']:,} | {mem['peak_rss_mb']:,.0f} MB | {sh['peak_rss_mb']:,.0f} MB | "
                     f"{mem['loss']:.4f} / {sh['loss']:.4f} |")
    growth = result["peak_rss_bytes_per_added_beat"]
    lines.append("")
    lines.append(f"Adding {result['added_train_beats']:,} training beats raised the peak by {growth['memory']:,.0f} bytes "
                 f"a beat with the memory feed and {growth['shards']:,.0f} with shards (a window is "
                 f"{result['window_bytes_per_beat']:,} bytes).")
    return "\n".join(lines)

if __name__ == "__main__":
    sys.exit(main())
