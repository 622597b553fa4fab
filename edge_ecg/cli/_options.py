"""The options several ``edge-ecg`` commands share, defined once.

An option that means the same thing in two commands is spelled, typed, defaulted and
described the same way in both: each command takes it from here. What differs from one
command to the next (which models it accepts, which records by default) is said in that
command's own help text, not in the option's. ``tests/test_cli_docs.py`` checks that every
option appearing in several commands has one help text and one default.

Old spellings kept for one release print a one-line note on stderr when used:
:func:`deprecated_model_argument` (``convert MODEL``, ``profile MODEL``) and
:func:`deprecated_alias` (``data fetch --dest``).
"""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

#: Threads of the interpreter (or of TensorFlow) wherever a command runs a model.
DEFAULT_THREADS = 1

MODEL_HELP = ("The model: a training run folder, a .keras/.h5 file or an edge-ecg .tflite, as the text above "
              "says this command takes.")


def model_option(required: bool = False):
    """``--model PATH`` (the same help and default whether the command needs it or not)."""
    return click.option("--model", "model", type=click.Path(path_type=Path), default=None, metavar="PATH",
                        required=required, help=MODEL_HELP)


data_option = click.option(
    "--data", "data", type=click.Path(path_type=Path), default=None, metavar="DIR",
    help="Database folder of WFDB records, e.g. ../shared/data/mitdb, or your own. [default: read from "
         "$EDGE_ECG_DATA/<db>, then the per-user cache, which is where `edge-ecg data fetch` downloads; <db> is "
         "mitdb unless --db says]")

threads_option = click.option(
    "--threads", type=click.IntRange(min=1), default=DEFAULT_THREADS, show_default=True, metavar="N",
    help="CPU threads for the model.")

lead_option = click.option(
    "--lead", default=None, metavar="NAME",
    help="Signal to read by name, e.g. MLII, II, ECG1 (a record without it: one line naming its leads). "
         "[default: the model's lead (MLII) where a record has it, else the database's default: "
         "`edge-ecg data info --registry`]")

json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print the result as JSON on stdout; any progress goes to stderr.")

quiet_option = click.option("--quiet", is_flag=True, help="No progress bars or progress lines.")

records_option = click.option(
    "--records", default=None, metavar="LIST",
    help="Records: a named set of the database (DS1, DS2, DS1+DS2 for MIT-BIH), all, or a comma list such "
         "as 100,101. [default: all; evaluate: DS2 for MIT-BIH]")

record_option = click.option(
    "--record", required=True, metavar="NAME", help="Record name in --data, e.g. 208.")

delegate_option = click.option(
    "--delegate", type=click.Choice(["none", "xnnpack", "edgetpu"]), default="none", show_default=True,
    help="xnnpack: fast CPU kernels; edgetpu: a Coral Edge TPU through libedgetpu.")

speed_option = click.option(
    "--speed", type=float, default=1.0, show_default=True,
    help="Pace in multiples of real time (10 = ten times faster); 0 = as fast as the reader takes it.")

start_option = click.option(
    "--start", "start_s", type=click.FloatRange(min=0), default=0.0, show_default=True, metavar="SECONDS",
    help="Start this many seconds into the record.")

duration_option = click.option(
    "--duration", type=float, default=None, metavar="SECONDS",
    help="Stop after this many seconds of signal. [default: the end of the record; never for --simulate]")


def _note_deprecated(old: str, new: str):
    """A click callback printing one line on stderr when ``old`` was given on the command line."""

    def callback(ctx: click.Context, param: click.Parameter, value):
        if value is not None and ctx.get_parameter_source(param.name) is ParameterSource.COMMANDLINE:
            click.echo(f"Note: {old} is deprecated and goes in the next release; write {new}.", err=True)
        return value

    return callback


class _UnlistedArgument(click.Argument):
    """A positional argument left out of the usage line (a deprecated spelling)."""

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        return []


def deprecated_model_argument(command: str):
    """The old positional ``edge-ecg <command> MODEL``: still read, with a note, for one release.
    The command merges it with ``--model`` through :func:`merge_model`."""
    return click.argument("old_model", required=False, type=click.Path(path_type=Path), cls=_UnlistedArgument,
                          callback=_note_deprecated(f"`edge-ecg {command} MODEL`",
                                                    f"`edge-ecg {command} --model MODEL`"))


def merge_model(model: Path | None, old_model: Path | None) -> Path | None:
    """``--model`` or the deprecated positional MODEL (one of them, or the same path twice)."""
    if old_model is not None and model is not None and Path(old_model) != Path(model):
        raise click.UsageError(f"two models given: --model {model} and {old_model}; give one, as --model PATH")
    return model if model is not None else old_model


def deprecated_alias(old: str, new: str, **kwargs):
    """A hidden option ``old`` standing for ``new`` for one release (merged by the command)."""
    name = old.lstrip("-").replace("-", "_")
    return click.option(old, name, hidden=True, default=None,
                        callback=_note_deprecated(old, new), **kwargs)
