"""The ``edge-ecg`` command line.

Sub-commands live in their own modules and are imported only when used, so ``edge-ecg
stream`` on a Raspberry Pi never imports TensorFlow and ``--help`` stays fast. A module in
:data:`COMMANDS` that cannot be imported (a missing extra) is left out of ``--help``.

User mistakes are raised as :class:`~edge_ecg.errors.EdgeEcgError` anywhere in the package
and shown here as one ``Error:`` line with a non-zero exit.
"""

from __future__ import annotations

import importlib
import logging
import os

import click

from edge_ecg import __version__
from edge_ecg.errors import EdgeEcgError
from edge_ecg.extras import describe_missing_module

#: command name -> "module:attribute", in the order of the data's flow.
COMMANDS: dict[str, str] = {
    "data": "edge_ecg.cli.data:data",
    "train": "edge_ecg.cli.train:train",
    "evaluate": "edge_ecg.cli.evaluate:evaluate",
    "convert": "edge_ecg.cli.convert:convert",
    "profile": "edge_ecg.cli.stream:profile",
    "stream": "edge_ecg.cli.stream:stream",
    "emulate": "edge_ecg.cli.emulate:emulate",
    "devices": "edge_ecg.cli.devices:devices",
    "plot": "edge_ecg.cli.plot:plot",
    "explain": "edge_ecg.cli.explain:explain",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = []
        for name in COMMANDS:
            try:
                self._load(name)
                names.append(name)
            except click.ClickException:  # its extra is not installed: running it says which
                pass
        return names

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a third-party extra; a module of ours missing is a bug
            message = describe_missing_module(exc.name, name)
            if message is None:
                raise
            raise click.ClickException(message) from None
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):  # noqa: D102 - click API
        try:
            return super().invoke(ctx)
        except EdgeEcgError as exc:
            raise click.ClickException(str(exc)) from None
        except ModuleNotFoundError as exc:  # an optional dependency its extra would have installed
            message = describe_missing_module(exc.name, ctx.invoked_subcommand)
            if message is None:
                raise
            raise click.ClickException(message) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edge-ecg")
@click.option("-v", "--verbose", count=True, help="More log lines (-v info, -vv debug).")
def main(verbose: int) -> None:
    """ECG arrhythmia classification, from MIT-BIH training to small devices.

    \b
    Examples, the usual path:
      edge-ecg data fetch --db mitdb        get MIT-BIH from PhysioNet (or use --data DIR)
      edge-ecg data info                    records, leads, AAMI beat counts for DS1/DS2
      edge-ecg train --out runs/a           retrain the shipped CNN+LSTM (DS1 + svdb, quantization-aware)
      edge-ecg evaluate --model runs/a      AAMI EC57 scores on DS2 (inter-patient)
      edge-ecg convert --model runs/a       full-integer .tflite (+ --edgetpu, --c-array)
      edge-ecg stream --simulate            run it live; --device /dev/ttyUSB0 for a board

    Data is looked for in --data DIR, then --data-root DIR/<db>, then next to the --data
    folder, then $EDGE_ECG_DATA/<db>, then the per-user cache that `data fetch` fills.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
