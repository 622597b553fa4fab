"""Which ``pip install 'edge-ecg[EXTRA]'`` brings a missing third-party module.

The base install (and the ``edge`` extra) is what a board needs; the data, plotting and
training commands need more. A command that hits a missing module is told in one line which
extra to install, instead of showing an ``ImportError`` traceback.
"""

from __future__ import annotations

#: top-level module name -> (what to call it, the extra that installs it)
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "wfdb": ("wfdb", "data"),
    "scipy": ("scipy", "data"),
    "tqdm": ("tqdm", "data"),
    "pandas": ("pandas (through wfdb)", "data"),
    "requests": ("requests (through wfdb)", "data"),
    "matplotlib": ("matplotlib", "plot"),
    "tensorflow": ("TensorFlow", "train"),
    "tf_keras": ("tf-keras", "train"),
    "tensorflow_model_optimization": ("tensorflow-model-optimization", "train"),
    "ai_edge_litert": ("the LiteRT interpreter", "edge"),
    "tflite_micro": ("tflite-micro", "micro"),
    "neurokit2": ("neurokit2", "test"),
    "bleak": ("bleak (Bluetooth)", "ble"),
    "selenium": ("selenium", "test"),
}


def describe_missing_module(module: str | None, command: str | None = None) -> str | None:
    """One line saying which extra provides ``module`` (a dotted name is fine), or ``None`` when it
    is not one of edge-ecg's optional dependencies. ``command`` names the sub-command that needs it.
    """
    top = (module or "").split(".")[0]
    if top not in EXTRA_OF_MODULE:
        return None
    what, extra = EXTRA_OF_MODULE[top]
    who = f"`edge-ecg {command}`" if command else "this"
    return f"{who} needs {what}: pip install 'edge-ecg[{extra}]'"
