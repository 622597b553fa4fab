"""The command line documents itself and README keeps up: every command and sub-command has a
``--help`` with Examples and a row in README's command table; every example (in ``--help`` and
in README) uses options the command has; an option shared by several commands has one help
text and one default."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge_ecg.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: Documents whose example commands must use the current spellings.
DOCS = [README, ROOT / "models" / "MODEL_CARD.md", ROOT / "BENCHMARKS.md"]

#: Options that several commands have with a different meaning on purpose, and why.
DIFFERENT_BY_DESIGN = {
    "--out": "each command's own output file or folder",
    "--seed": "what is random differs: calibration samples, training, the simulator, fault injection",
    "--config": "train reads a run configuration to train with; convert one giving the window",
    "--format": "emulate writes binary frames by default, stream reads ascii lines by default",
    "--fs": "emulate: the rate the board announces; stream: the rate a board sends",
    "--simulate": "emulate plays the simulator as a board; stream reads it",
    "--record": "emulate also takes a path DIR/NAME (it needs no annotations)",
    "--duration": "plot: the strip's length (s); stream and emulate: when to stop",
    "--force": "train: replace a run folder (once the new run is complete); stream: replace a --jsonl/--save recording",
    "--db": "data fetch needs one (mitdb by default); verify and info read it from the folder",
    "--adapt": "stream and evaluate label with adaptation; profile also times it",
}


def walk(command: click.Command, path: tuple[str, ...] = ()):
    """``(path, command)`` for ``command`` and every sub-command below it, loaded as the CLI does."""
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), path + (name,))


COMMANDS = dict(walk(main))
LEAVES = {path: cmd for path, cmd in COMMANDS.items() if not isinstance(cmd, click.Group)}


def _ids(paths):
    return [" ".join(p) or "edge-ecg" for p in paths]


def test_every_command_module_is_loaded():
    # a module the group cannot import would silently drop out of the walk above
    assert {p[0] for p in LEAVES} == {"data", "train", "evaluate", "convert", "profile", "stream", "emulate", "plot",
                                     "explain", "devices"}
    assert {p for p in LEAVES if p[0] == "data"} == {("data", "fetch"), ("data", "verify"), ("data", "info")}


@pytest.mark.parametrize("path", list(COMMANDS), ids=_ids(COMMANDS))
def test_help_has_examples(path):
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples" in result.output, f"edge-ecg {' '.join(path)} --help has no Examples section"


@pytest.mark.parametrize("path", list(LEAVES), ids=_ids(LEAVES))
def test_readme_has_a_row(path):
    rows = [line for line in README.read_text().splitlines() if line.startswith("| `edge-ecg ")]
    assert any(row.startswith(f"| `edge-ecg {' '.join(path)}`") for row in rows), \
        f"README's command table has no row for edge-ecg {' '.join(path)}"


def _example_calls(text: str):
    """``(line, path, options)`` of every ``edge-ecg ...`` call in ``text``: the longest
    command path that exists, and the ``--options`` its line passes."""
    for line in text.splitlines():
        for match in re.finditer(r"(?:^|[\s`$(])edge-ecg((?: [^`#|;]*)?)", line):
            try:
                words = shlex.split(match.group(1), comments=True)
            except ValueError:  # an unbalanced quote in prose
                words = match.group(1).split()
            path: tuple[str, ...] = ()
            while words and path + (words[0],) in COMMANDS:
                path, words = path + (words[0],), words[1:]
            if not path and words and not words[0].startswith("-"):
                continue  # prose ("an edge-ecg .tflite"), not a call
            options = [re.match(r"--[A-Za-z0-9][\w-]*", w).group(0) for w in words if re.match(r"--\w", w)]
            yield line.strip(), path, options


def _option_names(command: click.Command) -> set[str]:
    names = {"--help", "--version", "--verbose"}
    for param in command.params:
        names.update(o for o in param.opts + param.secondary_opts if o.startswith("--"))
    return names


def _unknown_options(text: str) -> list[str]:
    bad = []
    for line, path, options in _example_calls(text):
        known = _option_names(COMMANDS[path])
        for option in options:
            hidden = {o for p in COMMANDS[path].params if getattr(p, "hidden", False) for o in p.opts}
            if option not in known or option in hidden:
                bad.append(f"{option} in: {line}")
    return bad


@pytest.mark.parametrize("path", list(COMMANDS), ids=_ids(COMMANDS))
def test_help_examples_use_current_options(path):
    assert _unknown_options(COMMANDS[path].help or "") == []


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_document_examples_use_current_options(doc):
    assert _unknown_options(doc.read_text()) == []


def test_models_are_given_as_an_option():
    """``convert`` and ``profile`` take ``--model`` as every other command does; README and
    the help texts no longer show the old positional MODEL."""
    texts = [d.read_text() for d in DOCS] + [cmd.help or "" for cmd in COMMANDS.values()]
    old = re.compile(r"edge-ecg (convert|profile) (?!-)\S")
    assert [m.group(0) for t in texts for m in old.finditer(t)] == []


def test_shared_options_have_one_help_and_one_default():
    seen: dict[str, list[tuple[tuple[str, ...], click.Parameter]]] = {}
    for path, cmd in LEAVES.items():
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                for opt in param.opts:
                    seen.setdefault(opt, []).append((path, param))
    shared = {opt: uses for opt, uses in seen.items() if len(uses) > 1}
    assert {"--model", "--data", "--threads", "--lead", "--json", "--quiet", "--records"} <= set(shared)
    for opt, uses in shared.items():
        if opt in DIFFERENT_BY_DESIGN:
            continue
        first_path, first = uses[0]
        for path, param in uses[1:]:
            where = f"{opt}: edge-ecg {' '.join(first_path)} vs edge-ecg {' '.join(path)}"
            assert param.help == first.help, where
            assert param.default == first.default, where
            assert type(param.type) is type(first.type) and param.metavar == first.metavar, where


def test_one_thread_default_everywhere():
    defaults = {" ".join(path): p.default for path, cmd in LEAVES.items() for p in cmd.params if p.name == "threads"}
    assert set(defaults) >= {"evaluate", "stream", "profile"} and set(defaults.values()) == {1}


def test_data_fetch_dest_is_a_deprecated_alias_of_data(tmp_path):
    # --patients 9-3 is refused before any download, after the options are read
    res = CliRunner().invoke(main, ["data", "fetch", "--db", "icentia11k", "--patients", "9-3", "--dest",
                                    str(tmp_path / "x")])
    assert res.exit_code != 0 and "comes before the first" in res.output
    assert "--dest is deprecated" in res.stderr and "--data DIR" in res.stderr
    res = CliRunner().invoke(main, ["data", "fetch", "--dest", str(tmp_path / "x"), "--data", str(tmp_path / "y")])
    assert res.exit_code == 2 and "give the folder once" in res.output
    assert "--dest" not in CliRunner().invoke(main, ["data", "fetch", "--help"]).output


def test_convert_takes_the_old_positional_model_with_a_note(tmp_path):
    res = CliRunner().invoke(main, ["convert", str(tmp_path / "nope.keras"), "--float32", "--no-compare", "--quiet"])
    assert res.exit_code == 1 and "nope.keras" in res.stderr
    assert "`edge-ecg convert MODEL` is deprecated" in res.stderr
    res = CliRunner().invoke(main, ["convert", "a.keras", "--model", "b.keras"])
    assert res.exit_code == 2 and "two models given" in res.output
    res = CliRunner().invoke(main, ["convert", "--float32"])
    assert res.exit_code == 2 and "--model PATH" in res.output
