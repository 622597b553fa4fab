"""Training out of one process: the tf.data input pipeline, the tf.distribute strategy, the cluster.

``train.strategy`` (``edge-ecg train --strategy``) chooses how training runs:

- ``default``: no strategy; one process on its CPU threads (or its one GPU).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy`, one process, one replica per local GPU
  (one CPU replica when there is none); each batch is split among the replicas.
- ``multi_worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, one process per machine,
  the cluster described by the ``TF_CONFIG`` environment variable (:func:`read_cluster`). Every
  worker runs the same command on its own copy of the data; the batches are split among all
  replicas of all workers and the gradients summed with collective all-reduce.

Each global batch of ``train.batch_size`` beats is the same set of beats under every strategy:
:func:`epoch_dataset` splits it into one part per replica and each worker makes only its own
parts (reading and augmenting only those windows), so the beats a run sees depend on the seed,
not on the number of workers.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from edge_ecg.config import STRATEGIES
from edge_ecg.errors import ConfigError

#: Roles a ``TF_CONFIG`` cluster may have for synchronous multi-worker training.
CLUSTER_ROLES: tuple[str, ...] = ("chief", "worker")


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a training cluster: ``workers`` processes in all, this one's
    ``index`` among them (the chief is 0), and whether it is the chief (the one that writes the
    run folder)."""

    workers: int = 1
    index: int = 0
    is_chief: bool = True


def read_cluster(text: str | None = None) -> ClusterRole:
    """The :class:`ClusterRole` that ``TF_CONFIG`` (``text``, default the environment) describes.

    ``TF_CONFIG`` is JSON: ``{"cluster": {"worker": ["host1:port", "host2:port"]}, "task":
    {"type": "worker", "index": 0}}``, optionally with one ``"chief"`` address. Without a chief,
    worker 0 is the chief. Anything else is a one-line :class:`ConfigError`.
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text or not text.strip():
        raise ConfigError("--strategy multi_worker needs the TF_CONFIG environment variable (the cluster and this "
                          "task, as JSON); see `edge-ecg train --help`")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError("TF_CONFIG must be a JSON object with 'cluster' and 'task'")
    cluster, task = data.get("cluster"), data.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise ConfigError("TF_CONFIG has no 'cluster' object (role -> list of host:port addresses)")
    if not isinstance(task, dict):
        raise ConfigError("TF_CONFIG has no 'task' object ({\"type\": \"worker\", \"index\": N})")
    for role, addresses in cluster.items():
        if role not in CLUSTER_ROLES:
            raise ConfigError(f"TF_CONFIG cluster role {role!r} is not supported; use {' and '.join(CLUSTER_ROLES)}")
        if not isinstance(addresses, list) or not addresses:
            raise ConfigError(f"TF_CONFIG cluster.{role} must be a non-empty list of host:port addresses")
        for address in addresses:
            if not isinstance(address, str) or not _is_address(address):
                raise ConfigError(f"TF_CONFIG cluster.{role} has {address!r}, which is not host:port")
    if len(cluster.get("chief", [])) > 1:
        raise ConfigError("TF_CONFIG cluster.chief must hold one address")
    all_addresses = [a for role in CLUSTER_ROLES for a in cluster.get(role, [])]
    if len(set(all_addresses)) != len(all_addresses):
        raise ConfigError("TF_CONFIG cluster lists an address twice")
    kind, index = task.get("type"), task.get("index", 0)
    if kind not in cluster:
        raise ConfigError(f"TF_CONFIG task.type {kind!r} is not a role of the cluster ({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int):
        raise ConfigError(f"TF_CONFIG task.index must be a whole number, got {index!r}")
    if not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG task.index {index} is out of range: cluster.{kind} has "
                          f"{len(cluster[kind])} address{'es' if len(cluster[kind]) != 1 else ''}")
    chiefs = len(cluster.get("chief", []))
    position = 0 if kind == "chief" else chiefs + index
    return ClusterRole(workers=len(all_addresses), index=position, is_chief=position == 0)


def _is_address(text: str) -> bool:
    match = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", text)
    return bool(match) and 0 < int(match.group(2)) < 65536


def cluster_role(strategy: str) -> ClusterRole:
    """This process's role under ``strategy``: from ``TF_CONFIG`` for ``multi_worker``, else alone."""
    check_strategy(strategy)
    return read_cluster() if strategy == "multi_worker" else ClusterRole()


def check_strategy(strategy: str) -> None:
    """A one-line :class:`ConfigError` when ``strategy`` is not one of :data:`STRATEGIES`."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")


def make_strategy(strategy: str):
    """The ``tf.distribute`` strategy ``strategy`` names, or None for ``default``.

    Create it before the model (and, for ``multi_worker``, before any other TensorFlow op).
    """
    check_strategy(strategy)
    if strategy == "default":
        return None
    from edge_ecg.model._tf import tf

    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    read_cluster()  # one clear line before TensorFlow reads TF_CONFIG itself
    return tf.distribute.MultiWorkerMirroredStrategy()


def epoch_batches(n: int, batch_size: int, replicas: int = 1) -> list[np.ndarray]:
    """The positions ``0..n-1`` of one epoch's beats, cut into global batches of ``batch_size``.

    With one replica the last batch may be short. With several, every batch is full (the
    last ``n % batch_size`` beats are left out, all of them when ``n < batch_size`` would leave
    a replica nothing), so no replica ever gets an empty part.
    """
    if n <= 0:
        return []
    if replicas == 1:
        return [np.arange(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    full = max(1, n // batch_size)
    size = batch_size if n >= batch_size else n
    if size < replicas:
        raise ConfigError(f"{n} training beats cannot be split among {replicas} replicas")
    return [np.arange(b * size, (b + 1) * size) for b in range(full)]


def epoch_dataset(
    make_batch: Callable[[np.ndarray], tuple],
    batches: list[np.ndarray],
    signature: tuple,
    strategy=None,
):
    """A ``tf.data`` pipeline of one epoch: ``make_batch(positions)`` for each global batch.

    ``make_batch`` returns numpy arrays matching ``signature`` (a tuple of ``tf.TensorSpec``
    structures, batch axis first). Without a strategy it is a plain dataset of the global
    batches. Under a strategy it is a distributed dataset: each input pipeline (one per worker)
    makes, for each global batch, only the parts of its own replicas (the positions split
    evenly among all replicas), so a worker reads and augments only the windows it trains on.
    """
    from edge_ecg.model._tf import tf

    def single(parts_of: Callable[[np.ndarray], list[np.ndarray]]):
        def generate():
            for positions in batches:
                for part in parts_of(positions):
                    yield make_batch(part)

        return tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(1)

    if strategy is None:
        return single(lambda p: [p]).apply(tf.data.experimental.assert_cardinality(len(batches)))

    def per_worker(context):
        replicas = context.num_replicas_in_sync
        local = replicas // context.num_input_pipelines
        mine = range(context.input_pipeline_id * local, (context.input_pipeline_id + 1) * local)
        return single(lambda p: [np.array_split(p, replicas)[r] for r in mine])

    return strategy.distribute_datasets_from_function(per_worker)
