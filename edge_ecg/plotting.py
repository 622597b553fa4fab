"""The one way edge-ecg imports matplotlib: lazily, headless, with a clear error if missing."""

from __future__ import annotations

from edge_ecg.errors import EdgeEcgError

#: One colour per AAMI class, used by every plot (N grey, S orange, V red, F purple, Q brown).
CLASS_COLORS = {"N": "0.45", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:brown"}


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (works without a display)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EdgeEcgError("plots need matplotlib: pip install matplotlib") from None
    return plt
