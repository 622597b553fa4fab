#!/usr/bin/env python
"""edge-ecg on an EMULATED Raspberry Pi: Debian bookworm arm64 and armhf under qemu-user.

    python tools/boards.py                  # as root: both boards -> tools/results/boards.json, BENCHMARKS.md
    python tools/boards.py --arch armhf     # one board
    python tools/boards.py --quick          # 60 s streams, results in tools/results/_scratch/

Builds (once, cached in ~/.cache/edge-ecg/boards or $EDGE_ECG_BOARDS) a root file system per
board with debootstrap, installs this checkout's wheel in it as a Pi user would, runs
`stream --replay` (DS2 record 200), `stream --simulate` and `profile` there and compares
every beat with the same runs on this machine. Needs root and the package index; the
first build takes a few minutes per board. What it does is tools/benchmarks/boards.py, the
`boards` section of tools/bench.py (which this calls, so BENCHMARKS.md is regenerated).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import bench  # tools/bench.py, beside this file
from benchmarks.boards import BOARDS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=list(BOARDS), action="append", help="a board (default: all)")
    parser.add_argument("--quick", action="store_true", help="60 s streams; results to tools/results/_scratch")
    parser.add_argument("--data-root", type=Path, default=None, help="folder holding mitdb/")
    args = parser.parse_args(argv)
    if args.arch:
        os.environ["EDGE_ECG_BOARD_ARCHES"] = ",".join(args.arch)
    return bench.main(["boards", *(["--quick"] if args.quick else []),
                       *(["--data-root", str(args.data_root)] if args.data_root else [])])


if __name__ == "__main__":
    sys.exit(main())
