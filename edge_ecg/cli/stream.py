"""``edge-ecg stream`` (classify live ECG) and ``edge-ecg profile`` (time a model alone).

Neither imports TensorFlow: the model runs on LiteRT (``ai_edge_litert``), ``tflite_runtime``
or, only when nothing else is installed, ``tensorflow.lite``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from edge_ecg.cli._options import (data_option, delegate_option, deprecated_model_argument, duration_option,
                                   json_option, lead_option, merge_model, model_option, speed_option, start_option,
                                   threads_option)
from edge_ecg.errors import ConfigError, DataError


def _check_lead_and_column(device: str | None, lead: str | None, column: int | None) -> int:
    """The 0-based column (channel) a board's values are read from; ``--lead`` (a signal name)
    is for recorded sources, ``--column`` for a board."""
    if device and lead is not None:
        raise ConfigError(f"--lead names a signal of --replay; a board's column (or channel) is --column N, "
                          f"not --lead {lead}")
    if column is not None and not device:
        raise ConfigError("--column is for --device (a board's 0-based column or channel); a record's signal "
                          "is --lead NAME")
    return 0 if column is None else column


@click.command()
@click.option("--device", metavar="PATH", help="Serial port of an ECG board, e.g. /dev/ttyUSB0, /dev/ttyACM0, COM3; or a "
                                              "Bluetooth chest strap: ble:ADDRESS, or ble: for the first Polar H10 "
                                              "found (the [ble] extra; see edge-ecg devices).")
@click.option("--replay", metavar="RECORD",
              help="Replay a WFDB record: a path DIR/NAME, or a MIT-BIH name (100) looked up as --data says.")
@click.option("--simulate", is_flag=True, help="Built-in synthetic ECG with N, S and V beats and known ground truth.")
@model_option()
@click.option("--format", "fmt", type=click.Choice(["ascii", "binary"]), default="ascii", show_default=True,
              help="--device data: text lines (one value, or values split by , ; space or tab) or the framed "
                   "binary protocol of firmware_harness (rate and gain come from its header).")
@click.option("--baud", type=int, default=115200, show_default=True, help="Serial bit rate.")
@click.option("--fs", type=float, default=None,
              help="Device sampling rate in Hz: required with --format ascii; with binary it must match the "
                   "header if given. For --simulate the simulator's rate [default 360].")
@lead_option
@click.option("--column", type=click.IntRange(min=0), default=None, metavar="N",
              help="--device: which value of each sample to read, 0-based: the column of an ascii line (e.g. 1 for "
                   "\"t,ecg\") or the channel of a binary frame. [default: 0]")
@speed_option
@start_option
@data_option
@duration_option
@click.option("--max-beats", type=int, default=None, help="Stop after this many beats.")
@threads_option
@delegate_option
@click.option("--jsonl", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write one JSON line per beat: time_s, sample, label, probs, latency_ms, hr_bpm (after a "
                   "header line naming the model, the source and its record). An existing file is refused "
                   "without --force.")
@click.option("--save", type=click.Path(path_type=Path), default=None,
              help="Keep the raw stream as a WFDB record DIR/NAME (format 16), readable however the run ends. An "
                   "existing record is refused without --force.")
@click.option("--force", is_flag=True,
              help="Let --jsonl and --save replace an earlier recording of the same name (without it, an existing "
                   "file is an error before the run starts; nothing is renamed for you).")
@click.option("--summary-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the end-of-run summary (counters, latency percentiles) as JSON, however the run "
                   "ends (Ctrl-C, a device error), replacing the file atomically.")
@click.option("--view", type=click.Choice(["auto", "rich", "plain", "none"]), default="auto", show_default=True,
              help="Live view: rich on a terminal, a plain line every 5 s otherwise, or none.")
@click.option("--seed", type=int, default=0, show_default=True, help="--simulate: random seed.")
@click.option("--adapt/--no-adapt", default=None,
              help="Learn the wearer: relabel beats from the wearer's own earlier beats (unsupervised, causal; "
                   "edge_ecg.runtime.adapt). [default: --adapt, chosen on svdb by tools/adapt_select.py]")
@click.option("--wearer", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --adapt: the wearer's state file, loaded at start if it exists and saved on exit (its "
                   "folder is checked before the run; if it cannot be written then, it is saved in the temporary "
                   "folder and the summary says where).")
@click.option("--web", metavar="[HOST:]PORT", default=None,
              help="Also serve a live page (strip, beats, events, latency) at http://HOST:PORT/: this machine only "
                   "unless a HOST is given (0.0.0.0: every network, with a token in the printed URL). Read-only.")
@click.option("--web-token", metavar="TOKEN", default=None,
              help="With --web: the token the page's URL must carry (?token=TOKEN) [default: a random one when "
                   "HOST is not localhost, none on localhost].")
def stream(device, replay, simulate, model, fmt, baud, fs, lead, column, speed, start_s, data, duration, max_beats, threads,
           delegate, jsonl, save, force, summary_json, view, seed, adapt, wearer, web, web_token) -> None:
    """Detect and classify heart beats live, without TensorFlow.

    One source: a serial board (--device), a recorded WFDB file (--replay) or the built-in
    simulator (--simulate). --model is a converted .tflite with edge-ecg metadata [default:
    the int8 model shipped in the package]. A board sending several values per sample is
    read at --column N; a record's signal is chosen by name with --lead (a bare --replay
    name is looked up in --data). Any device rate is resampled to the model's; ADC counts are
    fine (gain and offset do not matter). Each beat is labelled once its window's right
    context (the model's post_s, 1 s by default) has arrived. Garbage input, CRC errors,
    sequence gaps, an unplugged board (it reconnects) and a flat, saturated or lead-off
    signal are survived and counted; single corrupted samples (a serial glitch) are
    replaced and counted. Ctrl-C, or SIGTERM (systemd stopping a service), stops the run
    and prints the summary; more signals while it stops are ignored, so the summary, the
    files and the wearer state are always complete. Output files' missing folders are
    created and every output is checked before the run; a disk that fills up during it
    stops that file (cut back to its last complete line or sample) with one line at the end.

    The stream learns the wearer as it goes (--adapt, the default): each label also weighs
    how the beat compares with the wearer's own earlier beats the model was sure of (no
    labels, nothing later than the beat's window). It needs a few minutes of beats before it
    changes anything; --wearer FILE keeps what it learnt across runs (refused with another
    model). The JSONL events say "adapted": true when a label came from an adapted state.

    \b
    Examples:
      edge-ecg stream --simulate                               the demo, with the shipped model
      edge-ecg stream --replay 233 --speed 0 --jsonl 233.jsonl DS2 (test) record 233
      edge-ecg stream --device /dev/ttyACM0 --fs 360           Serial.println(analogRead(A0))
      edge-ecg stream --device /dev/ttyACM0 --fs 250 --column 1  lines "millis,ecg": the second value
      edge-ecg stream --replay ../shared/data/svdb/800 --lead ECG2 --speed 0
      edge-ecg stream --device /dev/ttyUSB0 --format binary --save run1
      edge-ecg stream --device /dev/ttyACM0 --fs 360 --adapt --wearer ~/anna.wearer
      edge-ecg stream --simulate --web 8080                    a live page at http://127.0.0.1:8080/
      edge-ecg stream --device ble: --web 0.0.0.0:8080         a Polar H10, watched from a phone
      edge-ecg stream --device ble:A0:9E:1A:12:34:56 --jsonl strap.jsonl
    """
    from edge_ecg.evaluate.live import ReferenceLabeller
    from edge_ecg.stream.events import JsonlWriter, event_log_header
    from edge_ecg.stream.classifier_files import load_classifier
    from edge_ecg.stream.pipeline import StreamPipeline
    from edge_ecg.stream.runner import run_stream, stop_signals
    from edge_ecg.stream.view import LiveView, format_summary

    click.get_current_context().with_resource(stop_signals())  # a signal from here on ends the run with its summary

    chosen = [name for name, on in (("--device", device), ("--replay", replay), ("--simulate", simulate)) if on]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one source: --device PATH, --replay RECORD or --simulate")
    if speed < 0:
        raise ConfigError(f"--speed must be >= 0 (0: as fast as possible), got {speed}")
    if fs is not None:
        from edge_ecg.stream.sources import check_device_fs

        check_device_fs(fs)
    if duration is not None and duration <= 0:
        raise ConfigError("--duration must be > 0 seconds")
    if max_beats is not None and max_beats < 1:
        raise ConfigError("--max-beats must be >= 1")
    column = _check_lead_and_column(device, lead, column)

    from edge_ecg.stream.web.run import open_web

    web_run = open_web(web, web_token)  # a busy port or a bad address: one line, before anything runs
    check_outputs(jsonl, save, summary_json, wearer, force)

    # the source's own settings first: a mistake there costs no model loading
    if device and device.lower().startswith("ble:"):
        from edge_ecg.stream.sources.ble import BleStrapSource, check_ble_options, parse_device

        check_ble_options(fmt, fs, column)
        source = BleStrapSource(parse_device(device))
    elif device:
        from edge_ecg.stream.sources import SerialAsciiSource, SerialBinarySource

        if fmt == "ascii":
            if fs is None:
                raise ConfigError("--fs is required with --format ascii (the board's sampling rate in Hz)")
            source = SerialAsciiSource(device, fs=fs, baud=baud, column=column)
        else:
            source = SerialBinarySource(device, baud=baud, column=column, fs=fs)
    elif replay:
        from edge_ecg.stream.sources import find_replay, replay_lead

        # a missing record or --lead: one line, before the model loads
        find_replay(replay, data) if lead is None else replay_lead(replay, data, lead)
        source = None  # opened once the model's lead is known (the lead the offline builder reads)
    else:
        from edge_ecg.stream.sources import SimulatedSource

        source = SimulatedSource(fs=fs or 360.0, speed=speed, seed=seed)

    clf = load_classifier(model, threads=threads, delegate=delegate)
    if replay:
        from edge_ecg.stream.sources import ReplaySource, open_replay

        record = open_replay(replay, data, lead=lead, model_lead=getattr(getattr(clf, "window", None), "lead", None))
        source = ReplaySource(record, speed=speed, start_s=start_s)
    if device:
        source.open()  # a missing port or a permission problem: one line, before anything runs
    adapter = open_wearer(clf, adapt, wearer)
    pipeline = StreamPipeline(clf, adapter=adapter)
    about = {"model": str(getattr(clf, "path", "") or ""), "runtime": getattr(clf, "runtime_name", ""),
             "source": source.name, "record": recorded_name(source, save)}
    writer = JsonlWriter(jsonl, header=event_log_header(clf, pipeline.config, about)) if jsonl else None
    saver = None
    if save:
        from edge_ecg.stream.save import WfdbStreamWriter

        saver = WfdbStreamWriter(save, lead=str(getattr(source, "record", None) and source.record.lead or "ECG"))
    title = f"edge-ecg stream · {source.name} · {Path(str(getattr(clf, 'path', '') or 'model')).name}"
    live_view = LiveView(title, mode=view)
    on_event = None
    if web_run is not None:
        live_view, on_event = web_run.attach(pipeline, source.name, live_view, title=title)
        click.echo(f"live page: {web_run.url}")
    ended = "error"
    try:
        summary = run_stream(source, pipeline, duration_s=duration, max_beats=max_beats, writer=writer, saver=saver,
                             view=live_view, on_event=on_event, summary_json=summary_json, summary_extra=about,
                             consumers=(ReferenceLabeller(),))
        ended = summary["ended"]
    finally:
        if web_run is not None:
            web_run.finish(ended)
    if adapter is not None and wearer is not None:
        from edge_ecg.outputs import write_or_fallback
        from edge_ecg.runtime.adapt import wearer_bytes

        data = wearer_bytes(adapter)
        written, note = write_or_fallback(wearer, data, "--wearer")  # a full disk: kept elsewhere, and said where
        summary["wearer_file"] = {"path": str(written), "bytes": len(data)}
        if note:
            summary.setdefault("output_errors", []).append(note)
    click.echo(format_summary(summary))
    if summary.get("output_errors"):
        raise DataError(" | ".join(summary["output_errors"]))


def check_outputs(jsonl: Path | None, save: Path | None, summary_json: Path | None, wearer: Path | None,
                  force: bool) -> None:
    """Before the run: every output's folder is made and writable, and ``--jsonl``/``--save``
    do not replace an earlier recording unless ``force``."""
    from edge_ecg.outputs import prepare_output

    for option, path in (("--jsonl", jsonl), ("--summary-json", summary_json), ("--save", save), ("--wearer", wearer)):
        if path is not None:  # missing folders are made now; an unwritable path fails before the run
            prepare_output(path, option)
    if wearer is not None and wearer.exists() and not os.access(wearer, os.W_OK):
        raise ConfigError(f"--wearer {wearer}: the file is not writable (the learnt state could not be saved)")
    if force:
        return
    existing = []
    if jsonl is not None and jsonl.exists():
        existing.append(("--jsonl", jsonl))
    if save is not None:
        base = save.with_suffix("") if save.suffix in (".hea", ".dat") else save
        existing += [("--save", f) for f in (base.with_suffix(".dat"), base.with_suffix(".hea")) if f.exists()][:1]
    for option, path in existing:
        raise ConfigError(f"{option} {path}: already exists (an earlier recording?); give another name, or --force "
                          f"to replace it")


def recorded_name(source, save: Path | None) -> str | None:
    """The record a run's events belong to: the replayed record's name, else the ``--save`` record's."""
    record = getattr(source, "record", None)
    if record is not None and getattr(record, "name", None):
        return str(record.name)
    if save is not None:
        return (save.with_suffix("") if save.suffix in (".hea", ".dat") else save).name
    return None


def open_wearer(clf, adapt: bool | None, wearer: Path | None):
    """The stream's :class:`~edge_ecg.runtime.adapt.WearerAdapter` (None without adaptation):
    ``adapt`` None takes the shipped default (:data:`edge_ecg.runtime.adapt.ADAPT_BY_DEFAULT`);
    an existing ``wearer`` file is loaded (one-line refusal if another model made it)."""
    from edge_ecg.runtime.adapt import ADAPT_BY_DEFAULT, load_wearer, make_adapter

    if adapt is None:
        adapt = ADAPT_BY_DEFAULT
    if not adapt:
        if wearer is not None:
            raise ConfigError("--wearer needs --adapt (the state is what adaptation learns)")
        return None
    adapter = make_adapter(clf)
    if wearer is not None and wearer.exists():
        load_wearer(wearer, adapter)
    return adapter


@click.command()
@model_option()
@deprecated_model_argument("profile")
@threads_option
@delegate_option
@click.option("--runs", type=int, default=1000, show_default=True, help="Timed single-beat inferences.")
@click.option("--warmup", type=int, default=20, show_default=True, help="Untimed inferences first.")
@json_option
@click.option("--adapt", is_flag=True, help="Also time each beat with the wearer's adaptation after the model.")
def profile(model, old_model, threads, delegate, runs, warmup, as_json, adapt) -> None:
    """Benchmark a converted model alone: per-beat inference latency and memory.

    --model is a .tflite with edge-ecg metadata [default: the int8 model shipped in the package]. Reports
    load time, then p50/p95/p99/max milliseconds per beat over --runs single-beat
    inferences, beats per second, the interpreter used and resident memory (MB); with
    --adapt also the per-beat time of the model followed by the wearer's adaptation (what
    `stream` runs by default) against the model alone.

    \b
    Examples:
      edge-ecg profile --model models/edge_ecg_int8.tflite --threads 1 --runs 2000 --json
      edge-ecg profile --adapt                  # per beat: model + adaptation, and adaptation alone
    """
    model = merge_model(model, old_model)
    from edge_ecg.stream.classifier_files import profile_model

    result = profile_model(model, threads=threads, delegate=delegate, runs=runs, warmup=warmup, adapt=adapt)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    lat = result["latency_ms"]
    click.echo(f"{result['model']} ({result['size_kb']} kB, {result['quantization']}, {result['arch'] or 'model'})")
    click.echo(f"  runtime {result['runtime']}, {threads} thread(s), delegate {delegate}; loaded in "
               f"{result['load_ms']:.1f} ms")
    click.echo(f"  per beat ms over {runs} runs: mean {lat['mean']:.3f}  p50 {lat['p50']:.3f}  p95 {lat['p95']:.3f}  "
               f"p99 {lat['p99']:.3f}  max {lat['max']:.3f}")
    click.echo(f"  {result['beats_per_s']:.0f} beats/s; resident memory {result['rss_mb']} MB")
    if adapt:
        a = result["adapt"]
        click.echo(f"  with adaptation ({a['design']}): per beat p50 {a['with_p50_ms']:.3f} ms against "
                   f"{a['without_p50_ms']:.3f} ms without, timed in the same loop ({a['ratio_p50']:.2f}x); "
                   f"adaptation alone p50 {a['alone_p50_ms']:.3f} ms")
