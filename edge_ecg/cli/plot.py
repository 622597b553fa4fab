"""``edge-ecg plot``: an ECG strip with the model's beats and the reference labels."""

from __future__ import annotations

from pathlib import Path

import click

from edge_ecg.cli._options import data_option, lead_option, record_option, start_option


@click.command()
@record_option
@click.option("--events", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Beat events from `edge-ecg stream --replay RECORD --jsonl FILE`.")
@data_option
@lead_option
@start_option
@click.option("--duration", "duration_s", type=click.FloatRange(min=0.5, max=600), default=10.0, show_default=True,
              help="Length of the strip (s).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write. [default: strip_<record>_<start>s.png]")
def plot(record: str, events: Path | None, data: Path | None, lead: str, start_s: float, duration_s: float,
         out: Path | None) -> None:
    """Draw an ECG strip: detected beats coloured by class, reference labels beneath.

    Beats whose label differs from the reference (or that match no reference beat within
    150 ms) are boxed. Without --events only the reference labels are drawn. A record without
    annotations (a stream's own --save recording) is drawn without reference labels; events
    whose log names another record are drawn with a warning. Strips longer than 30 s are
    drawn in rows of 20 s.

    \b
    Examples:
      edge-ecg stream --replay ../shared/data/mitdb/208 --speed 0 --jsonl 208.jsonl
      edge-ecg plot --record 208 --events 208.jsonl --start 60 --duration 12
      edge-ecg stream --device /dev/ttyACM0 --fs 360 --save saved/run1 --jsonl run1.jsonl
      edge-ecg plot --record run1 --data saved --events run1.jsonl --duration 120
    """
    from edge_ecg.errors import DataError
    from edge_ecg.plotting import plot_strip
    from edge_ecg.outputs import prepare_output
    from edge_ecg.stream.sources import open_replay

    out = prepare_output(out or Path(f"strip_{record}_{start_s:g}s.png"), "--out")  # before any work
    rec = open_replay(record, data, lead=lead)  # a bare name is looked up in --data; annotations when it has them
    a, b = int(start_s * rec.fs), int((start_s + duration_s) * rec.fs)
    if a >= len(rec.signal):
        raise DataError(f"--start {start_s} s is past the end of record {record} ({rec.duration_s:.0f} s)")
    beats_s, labels = [], []
    if events is not None:
        import json

        for n, line in enumerate(events.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
                if n == 1 and isinstance(ev, dict) and "header" in ev:
                    warn_other_record(events, ev["header"], rec.name)
                    continue  # the event log's header (edge_ecg.stream.events.read_events)
                beats_s.append(float(ev["time_s"]))
                labels.append(ev.get("label"))
            except (ValueError, KeyError, TypeError):
                raise DataError(f"{events}:{n}: not a beat event line (need JSON with time_s and label)") from None
    plot_strip(out, rec.signal[a:b], rec.fs, a / rec.fs, beats_s, labels, rec.beat_samples / rec.fs,
               rec.beat_classes.tolist(), title=f"record {record}, lead {rec.lead}", unit="mV")
    click.echo(f"wrote {out}")


def warn_other_record(events: Path, header, record: str) -> None:
    """A warning on stderr when an event log's header names a record other than ``record``."""
    named = header.get("record") if isinstance(header, dict) else None
    if named and str(named) != str(record):
        click.echo(f"warning: {events} holds the beats of record {named}, not {record}: its labels are not "
                   f"compared with {record}'s reference", err=True)
