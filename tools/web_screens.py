#!/usr/bin/env python
"""Screenshots of ``stream --web`` on a replay with V and S beats (README shows them).

    python tools/web_screens.py                 # mitdb 223 from ../shared/data or $EDGE_ECG_DATA

Replays ``--record`` (default MIT-BIH 223: both V and S beats) with the shipped model at
``--speed`` times real time from the 40 s stretch holding the most of its rarer ectopic class
(chosen from the reference annotations), waits until the page's strip is full, and saves
docs/web_desktop.png (1200 x 860) and docs/web_phone.png (390 x 844, a phone's CSS pixels)
from headless Chromium (:mod:`headless`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks import data_root  # the one data-location rule, with this checkout's ../shared/data

ROOT = Path(__file__).resolve().parents[1]


def busiest_start(record, span_s: float = 40.0) -> float:
    """Start (s) of the ``span_s`` stretch with the most beats of the rarer of S and V."""
    fs = record.fs
    beats = np.asarray(record.beat_samples)
    cls = np.asarray(record.beat_classes)
    best, best_t = -1, 0.0
    for t in np.arange(0, len(record.signal) / fs - span_s, 5.0):
        sel = (beats >= t * fs) & (beats < (t + span_s) * fs)
        score = min(int((cls[sel] == "S").sum()), int((cls[sel] == "V").sum()))
        if score > best:
            best, best_t = score, float(t)
    return best_t


def main(argv=None) -> int:
    from headless import chrome, missing, quit_chrome

    from edge_ecg.stream.classifier_files import load_classifier
    from edge_ecg.stream.sources import ReplaySource, open_replay
    from edge_ecg.evaluate.live import ReferenceLabeller
    from edge_ecg.stream.web.run import WebStream

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--record", default="223")
    ap.add_argument("--speed", type=float, default=4.0)
    ap.add_argument("--wait", type=float, default=9.0, help="wall seconds before the shots")
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    args = ap.parse_args(argv)
    if missing():
        print(missing())
        return 1
    data = data_root() / "mitdb"
    record = open_replay(str(data / args.record))
    start = busiest_start(record)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (w, h) in (("web_desktop.png", (1200, 860)), ("web_phone.png", (390, 844))):
        ws = WebStream(ReplaySource(record, speed=args.speed, start_s=start), load_classifier(),
                       consumers=(ReferenceLabeller(),)).start()
        drv = chrome(w, h)
        try:
            drv.get(ws.url)
            time.sleep(args.wait)
            drv.save_screenshot(str(args.out / name))
            print(f"{args.out / name}: record {args.record} from {start:.0f} s at {args.speed:g}x")
        finally:
            quit_chrome(drv)
            ws.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
