#!/usr/bin/env python
"""Does the stream's impulse rejector change clean ECG? Count what it would replace.

    python tools/impulses.py                 # every MIT-BIH record, ../shared/data or $EDGE_ECG_DATA
    python tools/impulses.py --data-root DIR --records 100 200

For each record (lead MLII, else the first signal) the rejector
(:class:`edge_ecg.signal.impulse.ImpulseRejector`) runs over the whole record as the stream
would see it (a) at the record's 360 Hz in mV, and (b) as the emulated board sends it:
resampled to 250 Hz, ADC counts of a 12-bit board (200 counts/mV, offset 1024), both in one
call and in 10-sample chunks (decisions must not depend on chunking), and (c) from a
segment start every 97 s (a reconnection), both ways. The amplitude floor is the stream's
(:func:`~edge_ecg.signal.impulse.impulse_floor`: 1 mV; 128 counts for whole-number ADC
counts of unknown gain). It then counts the samples replaced. The
stream's parity with the offline window builder holds only if every count is 0.
Writes tools/results/impulses.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from edge_ecg.records.load import load_record, read_header
from edge_ecg.records.locate import list_records
from edge_ecg.signal.impulse import ImpulseRejector, impulse_floor
from edge_ecg.signal.resample import ecg_resample

from benchmarks import data_root  # the one data-location rule, with this checkout's ../shared/data

ROOT = Path(__file__).resolve().parents[1]


def count_replaced(x: np.ndarray, fs: float, floor: float, chunk: int | None = None,
                   restart_every: int | None = None) -> int:
    """Samples of ``x`` the rejector changes (fed in ``chunk``-sample pieces, reset every ``restart_every``)."""
    rej = ImpulseRejector(fs, floor=floor)
    out = []
    step = chunk or x.size
    for lo in range(0, x.size, step):
        piece = x[lo: lo + step]
        if restart_every and lo and lo % restart_every < step:
            out.append(rej.flush()[0])
            rej.reset()
        out.append(rej.process(piece)[0])
    out.append(rej.flush()[0])
    y = np.concatenate(out)
    assert y.size == x.size, (y.size, x.size)
    return int(np.count_nonzero(y != x))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", type=Path, default=None)
    ap.add_argument("--records", nargs="*", default=None)
    ap.add_argument("--out", type=Path, default=ROOT / "tools" / "results" / "impulses.json")
    args = ap.parse_args(argv)
    root = data_root(args.data_root)
    db = root / "mitdb"
    names = args.records or list_records(db)
    rows, t0 = {}, time.time()
    for name in names:
        lead = "MLII" if "MLII" in (read_header(db, name).sig_name or []) else 0
        rec = load_record(db, name, lead=lead, annotations=False)
        x = np.asarray(rec.signal, dtype=np.float64)
        mv, steps = impulse_floor(x, "mV"), impulse_floor(np.round(x * 200), "adc")
        adc = np.clip(np.round(ecg_resample(x, rec.fs, 250.0) * 200.0 + 1024), 0, 4095)
        rows[name] = {
            "mv_360": count_replaced(x, rec.fs, mv),
            "adc_250": count_replaced(adc, 250.0, steps),
            "adc_250_chunks10": count_replaced(adc, 250.0, steps, chunk=10),
            "mv_360_restart97s": count_replaced(x, rec.fs, mv, chunk=360, restart_every=int(97 * rec.fs)),
            "adc_250_restart97s": count_replaced(adc, 250.0, steps, chunk=250, restart_every=97 * 250),
            "samples": int(x.size),
        }
        print(name, rows[name], flush=True)
    total = {k: sum(r[k] for r in rows.values()) for k in ("mv_360", "adc_250", "adc_250_chunks10",
                                                           "mv_360_restart97s", "adc_250_restart97s", "samples")}
    result = {"_meta": {"command": "python tools/impulses.py", "records": len(rows),
                        "seconds": round(time.time() - t0, 1)},
              "total": total, "records": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print("total", total)
    return 0 if all(total[k] == 0 for k in total if k != "samples") else 1


if __name__ == "__main__":
    raise SystemExit(main())
