#!/usr/bin/env python
"""What a chest lead that is not MLII does to the shipped model: one short run.

    nice -n 10 python tools/lead_check.py             # ../shared/data/mitdb or $EDGE_ECG_DATA/mitdb

A chest strap (a Polar H10's two electrodes across the lower chest) records a chest lead,
not the modified limb lead II (MLII) every training record of the shipped model used. The
closest lead PhysioNet gives with reference beats on patients the model never saw is
MIT-BIH's second signal, V1, on the 19 DS2 records that have it. For those records this
runs, exactly as a user would, ``edge-ecg evaluate --json`` four times: lead MLII and V1,
each without and with the wearer's adaptation (``--adapt``), and keeps the EC57 gross
figures (VEB and SVEB Se, +P, F1; accuracy) side by side. Writes
tools/results/lead_check.json. Takes a few minutes of CPU (four passes over ~40,000 beats).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import data_root  # the one data-location rule, with this checkout's ../shared/data

ROOT = Path(__file__).resolve().parents[1]
#: DS2 records whose second signal is V1 (100 and 123 have V5, 103 and 117 V2, 124 V4).
V1_RECORDS = ["105", "111", "113", "121", "200", "202", "203", "210", "212", "213", "214", "219", "221", "222",
              "228", "231", "232", "233", "234"]


def run_evaluate(data: Path, lead: str, adapt: bool, records: list[str]) -> dict:
    """``edge-ecg evaluate --json`` of the shipped model on ``records`` read at ``lead``."""
    cmd = [sys.executable, "-m", "edge_ecg", "evaluate", "--model", str(ROOT / "models" / "edge_ecg_int8.tflite"),
           "--data", str(data), "--records", ",".join(records), "--lead", lead, "--json", "--quiet"]
    if adapt:
        cmd.append("--adapt")
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    report = json.loads(out.stdout)
    keep = ("title", "labels", "n_records", "matrix", "gross", "gross_without_232")  # not the per-record rows
    return {"command": " ".join(["edge-ecg"] + cmd[3:]), "seconds": round(time.perf_counter() - t0, 1),
            "report": {k: report[k] for k in keep if k in report}}


def headline(report: dict) -> dict:
    """The gross figures of an EC57 report: V and S Se, +P, F1 (%), accuracy and macro-F1, with and without 232."""
    out = {}
    for key, name in (("gross", "all"), ("gross_without_232", "without_232")):
        gross = report.get(key) or {}
        row = {c: {k: gross[c].get(k) for k in ("se", "ppv", "f1", "Se", "+P", "F1") if k in gross.get(c, {})}
               for c in ("V", "S")}
        row.update(accuracy=gross.get("accuracy"), macro_f1=gross.get("macro_f1"))
        out[name] = row
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="the mitdb folder")
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "lead_check.json")
    ap.add_argument("--rescore", action="store_true", help="only recompute the headline of --out")
    args = ap.parse_args(argv)
    root = data_root()
    data = args.data or root / "mitdb"
    if args.out.is_file() and args.rescore:  # rewrite the headline of a finished run
        result = json.loads(args.out.read_text())
        result["headline"] = {k: headline(v["report"]) for k, v in result["runs"].items()}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result["headline"], indent=1))
        return 0
    runs = {}
    for lead in ("MLII", "V1"):
        for adapt in (False, True):
            name = f"{lead}{' + adapt' if adapt else ''}"
            runs[name] = run_evaluate(data, lead, adapt, V1_RECORDS)
            print(name, json.dumps(headline(runs[name]["report"])), flush=True)
    result = {"records": V1_RECORDS, "model": "models/edge_ecg_int8.tflite",
              "headline": {k: headline(v["report"]) for k, v in runs.items()}, "runs": runs}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
