"""The layers of edge_ecg run one way, and nothing inside them goes round in a circle.

Walks every ``import`` in ``edge_ecg/`` with ``ast`` -- module-level imports AND imports inside
functions (a lazy import is still a dependency; it is how an upward import hides) -- and fails on

* an import from a lower layer to a higher one in ``LAYERS``;
* a shared leaf module (``SHARED``) importing above the layer it is placed at, or a layer below
  that place importing it;
* an import cycle between sub-packages, or between the modules of ``records/``.

README's "Architecture" section is drawn from ``LAYERS`` and ``SHARED``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edge_ecg"

# The one direction of the data: each layer may import only layers to its left.
LAYERS = ("records", "signal", "beats", "runtime", "stream", "evaluate", "model", "export", "cli")

# Shared leaf modules and the layer each one serves. "base" sits below every layer (anyone may
# import it; it imports only other base modules). A module placed at a layer may be imported by
# that layer and those above it, and may import only what that layer may.
SHARED = {
    "edge_ecg": "base",  # the package's __init__: __version__ only
    "edge_ecg.errors": "base",
    "edge_ecg.config": "base",
    "edge_ecg.outputs": "base",
    "edge_ecg.textable": "base",
    "edge_ecg.extras": "base",
    "edge_ecg.plotting": "evaluate",  # matplotlib: figures of scores, explanations, strips
    "edge_ecg.tfcompat": "model",  # TensorFlow: the training and conversion side only
    "edge_ecg.__main__": "cli",
}

# Modules inside which no import cycle is allowed (besides the sub-package graph).
ACYCLIC_PACKAGES = ("records",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module imported, line) for every edge_ecg import in ``path``, lazy ones too."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "edge_ecg" or target.startswith("edge_ecg."):
                # ``from edge_ecg.records import wfdb_io`` depends on the submodule too.
                found.append((target, node.lineno))
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists():
                        found.append((sub, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("edge_ecg")]
    return found


def _graph() -> dict[str, list[tuple[str, int]]]:
    return {_module_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _place(module: str) -> str:
    """The layer (or "base") a module belongs to."""
    if module in SHARED:
        return SHARED[module]
    top = module.split(".")[1] if module.count(".") else module
    assert top in LAYERS, f"{module} is in no layer: add it to LAYERS or SHARED"
    return top


def _rank(place: str) -> int:
    return -1 if place == "base" else LAYERS.index(place)


def test_every_module_has_a_place():
    for module in _graph():
        _place(module)


def test_imports_run_one_way():
    upward = []
    for module, imports in _graph().items():
        for target, line in imports:
            if _rank(_place(target)) > _rank(_place(module)):
                upward.append(
                    f"{module}:{line} imports {target} "
                    f"({_place(module)} -> {_place(target)})"
                )
    assert not upward, "imports against the direction of the layers:\n" + "\n".join(upward)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle in a directed graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_cycle_between_sub_packages():
    edges: dict[str, set[str]] = {}
    for module, imports in _graph().items():
        for target, _ in imports:
            a, b = _place(module), _place(target)
            if a != b:
                edges.setdefault(a, set()).add(b)
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))


@pytest.mark.parametrize("package", ACYCLIC_PACKAGES)
def test_no_cycle_inside(package):
    prefix = f"edge_ecg.{package}"
    edges: dict[str, set[str]] = {}
    for module, imports in _graph().items():
        if module.startswith(prefix + "."):
            edges[module] = {
                t for t, _ in imports if t.startswith(prefix + ".") and t != module
            }
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))


def test_device_side_imports_no_heavy_library():
    """stream and runtime run on a Raspberry Pi: no TensorFlow, scipy or wfdb, not even lazily."""
    heavy = ("tensorflow", "scipy", "wfdb", "tensorflow_model_optimization")
    # The one exception: tf.lite as the last-resort interpreter where TensorFlow is installed.
    allowed = {"interpreter.py:tensorflow"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if _place(_module_name(path)) not in ("runtime", "stream"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                else [a.name for a in node.names] if isinstance(node, ast.Import) else []
            )
            found += [
                f"{path.name}:{node.lineno} {n}" for n in names
                if n.split(".")[0] in heavy and f"{path.name}:{n}" not in allowed
            ]
    assert not found, found


def test_readme_and_the_package_docstring_list_the_layers_in_this_order():
    """README's stage table and edge_ecg's docstring are drawn from LAYERS."""
    import edge_ecg

    readme = (PACKAGE.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| stage | package |"):].split("\n\n", 1)[0]
    stages = [row.split("|")[1].strip() for row in table.splitlines()[2:]]
    assert tuple(stages) == LAYERS
    assert " -> ".join(LAYERS) in edge_ecg.__doc__


def test_a_stream_loads_neither_the_offline_scorers_nor_asyncio():
    """``edge_ecg.evaluate`` loads its modules on first use: the stream's live labeller does not
    pull in the offline scorers, and only a Bluetooth strap imports asyncio."""
    code = ("import sys, edge_ecg.evaluate.live, edge_ecg.stream.sources, edge_ecg.stream.runner; "
            "print(sorted(m for m in sys.modules if m in ('asyncio', 'edge_ecg.evaluate.classify', "
            "'edge_ecg.evaluate.report', 'edge_ecg.evaluate.end_to_end')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    import edge_ecg.evaluate as evaluate

    assert sorted(evaluate._NAMES) == sorted(evaluate.__all__)
    for name in evaluate.__all__:  # every public name resolves
        assert getattr(evaluate, name) is not None
    with pytest.raises(AttributeError):
        evaluate.no_such_name  # noqa: B018
