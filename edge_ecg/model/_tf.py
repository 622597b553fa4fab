"""The model stage's TensorFlow and tf_keras, imported once through :func:`edge_ecg.tfcompat.load_tf`.

tensorflow-model-optimization needs Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is first imported; :func:`~edge_ecg.tfcompat.load_tf` does that. Import
``keras`` from here, never ``tf.keras``.
"""

from __future__ import annotations

from edge_ecg.tfcompat import load_tf

tf, keras = load_tf()


def set_threads(threads: int) -> None:
    """Limit TensorFlow to ``threads`` intra-op threads and one inter-op thread (call early)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised: keep what is set
        pass
