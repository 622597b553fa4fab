"""The loop of ``edge-ecg stream``: source -> pipeline -> events, view, files; a summary at the end.

:func:`run_stream` reads a live source (a serial board, a paced replay or simulation) in a
thread behind a bounded queue (:class:`~edge_ecg.stream.sources.ThreadedReader`), and a
replay at full speed in the same thread (nothing to wait for, nothing to drop). It stops
when the source ends, after ``duration_s`` seconds of signal, after ``max_beats`` beats, or
on Ctrl-C or SIGTERM (how systemd stops a service), and always returns (and lets the caller
print) a summary. A stop signal is only noted (:func:`stop_signals`), and the loop ends at its
next turn, so however many signals arrive, the outputs are closed and the summary written; an
output that could not be written (a full disk) is closed with one line in ``output_errors``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time

from edge_ecg.stream.pipeline import StreamPipeline
from edge_ecg.stream.sources import Source, ThreadedReader


class _StopState:
    """What the stop signals asked for (module state: a signal handler has nowhere else to put it)."""

    requested = False
    signals = 0
    depth = 0
    previous: dict = {}


def _request_stop(signum, frame) -> None:
    """A stop signal: note it (and count repeats). Nothing is raised, so a second signal can
    never break the shutdown (closing files, the summary, the wearer state) halfway."""
    _StopState.signals += 1
    _StopState.requested = True


def stop_requested() -> bool:
    """True once SIGINT or SIGTERM has arrived inside :func:`stop_signals`."""
    return _StopState.requested


@contextlib.contextmanager
def stop_signals():
    """SIGINT and SIGTERM ask the run to stop (:func:`stop_requested`) while the block runs (main
    thread only); repeated signals are counted and otherwise ignored until the block ends.

    Blocks nest: the outermost one (``edge-ecg stream`` wraps the whole command, from loading the
    model to saving the wearer state) installs the handlers and restores the previous ones.
    Set explicitly because a process started in the background of a non-interactive shell
    inherits SIGINT ignored, and SIGTERM would otherwise end it without a summary.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _StopState.depth == 0:
        _StopState.requested, _StopState.signals = False, 0
        _StopState.previous = {s: signal.signal(s, _request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    _StopState.depth += 1
    try:
        yield
    finally:
        _StopState.depth -= 1
        if _StopState.depth == 0:
            for s, handler in _StopState.previous.items():
                signal.signal(s, handler)


def close_outputs(*things) -> list[str]:
    """Close each writer (None skipped); returns the one-line errors of those that could not
    write everything (their ``error``), never raising: the summary still has to be written."""
    errors = []
    for thing in things:
        if thing is None:
            continue
        try:
            thing.close()
        except OSError as exc:  # a writer without its own error handling
            errors.append(f"{getattr(thing, 'path', thing)}: {exc.strerror or exc}")
        if getattr(thing, "error", None):
            errors.append(thing.error)
    return errors


def run_stream(
    source: Source,
    pipeline: StreamPipeline,
    duration_s: float | None = None,
    max_beats: int | None = None,
    writer=None,
    saver=None,
    view=None,
    on_event=None,
    threaded: bool | None = None,
    max_chunks: int = 256,
    summary_json=None,
    summary_extra: dict | None = None,
    consumers: tuple = (),
) -> dict:
    """Run ``source`` through ``pipeline`` until it ends or a limit is reached; returns the summary.

    ``duration_s``: seconds of signal (stream time) to process; ``max_beats``: stop after
    that many beats; ``writer``: a :class:`~edge_ecg.stream.events.JsonlWriter`; ``saver``:
    a :class:`~edge_ecg.stream.save.WfdbStreamWriter`; ``view``: a
    :class:`~edge_ecg.stream.view.LiveView`; ``on_event``: called with every
    :class:`~edge_ecg.stream.events.BeatEvent`. ``threaded`` (default: ``source.live``) reads
    in a thread with a queue of ``max_chunks`` chunks. ``summary_json``: a path the summary
    (with ``summary_extra`` added) is written to atomically however the run ends, also when
    an error (a device that cannot be read) ends it; the error is then raised.

    ``consumers``: objects with ``on_chunk(chunk)`` (called with every chunk before the
    pipeline), ``on_event(ev)`` (every beat, before the outputs see it) and ``summary() -> dict``
    (merged into the summary), e.g. :class:`edge_ecg.evaluate.live.ReferenceLabeller`.
    """
    threaded = source.live if threaded is None else threaded
    reader = ThreadedReader(source, max_chunks=max_chunks) if threaded else None
    gen = None if threaded else iter(source.chunks())
    interrupted, ended, error = False, "source ended", None
    t_start = time.perf_counter()
    cpu_start = time.process_time()

    def deliver(events) -> None:
        for ev in events:
            for consumer in consumers:
                consumer.on_event(ev)
            if writer is not None:
                writer.write_event(ev)
            if on_event is not None:
                on_event(ev)

    def stats() -> dict:
        return source.stats()

    with stop_signals():
        try:
            if view is not None:
                view.start()
            if reader is not None:
                reader.start()
            while True:
                if stop_requested():
                    interrupted = True
                    break
                t0 = time.perf_counter()
                if reader is not None:
                    chunk = reader.get(timeout=0.1)
                    if chunk is None:
                        if reader.finished:
                            deliver(pipeline.finish())
                            break
                        if view is not None:
                            view.update(pipeline, stats(), reader.dropped_samples)
                        continue
                    read_s = chunk.read_s
                else:
                    chunk = next(gen, None)
                    if chunk is None:
                        deliver(pipeline.finish())
                        break
                    read_s = time.perf_counter() - t0
                if duration_s is not None:
                    left = int(round(duration_s * chunk.fs)) - (pipeline.stream_pos + chunk.lost)
                    if left <= 0:
                        ended = "duration reached"
                        break
                    if left < len(chunk):
                        chunk.samples = chunk.samples[:left]
                        if chunk.bad is not None:
                            chunk.bad = chunk.bad[:left]
                if saver is not None:
                    saver.write(chunk)
                for consumer in consumers:
                    consumer.on_chunk(chunk)
                deliver(pipeline.process(chunk, read_s=read_s))
                if view is not None:
                    view.update(pipeline, stats(), reader.dropped_samples if reader else 0)
                if max_beats is not None and pipeline.counters["beats"] >= max_beats:
                    ended = "max beats reached"
                    break
                if duration_s is not None and pipeline.fs and pipeline.stream_pos >= duration_s * pipeline.fs:
                    ended = "duration reached"
                    break
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:  # the summary is written, then the error goes on to the CLI
            error = exc
            ended = f"error: {exc}"
        finally:
            if reader is not None:
                reader.stop()
            else:
                source.stop()
                source.close()
            output_errors = close_outputs(writer, saver)
            if view is not None:
                try:
                    view.update(pipeline, stats(), reader.dropped_samples if reader else 0, force=True)
                finally:
                    view.stop()
    wall = time.perf_counter() - t_start
    cpu = time.process_time() - cpu_start
    summary = pipeline.summary()
    for consumer in consumers:
        summary.update(consumer.summary())
    stream_s = pipeline.stream_pos / pipeline.fs if pipeline.fs else 0.0
    summary.update(
        source=source.name,
        source_stats=stats(),
        dropped_samples=reader.dropped_samples if reader else 0,
        dropped_chunks=reader.dropped_chunks if reader else 0,
        stream_s=round(stream_s, 3),
        wall_s=round(wall, 4),
        cpu_s=round(cpu, 4),
        x_realtime=round(stream_s / wall, 1) if wall > 0 and stream_s > 0 else None,
        x_realtime_cpu=round(stream_s / cpu, 1) if cpu > 0 and stream_s > 0 else None,
        interrupted=interrupted,
        ended="interrupted" if interrupted else ended,
    )
    if _StopState.signals > 1:
        summary["stop_signals"] = _StopState.signals
    if output_errors:
        summary["output_errors"] = output_errors
    if getattr(source, "device", False):  # a board sets the pace: say how it kept it, not "x real time"
        st = summary["source_stats"]
        if st.get("active_s"):  # from the first samples to the last of each connected spell
            connected, n = st["active_s"], st.get("active_samples", summary["samples"])
        else:
            connected, n = wall - st.get("disconnected_s", 0.0), summary["samples"]
        summary.update(device=True, fs=pipeline.fs, received_hz=round(n / connected, 2) if connected > 0 else None)
    summary.update(summary_extra or {})
    if summary_json is not None:
        from edge_ecg.outputs import write_or_fallback

        written, note = write_or_fallback(summary_json, json.dumps(summary, indent=2, default=str) + "\n",
                                          "--summary-json")
        if note:
            summary.setdefault("output_errors", []).append(note)
    if error is not None:
        raise error
    return summary
