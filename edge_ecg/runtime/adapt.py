"""Learn the wearer: unsupervised, causal adaptation on top of a trained classifier.

A :class:`WearerAdapter` sits after the network. It sees each classified beat once, in time
order (its normalised window, its RR features and the network's probabilities), returns the
label it would give with what it has learnt from the wearer's *earlier* beats, and only then
learns from this beat. So a beat's label depends on the signal up to the end of its own
window and nothing later (causal), the state is a few fixed-size numpy arrays (bounded), and
nothing here imports TensorFlow. The stream (:class:`edge_ecg.stream.pipeline.StreamPipeline`)
and the offline evaluation (:func:`adapt_records`) call the same :meth:`WearerAdapter.adapt_batch`.

Two designs (:class:`edge_ecg.config.AdaptConfig`), compared by ``tools/adapt_select.py``:
round 1 on svdb with the DS1-only model (``prototype`` won; ``tools/results/adapt_select.json``),
round 2 on DS1 + svdb out of fold with the shipped recipe's fold models (``cluster`` won and is
the default; ``tools/results/adapt_select_oof.json``):

- ``cluster``: the wearer's beats are grouped by QRS morphology (correlation with running
  templates, and amplitude); each group is split by timing (premature / normal / late by
  ``pre_rr_ratio``). Each (group, timing) cell keeps the running mean of the network's own
  probabilities for its beats, and that mean is blended into each new beat of the cell. A
  borderline beat takes the verdict the network gives its look-alikes.
- ``prototype``: T3A-style. A beat the network is confident about (top probability >= 0.9)
  updates its class's prototype (running mean of the morphology and timing vector); once two
  classes have prototypes, the softmax of the beat's distances to them is blended in.

Drift guards (what keeps a long bigeminy, atrial fibrillation or noise from becoming the
wearer's "normal"):

- nothing is ever assumed normal because it is frequent: what a cell or prototype says comes
  from the network's probabilities for those beats (or, in the supervised clinic mode, from
  reference labels), never from how many there are;
- the adapter learns from the network's *unadapted* probabilities, so its own output never
  feeds back into what it learns (no self-training loop);
- blending is capped (``max_weight`` / ``proto_weight`` < 1): a beat the network is sure of
  keeps its label; only borderline beats move;
- beats the stream leaves unclassified (flat, saturated, lead-off signal) never reach it, a
  beat that looks like no known group starts its own (and cannot steer an existing one), and
  the number of groups is capped (the smallest is recycled).

Supervised clinic mode (EC57's patient-specific protocol): :meth:`WearerAdapter.adapt_batch`
with ``labels`` uses reference classes instead of the network's probabilities as the votes
(cells or prototypes taught by a label then ignore unsupervised votes).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from edge_ecg.config import CLASSES, AdaptConfig, WindowConfig, from_dict, to_dict
from edge_ecg.errors import ConfigError
from edge_ecg.runtime.classifier import Classifier

#: Whether ``stream`` adapts without ``--adapt``/``--no-adapt``: set from the decision of
#: ``tools/adapt_select.py`` round 2 (``tools/results/adapt_select_oof.json``; round 1,
#: ``adapt_select.json``, had decided on too). ``evaluate`` scores the model alone unless given
#: ``--adapt``, so its figures stay those of the model card.
ADAPT_BY_DEFAULT = True  # DS1 + svdb out of fold: +1.45 points of mean S/V F1, accuracy +0.47, 6 records lowered vs 11 raised
#: Format version of wearer state files.
STATE_VERSION = 1
#: Timing bins of the cluster design.
N_BINS = 3


def model_key(model: str | Path | bytes) -> str:
    """A short identity of a model file (SHA-256 of its bytes, 16 hex digits): what a wearer
    state is keyed by, so a state learnt with one model is never used with another."""
    content = bytes(model) if isinstance(model, (bytes, bytearray, memoryview)) else Path(model).read_bytes()
    return hashlib.sha256(content).hexdigest()[:16]


def morphology_slice(window: WindowConfig, config: AdaptConfig) -> slice:
    """Which samples of a window ``(L,)`` make the morphology vector (around the R peak)."""
    a = max(0, window.pre + int(round(config.morph_start_s * window.fs)))
    b = min(window.length, window.pre + int(round(config.morph_end_s * window.fs)) + 1)
    return slice(a, b, config.morph_step)


def timing_columns(rr_names) -> slice | None:
    """The columns ``(pre_rr_ratio, prev_rr_ratio)`` among RR features ``rr_names``, in that
    order, as a slice (a view, cheaper than fancy indexing for one beat); None when either is
    missing: every beat then counts as on time."""
    names = list(rr_names or ())
    if "pre_rr_ratio" not in names or "prev_rr_ratio" not in names:
        return None
    a, b = names.index("pre_rr_ratio"), names.index("prev_rr_ratio")
    return slice(a, b + 1 if b > a else (b - 1 if b > 0 else None), b - a)


#: Floor of a morphology vector's norm (float32, made once).
_TINY = np.float32(1e-6)


@functools.lru_cache(maxsize=8)
def _rms_scale(d: int) -> np.float32:
    """``1 / sqrt(d)`` as float32: a morphology vector's norm times this is its RMS amplitude
    (computed once per length: numpy's scalar ``sqrt`` costs microseconds a beat)."""
    return np.float32(1.0 / np.sqrt(max(d, 1)))


def beat_features(X: np.ndarray, rr: np.ndarray | None, morph_slice: slice, columns: slice | None):
    """Features of beats ``X`` ``(n, L)`` (normalised windows) with RR features ``rr`` ``(n, F)``.

    ``morph_slice``: :func:`morphology_slice`; ``columns``: :func:`timing_columns`. Returns
    ``(morph (n, D) float32, amp (n,) float32, timing (n, 2) float32)``: the morphology vector
    with its mean removed and unit length, its standard deviation (in the window's normalised
    units) and ``(pre_rr_ratio, prev_rr_ratio)`` (1.0 when the model has no such feature).
    """
    seg = np.asarray(X, dtype=np.float32)[:, morph_slice]
    # the mean as np.mean computes it for float32 (a float32 sum, then a division), without its overhead
    seg = seg - np.add.reduce(seg, axis=1, keepdims=True) / seg.shape[1]
    norm = np.sqrt(np.einsum("ij,ij->i", seg, seg))[:, None]
    amp = norm[:, 0] * _rms_scale(seg.shape[1])
    morph = seg / np.maximum(norm, _TINY)
    if rr is None or columns is None:
        timing = np.ones((len(seg), 2), dtype=np.float32)
    else:
        timing = np.asarray(rr, dtype=np.float32)[:, columns]
    return morph, amp, timing


class WearerAdapter:
    """The wearer's adaptation state and its per-beat update (see the module docstring).

    ``config``: an :class:`AdaptConfig`; ``window``: the model's :class:`WindowConfig`;
    ``rr_features``: names of the RR features given with each beat (the model's);
    ``classes``: class letters in the model's output order; ``key``: the model's
    :func:`model_key` (checked when a state is loaded).
    """

    def __init__(self, config: AdaptConfig, window: WindowConfig, rr_features=(), classes=CLASSES, key: str = ""):
        self.config = config
        self.window = window
        self.rr_features = tuple(rr_features or ())
        self.classes = tuple(classes)
        self.key = key
        self._slice = morphology_slice(window, config)
        self._columns = timing_columns(self.rr_features)
        self.dim = len(range(*self._slice.indices(window.length)))
        self.reset()

    # ---------------------------------------------------------------- state

    def reset(self) -> None:
        """Forget the wearer (a new person, or a new record offline)."""
        c, k, d = len(self.classes), self.config.max_clusters, self.dim
        self.beats = 0  # beats seen
        self.adapted_beats = 0  # beats whose label came from an adapted state
        # cluster design
        self.n_clusters = 0
        self.centroids = np.zeros((k, d), dtype=np.float32)
        self.amps = np.zeros(k, dtype=np.float32)
        self.counts = np.zeros(k, dtype=np.int64)
        self.votes = np.zeros((k, N_BINS, c), dtype=np.float32)
        self.n_votes = np.zeros((k, N_BINS), dtype=np.int64)
        self.labelled = np.zeros((k, N_BINS), dtype=np.int64)
        # prototype design
        self.protos = np.zeros((c, d + 2), dtype=np.float32)
        self.support = np.zeros(c, dtype=np.int64)
        self.proto_labelled = np.zeros(c, dtype=np.int64)
        self._refresh_active()

    _ARRAYS = ("centroids", "amps", "counts", "votes", "n_votes", "labelled", "protos", "support", "proto_labelled")

    def state(self) -> dict:
        """The state as ``{"header": JSON-able dict, name: array}`` (what :func:`save_wearer` writes)."""
        header = {"version": STATE_VERSION, "model_key": self.key, "classes": list(self.classes),
                  "rr_features": list(self.rr_features), "adapt": to_dict(self.config),
                  "window": to_dict(self.window), "beats": int(self.beats), "adapted_beats": int(self.adapted_beats),
                  "n_clusters": int(self.n_clusters)}
        out = {"header": header}
        for name in self._ARRAYS:
            out[name] = getattr(self, name).copy()
        return out

    def load_state(self, state: dict, where: str = "wearer state") -> None:
        """Restore :meth:`state` output; a state from another model or setting is a ConfigError."""
        h = state["header"]
        if h.get("version") != STATE_VERSION:
            raise ConfigError(f"{where}: state format {h.get('version')!r}, this edge-ecg reads {STATE_VERSION}")
        if h.get("model_key") != self.key:
            raise ConfigError(f"{where} was learnt with another model (key {h.get('model_key')}, this model "
                              f"{self.key}); use another --wearer file or delete this one")
        if from_dict(AdaptConfig, h.get("adapt", {}), "adapt") != self.config or list(h.get("classes", [])) != list(
                self.classes) or list(h.get("rr_features", [])) != list(self.rr_features):
            raise ConfigError(f"{where} was learnt with other adaptation settings; use another --wearer file")
        for name in self._ARRAYS:
            arr = np.asarray(state[name])
            if arr.shape != getattr(self, name).shape:
                raise ConfigError(f"{where}: array {name} has shape {arr.shape}, expected {getattr(self, name).shape}")
            setattr(self, name, arr.astype(getattr(self, name).dtype))
        self.beats, self.adapted_beats = int(h.get("beats", 0)), int(h.get("adapted_beats", 0))
        self.n_clusters = int(h.get("n_clusters", 0))
        self._refresh_active()

    def progress(self) -> dict:
        """How far adaptation has come: beats seen, share of them labelled from an adapted
        state, and the groups (cluster) or classes with a prototype (prototype)."""
        out = {"design": self.config.design, "beats": int(self.beats),
               "adapted_pct": round(100.0 * self.adapted_beats / self.beats, 1) if self.beats else 0.0}
        if self.config.design == "cluster":
            ready = int((self.n_votes[: self.n_clusters] >= self.config.min_votes).sum())
            out.update(groups=int(self.n_clusters), ready_cells=ready)
        else:
            out.update(prototypes="".join(c for c, s in zip(self.classes, self.support)
                                          if s >= self.config.min_support))
        return out

    # ---------------------------------------------------------------- adaptation

    def adapt_batch(self, X: np.ndarray, rr: np.ndarray | None, probs: np.ndarray, labels=None):
        """Adapted probabilities for beats in time order, learning from each after labelling it.

        ``X`` ``(n, L)`` normalised windows, ``rr`` ``(n, F)`` RR features (names
        ``rr_features``), ``probs`` ``(n, C)`` the network's probabilities; ``labels``
        ``(n,)`` class indices for the supervised clinic mode (-1: none). Returns
        ``(probs (n, C) float32, adapted (n,) bool)``; ``adapted`` says the label came from an
        adapted state. Splitting a sequence of beats into batches does not change the result.
        """
        probs = np.asarray(probs, dtype=np.float32)
        n = len(probs)
        out = probs.copy()
        if n == 0:
            return out, np.zeros(0, dtype=bool)
        morph, amp, timing = beat_features(X, rr, self._slice, self._columns)
        lab = [-1] * n if labels is None else np.asarray(labels, dtype=np.int64).tolist()
        if self.config.design == "cluster":
            amps, pre = amp.tolist(), timing[:, 0].tolist()
            flags = [self._step_cluster(morph[i], amps[i], pre[i], probs[i], out[i], lab[i]) for i in range(n)]
        else:
            feats = np.concatenate([morph, self.config.timing_scale * (timing - 1.0)], axis=1)
            flags = [self._step_prototype(feats[i], probs[i], out[i], lab[i]) for i in range(n)]
        self.beats += n
        self.adapted_beats += sum(flags)
        return out, np.array(flags, dtype=bool)

    def _vote(self, p: np.ndarray, label: int) -> np.ndarray:
        if label < 0:
            return p
        v = np.zeros_like(p)
        v[label] = 1.0
        return v

    def _step_cluster(self, m, a, t, p, out, label) -> bool:
        """One beat of the cluster design: morphology ``m`` (D,), amplitude ``a``, pre_rr_ratio
        ``t``, network probabilities ``p``; writes the adapted ones into ``out``."""
        cfg = self.config
        b = 0 if t < cfg.premature_ratio else (2 if t > cfg.late_ratio else 1)
        k = -1
        if self.n_clusters:
            corr = self.centroids[: self.n_clusters] @ m
            j = int(corr.argmax())
            ratio = a / max(float(self.amps[j]), 1e-6)
            if corr[j] >= cfg.join_corr and 1.0 / cfg.join_amp_ratio <= ratio <= cfg.join_amp_ratio:
                k = j
        done = False
        if k >= 0:
            nv = int(self.n_votes[k, b])
            if nv >= cfg.min_votes:
                w = cfg.max_weight * nv / (nv + cfg.vote_half)
                np.multiply(p, 1.0 - w, out=out)  # (1 - w) p + w votes, without temporaries
                out += w * self.votes[k, b]
                done = True
            # learn: the template follows the wearer slowly
            count = int(self.counts[k]) + 1
            self.counts[k] = count
            rate = 1.0 / min(count, cfg.centroid_memory)
            centroid = self.centroids[k]  # a view: updated in place
            c = m - centroid
            c *= rate
            c += centroid
            # math.sqrt of the float32 dot rounds to the same float32 as np.sqrt (double rounding is
            # exact for square roots), at a fraction of numpy's scalar cost
            np.divide(c, max(math.sqrt(float(c @ c)), 1e-6), out=centroid)
            self.amps[k] += rate * (a - self.amps[k])
        else:
            k = self._new_cluster(m, a)
        labelled = int(self.labelled[k, b])
        if label >= 0 and labelled == 0:
            self.n_votes[k, b] = 0  # a label's verdict replaces the network's
        if label >= 0 or labelled == 0:
            nv = int(self.n_votes[k, b]) + 1
            self.n_votes[k, b] = nv
            rate = 1.0 / min(nv, cfg.vote_memory)
            votes = self.votes[k, b]  # a view: updated in place
            votes += rate * (self._vote(p, label) - votes)
            if label >= 0:
                self.labelled[k, b] = labelled + 1
        return done

    def _new_cluster(self, m, a) -> int:
        if self.n_clusters < self.config.max_clusters:
            k = self.n_clusters
            self.n_clusters += 1
        else:
            k = int(np.argmin(self.counts))  # recycle the smallest group
        self.centroids[k], self.amps[k], self.counts[k] = m, a, 1
        self.votes[k], self.n_votes[k], self.labelled[k] = 0.0, 0, 0
        return k

    def _step_prototype(self, f, p, out, label) -> bool:
        """One beat of the prototype design: feature ``f`` (morphology, then scaled timing),
        network probabilities ``p``; writes the adapted ones into ``out``."""
        cfg = self.config
        active = self._active
        done = False
        if len(active) >= 2:
            diff = self.protos[active] - f
            d2 = np.einsum("ij,ij->i", diff, diff)
            q = np.exp((d2.min() - d2) / cfg.temperature)
            q /= q.sum()
            w = cfg.proto_weight * min(1.0, self._active_support / cfg.proto_ramp)
            pa = p[active]
            out[active] = (1.0 - w) * pa + w * q * float(pa.sum())
            done = True
        c = label if label >= 0 else int(p.argmax())
        if label >= 0 and self.proto_labelled[c] == 0:
            self.support[c] = 0  # a label's prototype replaces the network's
        if label >= 0 or (p[c] >= cfg.confident and self.proto_labelled[c] == 0):
            self.support[c] += 1
            rate = 1.0 / min(int(self.support[c]), cfg.vote_memory)
            self.protos[c] += rate * (f - self.protos[c])
            self.proto_labelled[c] += int(label >= 0)
            self._refresh_active()
        return done

    def _refresh_active(self) -> None:
        """The classes with a prototype (indices, a list) and their total support."""
        self._active = np.flatnonzero(self.support >= self.config.min_support).tolist()
        self._active_support = float(self.support[self._active].sum()) if self._active else 0.0


# --------------------------------------------------------------------------- files


def wearer_bytes(adapter: WearerAdapter) -> bytes:
    """The wearer's state as the bytes of a compressed npz (what :func:`save_wearer` writes)."""
    state = adapter.state()
    buf = io.BytesIO()
    arrays = {k: v for k, v in state.items() if k != "header"}
    np.savez_compressed(buf, header=np.array(json.dumps(state["header"])), **arrays)
    return buf.getvalue()


def save_wearer(path: str | Path, adapter: WearerAdapter) -> int:
    """Write the wearer's state to ``path`` (:func:`wearer_bytes`, written to a temporary file
    and renamed, so an existing state is replaced only by a complete one). Returns its bytes."""
    from edge_ecg.outputs import write_atomic

    data = wearer_bytes(adapter)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return len(data)


def load_wearer(path: str | Path, adapter: WearerAdapter) -> None:
    """Load the state :func:`save_wearer` wrote into ``adapter``. A file that is not a wearer
    state, or one learnt with another model or settings, is a one-line ConfigError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            state = {name: z[name] for name in z.files}
        state["header"] = json.loads(str(state["header"]))
        missing = [n for n in WearerAdapter._ARRAYS if n not in state]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not an edge-ecg wearer state, or a truncated one ({type(exc).__name__}); "
                          f"move it away to start learning afresh") from None
    if missing:
        raise ConfigError(f"{path}: not an edge-ecg wearer state (no {missing[0]})")
    adapter.load_state(state, where=str(path))


def make_adapter(classifier: Classifier, config: AdaptConfig | None = None) -> WearerAdapter:
    """A fresh :class:`WearerAdapter` for a :class:`~edge_ecg.runtime.classifier.Classifier` (its
    window, RR feature names, classes, and the model file's :func:`model_key` when it has a
    ``path``)."""
    path = getattr(classifier, "path", None)  # not part of the protocol: a model in memory has none
    key = model_key(path) if path is not None and Path(path).is_file() else ""
    return WearerAdapter(config or AdaptConfig(), classifier.window, tuple(classifier.rr_features),
                         classifier.classes, key)


def adapt_records(adapter: WearerAdapter, records: np.ndarray, X: np.ndarray, rr: np.ndarray | None,
                  probs: np.ndarray, labels: np.ndarray | None = None):
    """Offline: each record is its own wearer (the adapter is reset at every record's start)
    and its beats go through :meth:`WearerAdapter.adapt_batch` in order, exactly as a stream.

    ``records`` ``(n,)`` record name per beat (a record's beats contiguous and in time
    order); ``labels`` optional ``(n,)`` class indices for the supervised mode (-1: none).
    Returns ``(probs (n, C), adapted (n,) bool)``.
    """
    records = np.asarray(records)
    out = np.asarray(probs, dtype=np.float32).copy()
    adapted = np.zeros(len(out), dtype=bool)
    if len(out) == 0:
        return out, adapted
    starts = np.flatnonzero(np.r_[True, records[1:] != records[:-1], True])
    for a, b in zip(starts[:-1], starts[1:]):
        adapter.reset()
        out[a:b], adapted[a:b] = adapter.adapt_batch(
            X[a:b], None if rr is None else rr[a:b], probs[a:b], None if labels is None else labels[a:b])
    return out, adapted
