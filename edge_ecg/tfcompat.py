"""The one way edge-ecg imports TensorFlow: Keras 2 (``tf_keras``), quiet logs.

tensorflow-model-optimization (quantization-aware training) needs Keras 2, and Keras 3's
LSTM converts to a ``WHILE`` loop that full-integer conversion cannot handle, while the
``tf_keras`` LSTM becomes TFLite's fused ``UNIDIRECTIONAL_SEQUENCE_LSTM``. Both need
``TF_USE_LEGACY_KERAS=1`` set *before* TensorFlow is first imported, so every train-side
module (``model``, ``export``) imports TensorFlow through :func:`load_tf` and uses the
``tf_keras`` module it returns, never ``tf.keras``.

Only the train side calls this. The device side (``signal``, ``beats``, ``runtime``,
``stream``) never imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings

from edge_ecg.errors import EdgeEcgError

log = logging.getLogger(__name__)

#: What to install when TensorFlow is missing.
INSTALL_HINT = "pip install 'edge-ecg[train]' (tensorflow, tf-keras, tensorflow-model-optimization)"


def load_tf(quiet: bool = True):
    """Import TensorFlow with Keras 2; return ``(tf, tf_keras)``.

    Sets ``TF_USE_LEGACY_KERAS=1`` before the first TensorFlow import and, when ``quiet``,
    lowers TensorFlow's C++ and Python logging to errors. Safe to call many times.
    Raises :class:`~edge_ecg.errors.EdgeEcgError` naming what to install when TensorFlow or
    tf-keras is missing.
    """
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS") != "1":
        # TensorFlow was imported before us; tf_keras (returned below) still works, only
        # ``tf.keras`` may already point at Keras 3. Nothing here uses tf.keras.
        log.debug("tensorflow imported before TF_USE_LEGACY_KERAS=1 was set; using tf_keras directly")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if quiet:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    first = "tensorflow" not in sys.modules
    try:
        with warnings.catch_warnings(), (quiet_native_stderr() if quiet and first else contextlib.nullcontext()):
            warnings.simplefilter("ignore", DeprecationWarning)
            import tensorflow as tf

            if first:  # device discovery logs (CUDA probing) happen here, silenced
                tf.config.list_physical_devices()
    except ImportError as exc:
        raise EdgeEcgError(f"TensorFlow is not installed ({exc.name or exc}); {INSTALL_HINT}") from None
    try:
        import tf_keras
    except ImportError:
        raise EdgeEcgError(f"tf-keras (Keras 2) is not installed; {INSTALL_HINT}") from None
    if quiet:
        tf.get_logger().setLevel(logging.ERROR)
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:  # pragma: no cover - absl ships with TensorFlow
            pass
    return tf, tf_keras


def load_tfmot():
    """Import tensorflow-model-optimization (after :func:`load_tf`); a clear error when missing."""
    load_tf()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # its distutils version check
            import tensorflow_model_optimization as tfmot
    except ImportError:
        raise EdgeEcgError(f"tensorflow-model-optimization is not installed; {INSTALL_HINT}") from None
    return tfmot


@contextlib.contextmanager
def quiet_native_stderr():
    """Silence writes to file descriptor 2 (C++ logging of TensorFlow, the converter, TFLite-Micro).

    Python exceptions still propagate; only the native log lines are dropped.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
