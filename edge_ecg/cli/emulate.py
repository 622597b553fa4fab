"""``edge-ecg emulate``: an emulated ECG board on a pseudo-terminal.

Thin: the board lives in :mod:`firmware_harness.emulator`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import click

from edge_ecg.cli._options import data_option, duration_option, lead_option, speed_option

#: Seconds the terminal stays open after the reader took the last byte of a finished record.
LINGER_S = 1.0


@click.command(context_settings={"max_content_width": 100})
@click.option("--record", "record", metavar="PATH/NAME",
              help="WFDB record to replay: DIR/NAME (e.g. ../shared/data/mitdb/100) or a MIT-BIH record name "
                   "looked up in --data / $EDGE_ECG_DATA / the cache.")
@click.option("--simulate", is_flag=True,
              help="Replay the synthetic ECG of `edge-ecg stream --simulate` (72 bpm, N/S/V beats, endless).")
@lead_option
@data_option
@click.option("--fs", type=float, default=250.0, show_default=True,
              help="Sampling rate the board announces, Hz (50-4000, as `edge-ecg stream` accepts); the record is "
                   "resampled to it.")
@click.option("--gain", type=float, default=200.0, show_default=True, help="ADC counts per mV.")
@click.option("--offset", type=int, default=1024, show_default=True, help="ADC count at 0 mV.")
@click.option("--adc-bits", type=int, default=12, show_default=True,
              help="ADC resolution; samples are clipped to 0 .. 2^bits - 1.")
@click.option("--format", "fmt", type=click.Choice(["binary", "ascii"]), default="binary", show_default=True,
              help="binary: protocol v1 frames (firmware_harness/PROTOCOL.md); ascii: one integer per line, "
                   "as a hobby sketch prints (\"!\" while leads are off).")
@click.option("--samples-per-frame", type=int, default=10, show_default=True, help="Samples in one data frame.")
@speed_option
@duration_option
@click.option("--drop-bytes", type=float, default=0.0, show_default=True, help="Probability that a byte is lost.")
@click.option("--flip-bits", type=float, default=0.0, show_default=True, help="Probability that a bit is inverted.")
@click.option("--garbage", type=float, default=0.0, show_default=True,
              help="Probability per frame that 1-32 random bytes are inserted before it.")
@click.option("--stall-every", type=float, default=0.0, show_default=True,
              help="Seconds of output between stalls (0 = never).")
@click.option("--stall-for", type=float, default=0.0, show_default=True,
              help="Seconds each stall lasts; what the board sends meanwhile is lost, as if unplugged.")
@click.option("--lead-off-every", type=float, default=0.0, show_default=True,
              help="Seconds between electrode-off episodes (0 = never).")
@click.option("--lead-off-for", type=float, default=0.0, show_default=True, help="Seconds each episode lasts.")
@click.option("--glitch-every", type=float, default=0.0, show_default=True,
              help="Seconds between corrupted samples (0 = never): ascii merges a fragment \"5\" into a line, "
                   "binary sends one wild value.")
@click.option("--clock-ppm", type=float, default=0.0, show_default=True,
              help="The board's sampling clock error in ppm (e.g. 300: samples 0.03 percent faster than announced).")
@click.option("--encoder", type=click.Choice(["auto", "c", "python"]), default="auto", show_default=True,
              help="auto: the compiled C firmware encoder, or Python if there is no C compiler.")
@click.option("--seed", type=int, default=None, help="Seed of the fault injection (and of --simulate).")
def emulate(record, simulate, lead, data, fs, gain, offset, adc_bits, fmt, samples_per_frame, speed, duration,
            drop_bytes, flip_bits, garbage, stall_every, stall_for, lead_off_every, lead_off_for, glitch_every,
            clock_ppm, encoder, seed):
    """Emulate an ECG board (AD8232 + Arduino/RP2040 class) on a pseudo-terminal.

    --lead is the signal of --record replayed; --data the folder a bare record name is
    looked up in.

    Prints the terminal's path (e.g. /dev/pts/7) on the first line of stdout, then streams
    the record in real time through the compiled C firmware encoder until the record ends
    or Ctrl-C; then it closes the terminal, as if the board were unplugged (readers see a
    disconnect). In another terminal, `edge-ecg stream --device /dev/pts/7` reads it exactly
    as it would read a USB board. A summary goes to stderr at the end.

    \b
    Examples:
      edge-ecg emulate --record ../shared/data/mitdb/100 --fs 360
      edge-ecg emulate --simulate --format ascii --glitch-every 3
      edge-ecg emulate --record 208 --flip-bits 1e-4 --garbage 0.01 --stall-every 30 --stall-for 2
    """
    from edge_ecg.errors import ConfigError
    from firmware_harness.emulator import (Emulator, EmulatorSettings, Faults, describe, open_pty,
                                           wait_until_read)
    from firmware_harness.sources import record_source, simulated_source

    if bool(record) == bool(simulate):
        raise ConfigError("give exactly one of --record PATH/NAME or --simulate")
    faults = Faults(drop_bytes=drop_bytes, flip_bits=flip_bits, garbage=garbage, stall_every_s=stall_every,
                    stall_for_s=stall_for, clock_ppm=clock_ppm, lead_off_every_s=lead_off_every,
                    glitch_every_s=glitch_every,
                    lead_off_for_s=lead_off_for, seed=seed)
    settings = EmulatorSettings(fs=fs, gain=gain, offset=offset, adc_bits=adc_bits, fmt=fmt,
                                samples_per_frame=samples_per_frame, speed=speed, duration_s=duration,
                                encoder=encoder, faults=faults)
    settings.check()
    source = simulated_source(seed=seed or 0) if simulate else record_source(record, lead=lead, data=data)
    board = Emulator(source, settings)
    master, slave, path = open_pty()
    click.echo(path)
    sys.stdout.flush()
    click.echo(f"emulating {describe(settings, source.name)}", err=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stats = board.run(master, stop=stop, drain_input=True)
        if not stop.is_set():  # let the reader take the last bytes before "unplugging"
            wait_until_read(slave, timeout_s=2.0)
            stop.wait(LINGER_S)
    except KeyboardInterrupt:
        stats = board.stats()
    finally:
        signal.signal(signal.SIGTERM, previous)
        os.close(master)
        os.close(slave)
    shown = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.items() if v}
    click.echo("sent: " + ", ".join(f"{k}={v}" for k, v in shown.items()), err=True)
