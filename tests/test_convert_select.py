"""tools/convert_select.py: the conversion setting's rule, and the committed result follows it."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool():
    return importlib.import_module("convert_select")


def test_a_setting_replaces_the_default_only_by_more_than_the_margin():
    tool = _tool()
    assert tool.CANDIDATES[0][0] == "default"
    assert tool.choose({"default": 99.80, "a": 99.80 + tool.MARGIN, "b": 99.70}) == "default"
    assert tool.choose({"default": 99.80, "a": 99.86, "b": 99.90}) == "b"
    assert tool.choose({"default": 99.95, "a": 99.90}) == "default"
    assert "DS2 is never read" in tool.RULE


def test_the_committed_choice_follows_the_rule_and_is_what_ships():
    path = ROOT / "tools" / "results" / "convert_select.json"
    if not path.is_file():
        pytest.skip("no committed conversion choice")
    result = json.loads(path.read_text())
    tool = _tool()
    scores = {name: row["score"] for name, row in result["candidates"].items()}
    assert set(scores) == {c[0] for c in tool.CANDIDATES}
    for row in result["candidates"].values():
        assert row["score"] == min(row["int8_vs_float_agreement_pct"], row["micro_vs_litert_agreement_pct"])
    assert result["winner"] == tool.choose(scores)
    shipped = json.loads((ROOT / "models" / "conversion.json").read_text())["calibration"]
    chosen = result["candidates"][result["winner"]]["calibration"]
    assert (shipped["beats"], shipped["seed"], shipped["records"]) == (chosen["beats"], chosen["seed"], chosen["records"])
