"""One place where the model stage imports TensorFlow, tf_keras and the QAT toolkit.

tensorflow-model-optimization needs Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is first imported; :func:`edge_ecg.tfcompat.load_tf` does that when it
exists, otherwise this module sets it itself. Import ``keras`` from here, never ``tf.keras``.
"""

from __future__ import annotations

import os

try:  # the shared helper (export stage) when present
    from edge_ecg.tfcompat import load_tf as _load_tf
except ImportError:  # pragma: no cover - depends on the order the package grows
    _load_tf = None


def _import():
    if _load_tf is not None:
        loaded = _load_tf()
        tf = loaded[0] if isinstance(loaded, tuple) else loaded
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        import tensorflow as tf
    import tf_keras

    return tf, tf_keras


tf, keras = _import()


def set_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` intra-op threads and one inter-op thread (call early)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised: keep what is set
        pass
