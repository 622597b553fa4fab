"""Typed configuration: one dataclass per pipeline stage, in one place.

Every artefact edge-ecg writes (a window cache, a training run, a converted model) carries
the resolved configuration that made it, as JSON, so a file is never a mystery.

- :class:`WindowConfig`  beats: how a beat becomes a model input (rate, lead, context, RR).
- :class:`ModelConfig`   model: the network's shape.
- :class:`AugmentConfig` model: training-time augmentation.
- :class:`TrainConfig`   model: the schedule, imbalance handling, QAT.
- :class:`AdaptConfig`   runtime: on-device adaptation to the wearer.
- :class:`StreamConfig`  stream: the live beat detector and signal-quality settings.
- :class:`RunConfig`     what ``edge-ecg train --config FILE`` reads: all of the above.

Config files are JSON or TOML with the same nesting as :class:`RunConfig`; a key that is
unknown or of the wrong type is a one-line :class:`~edge_ecg.errors.ConfigError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edge_ecg.errors import ConfigError

T = TypeVar("T")

#: The AAMI EC57 beat classes, in the order every model output and matrix uses.
CLASSES: tuple[str, ...] = ("N", "S", "V", "F", "Q")
#: Each class's colour in plots and on the live page (matplotlib colour names; the page
#: turns them into CSS).
CLASS_COLORS = {"N": "0.45", "S": "tab:orange", "V": "tab:red", "F": "tab:purple", "Q": "tab:brown"}

#: Assumed RR interval (s, i.e. 75 bpm) for a beat with no predecessor.
DEFAULT_RR_S = 0.8
#: How many recent intervals ``local_rr`` (and the irregularities) use.
LOCAL_BEATS = 10
#: How far back (s) the long-term average of ``pre_rr_long_ratio`` reaches.
LONG_WINDOW_S = 300.0

#: Every past-only RR feature and how it is computed (units: s or a ratio): the one definition,
#: computed by :mod:`edge_ecg.beats.rr` and written into converted models' metadata
#: (``rr_definitions``, :func:`edge_ecg.export.metadata.rr_definitions`).
RR_DEFINITIONS: dict[str, str] = {
    "pre_rr": "s, this R peak minus the previous one",
    "prev_rr": "s, the previous R peak minus the one before it",
    "local_rr": f"s, mean of the last {LOCAL_BEATS} RR intervals up to and including pre_rr",
    "pre_rr_ratio": "pre_rr / local_rr",
    "prev_rr_ratio": "prev_rr / local_rr",
    "pre_rr_long_ratio": f"pre_rr / mean RR interval of the last {LONG_WINDOW_S:g} s",
    "rr_irregularity": f"RMS of successive differences / mean, of the {LOCAL_BEATS} RR intervals before "
                       "pre_rr (0 until two exist)",
    "rr_irregularity_median": f"median |successive difference| / median, of the {LOCAL_BEATS} RR intervals "
                              "before pre_rr (0 until two exist)",
}
#: What every RR feature does without enough history (the first beats, after a gap).
RR_HISTORY_NOTE = (f"past-only; missing history: pre_rr={DEFAULT_RR_S} s, prev_rr=pre_rr, "
                   "averages over what exists")
#: Past-only RR features, in :data:`RR_DEFINITIONS` order.
RR_FEATURES: tuple[str, ...] = tuple(RR_DEFINITIONS)


@dataclass(frozen=True)
class WindowConfig:
    """How one beat becomes a model input.

    The window is ``pre_s`` seconds before the R peak to ``post_s`` seconds after it,
    sampled at ``fs`` Hz from lead ``lead``, filtered by the causal ``ecg_clean``
    (``highpass_hz``/``lowpass_hz``) and normalised per window so that ADC gain and offset
    do not matter. ``post_s`` is also the least latency a stream can have; a stream at
    another rate adds the resampler's look-ahead, ``resample_width`` samples at the lower
    rate (see :func:`edge_ecg.signal.resample.resample_filter`). ``rr_features`` names the
    past-only RR features beside the window; the default is the shipped model's three ratios
    (:data:`RR_FEATURES` lists every feature there is).
    """

    fs: float = 180.0
    lead: str = "MLII"
    pre_s: float = 1.5
    post_s: float = 1.0
    highpass_hz: float = 0.5
    lowpass_hz: float = 40.0
    normalise: str = "robust"  # "robust": (x - median) / (half the 1st-99th percentile range); "zscore"
    rr_features: tuple[str, ...] = ("pre_rr_ratio", "prev_rr_ratio", "pre_rr_long_ratio")
    resample_width: int = 2

    @property
    def pre(self) -> int:
        """Samples before the R peak (at ``fs``)."""
        return int(round(self.pre_s * self.fs))

    @property
    def post(self) -> int:
        """Samples after the R peak, the R sample excluded (at ``fs``)."""
        return int(round(self.post_s * self.fs))

    @property
    def length(self) -> int:
        """Window length in samples: ``pre + 1 + post``."""
        return self.pre + 1 + self.post

    def __post_init__(self) -> None:
        if self.fs <= 0:
            raise ConfigError(f"window.fs must be positive, got {self.fs}")
        if self.pre_s < 0 or self.post_s < 0:
            raise ConfigError("window.pre_s and window.post_s must be >= 0")
        if not 0 < self.highpass_hz < self.lowpass_hz < self.fs / 2:
            raise ConfigError(
                f"window filter needs 0 < highpass_hz < lowpass_hz < fs/2, got "
                f"{self.highpass_hz}, {self.lowpass_hz}, fs={self.fs}"
            )
        if self.normalise not in ("robust", "zscore"):
            raise ConfigError(f"window.normalise must be 'robust' or 'zscore', got {self.normalise!r}")
        if isinstance(self.resample_width, bool) or int(self.resample_width) != self.resample_width \
                or not 1 <= self.resample_width <= 16:
            raise ConfigError(f"window.resample_width must be a whole number from 1 to 16, got {self.resample_width!r}")
        unknown = [f for f in self.rr_features if f not in RR_FEATURES]
        if unknown:
            raise ConfigError(f"unknown RR feature {unknown[0]!r}; known: {', '.join(RR_FEATURES)}")


@dataclass(frozen=True)
class ModelConfig:
    """The network. ``arch`` is ``cnn_lstm`` (the product), ``cnn`` or ``lstm`` (ablations).

    ``conv_filters`` gives one Conv1D/BatchNorm/ReLU/MaxPool block per entry (kernel
    ``conv_kernel`` samples, pooling by ``pool``); the ablations are sized automatically to
    ``cnn_lstm``'s parameter count (see :mod:`edge_ecg.model.arch`). ``use_rr`` adds the RR
    feature input beside the waveform.

    Three knobs make the RR features harder to ignore (the defaults are the shipped model's,
    chosen by cross-validation, see ``tools/cv_select.py``): ``rr_logits`` adds an RR-only
    path (``Dense(rr_hidden, ReLU)`` when ``rr_hidden > 0``, then ``Dense(5)``) whose logits
    are added to the main head's logits before the softmax; ``wave_dropout`` (training only,
    needs ``rr_logits``) zeroes the main head's logits for that fraction of the samples, so
    the RR path alone must classify them.
    ``rr_scale`` s > 0 maps the RR input to ``s * (rr - 1)`` inside the model (ratios centred
    on 1, spread like the waveform features); 0 feeds it unchanged. A model without RR input
    (``use_rr = false``) needs all three off.

    Where the LSTM gets its time axis (issue #3's two variants): ``sequence_beats = 0`` (the
    default) is variant (a), one window around the beat, the LSTM over the CNN's time steps.
    ``sequence_beats = K >= 2`` is variant (b): the same convolutions embed each of the last K
    beats (each its own window, per ``WindowConfig``; ``embed_units`` wide), and the LSTM runs
    across those K beats, each beside its own RR features. Only ``cnn_lstm`` has variant (b).
    """

    arch: str = "cnn_lstm"
    conv_filters: tuple[int, ...] = (16, 24, 32)
    conv_kernel: int = 7
    pool: int = 2
    lstm_units: int = 32
    dense_units: int = 32
    dropout: float = 0.2
    use_rr: bool = True
    rr_logits: bool = True
    rr_hidden: int = 8
    wave_dropout: float = 0.3
    rr_scale: float = 5.0
    sequence_beats: int = 0
    embed_units: int = 16

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ConfigError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHES)}")
        if not self.conv_filters or min(self.conv_filters) < 1 or self.conv_kernel < 1 or self.pool < 1:
            raise ConfigError("model.conv_filters must be a non-empty list of positive widths; conv_kernel, pool >= 1")
        if self.lstm_units < 1 or self.dense_units < 1 or not 0 <= self.dropout < 1:
            raise ConfigError("model.lstm_units and model.dense_units must be >= 1 and model.dropout in [0, 1)")
        if self.rr_hidden < 0 or not 0 <= self.wave_dropout < 1 or self.rr_scale < 0:
            raise ConfigError("model.rr_hidden and model.rr_scale must be >= 0 and model.wave_dropout in [0, 1)")
        if (self.rr_logits or self.wave_dropout > 0 or self.rr_scale > 0) and not self.use_rr:
            raise ConfigError("model.use_rr = false needs model.rr_logits = false, model.wave_dropout = 0 and "
                              "model.rr_scale = 0 (they act on the RR input)")
        if self.sequence_beats < 0 or self.sequence_beats == 1 or self.sequence_beats > 32 or self.embed_units < 1:
            raise ConfigError("model.sequence_beats must be 0 (one window) or 2-32 beats, model.embed_units >= 1")
        if self.sequence_beats and self.arch != "cnn_lstm":
            raise ConfigError(f"model.sequence_beats needs arch cnn_lstm (the LSTM runs across beats), got {self.arch}")
        if self.wave_dropout > 0 and not self.rr_logits:
            raise ConfigError("model.wave_dropout needs model.rr_logits = true (it drops the main head's logits)")


ARCHES: tuple[str, ...] = ("cnn_lstm", "cnn", "lstm")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (see :mod:`edge_ecg.beats.augment`).

    Real noise comes from nstdb's first ``noise_minutes`` minutes only; SNR is in dB relative
    to the window's power; ``wander_amplitude`` is in normalised window units; ``shift_max_s``
    in seconds; ``rate_jitter`` a fraction of the sample rate.

    The ``rr_*`` fields make the RR features look as a QRS detector leaves them: each epoch
    the R positions behind them move by a normal jitter of ``rr_jitter_s`` seconds (standard
    deviation), each beat drops out of the history with probability ``rr_miss_prob``, and a
    spurious beat appears in each RR interval with probability ``rr_extra_prob`` (all 0: the
    features of the reference positions, unchanged).

    ``run_prob`` (issue 28) is the probability that an N or S beat's window gets a synthetic run
    before its R peak: its last cycle repeated back to the window's start at its own RR interval,
    and its ``prev_rr_ratio`` set to its ``pre_rr_ratio``
    (:func:`edge_ecg.beats.augment.tile_context`); 0 (default) draws nothing.
    """

    enabled: bool = True
    noise_prob: float = 0.5
    snr_db_range: tuple[float, float] = (0.0, 24.0)
    noise_types: tuple[str, ...] = ("em", "ma", "bw")
    noise_minutes: float = 15.0  # first N minutes of each nstdb noise record; the rest is for tests
    wander_prob: float = 0.3
    wander_amplitude: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.25)
    shift_max_s: float = 0.03
    rate_jitter: float = 0.03
    rr_jitter_s: float = 0.0
    rr_miss_prob: float = 0.0
    rr_extra_prob: float = 0.0
    run_prob: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.run_prob <= 1:
            raise ConfigError(f"augment.run_prob must be in [0, 1], got {self.run_prob}")
        if not 0 <= self.rr_jitter_s <= 0.05:
            raise ConfigError("augment.rr_jitter_s must be in [0, 0.05] seconds")
        if not (0 <= self.rr_miss_prob <= 0.2 and 0 <= self.rr_extra_prob <= 0.2):
            raise ConfigError("augment.rr_miss_prob and augment.rr_extra_prob must be in [0, 0.2]")
        if not 0 < self.noise_minutes <= 15.0:
            raise ConfigError("augment.noise_minutes must be in (0, 15]: nstdb's last 15 minutes are kept for tests")
        if not (0 <= self.noise_prob <= 1 and 0 <= self.wander_prob <= 1):
            raise ConfigError("augment.noise_prob and augment.wander_prob must be in [0, 1]")
        if self.snr_db_range[0] > self.snr_db_range[1] or self.scale_range[0] > self.scale_range[1]:
            raise ConfigError("augment.snr_db_range and augment.scale_range must be (low, high)")
        if not 0 <= self.rate_jitter < 0.5 or self.shift_max_s < 0:
            raise ConfigError("augment.rate_jitter must be in [0, 0.5) and augment.shift_max_s >= 0")


IMBALANCE: tuple[str, ...] = ("class_weight", "balanced_sampling", "focal", "none")

#: ``train.strategy``: no tf.distribute strategy, MirroredStrategy (local GPUs), MultiWorkerMirroredStrategy.
STRATEGIES: tuple[str, ...] = ("default", "mirrored", "multi_worker")

#: ``train.feed``: chosen per run (``auto``), beats streamed from shards on disk, or the whole beat set in memory.
FEEDS: tuple[str, ...] = ("auto", "shards", "memory")


#: What a run trains on when ``train.data`` is empty: de Chazal's DS1 of MIT-BIH.
DEFAULT_TRAIN_DATA: tuple[str, ...] = ("mitdb:DS1",)


def upgrade_train_table(table: dict, where: str = "config.train") -> dict:
    """A ``train`` table with an old config's ``records`` (MIT-BIH record names; empty: DS1)
    turned into ``data``: ``["101", "106"]`` -> ``data = ["mitdb:101,106"]``; an empty list is
    dropped. A table giving both a non-empty ``records`` and ``data`` is a :class:`ConfigError`."""
    if "records" not in table:
        return table
    table = dict(table)
    records = table.pop("records")
    if not isinstance(records, (list, tuple)) or not all(isinstance(r, str) for r in records):
        raise ConfigError(f"{where}.records must be a list of MIT-BIH record names, got {records!r}")
    if records:
        if table.get("data"):
            raise ConfigError(f"{where}: give data only (records is its old form: add 'mitdb:{','.join(records)}' "
                              "to data)")
        table["data"] = [f"mitdb:{','.join(records)}"]
    return table


@dataclass(frozen=True)
class TrainConfig:
    """The schedule. Validation holds out whole patients.

    ``data`` is what a run trains on, one record-set spec per database (``mitdb:DS1``, ``svdb``,
    ``svdb@0.5``; see :mod:`edge_ecg.records.sets`); empty means :data:`DEFAULT_TRAIN_DATA`
    (de Chazal's DS1, :meth:`specs`). Record ids are ``db/record`` and ``val_records`` may name
    them so (a bare name is MIT-BIH's). An old config's ``records`` list (MIT-BIH names) is
    converted on load to the spec ``mitdb:<names>`` (:func:`upgrade_train_table`).
    A database none of whose records is in ``val_records`` gives ``val_fraction`` of its
    patients (chosen by a hash of the patient id, so always the same) to validation; every
    record of a validation patient is held out, so no patient is on both sides.
    ``init`` starts training from a trained model's weights (same window and inputs, checked).

    The default validation records keep most S beats in training (DS1 has only 944, 383 of
    them in record 209) while still holding out S, V and F beats of six patients.
    ``class_weight_power`` p weighs class c by ``(n_max / n_c) ** p`` (capped at
    ``max_class_weight``); the same weights drive ``balanced_sampling`` (as sampling
    probabilities) and ``focal`` (as alpha). ``ema_momentum`` m > 0 keeps an exponential
    moving average of the weights (``w_ema = m * w_ema + (1 - m) * w`` after every batch) and
    makes it the model at the end of every epoch, so validation, checkpoints and the next epoch
    start from the average; 0 (default) is plain Adam. ``threads`` is TensorFlow's CPU thread
    count; a run's numbers depend on it (the order of floating-point sums), so the default of
    one thread is what makes the shipped model reproduce exactly.

    ``in_run_weight`` w (issue 28) multiplies the sampling probability of the training S beats
    that sit inside runs (reference ``prev_rr_ratio`` < 0.85,
    :func:`edge_ecg.beats.rr.in_run_mask`) by w; 1 (default) leaves the draw as it was.

    ``feed`` says how training beats reach the model: ``shards`` keeps each record's
    windows in a shard file on disk and streams each epoch batch by batch through ``tf.data``
    (memory does not grow with the corpus);
    ``memory`` loads the whole beat set and augments each epoch at once (about 1.45x faster per
    epoch here; with float32 shards both give the same run, bit for bit); ``auto`` (default) is
    ``memory`` when the beats fit in half the available memory under the default strategy, else
    ``shards`` (:func:`edge_ecg.model.train.resolve_feed`; metrics.json says which ran). ``strategy`` is the ``tf.distribute``
    strategy (:mod:`edge_ecg.model.distribute`): ``default`` (none), ``mirrored`` (local GPUs)
    or ``multi_worker`` (machines listed in ``TF_CONFIG``).
    """

    epochs: int = 20
    batch_size: int = 256
    learning_rate: float = 2e-3
    seed: int = 0
    qat: bool = True
    qat_epochs: int = 4
    qat_learning_rate: float = 2e-4
    qat_lstm: str = "calibrate"  # "calibrate" (float during QAT, int8 by calibration) | "fake_quant"
    imbalance: str = "balanced_sampling"  # "class_weight" | "balanced_sampling" | "focal" | "none"
    class_weight_power: float = 0.5
    max_class_weight: float = 30.0
    focal_gamma: float = 2.0
    val_records: tuple[str, ...] = ("106", "118", "124", "205", "215", "220")
    data: tuple[str, ...] = ()  # several databases: specs SOURCE[:RECORDS][@WEIGHT] (edge_ecg.records.sets)
    val_fraction: float = 0.2  # with data: share of patients held out of a database none of whose records is in val_records
    init: str = ""  # start from this run folder's or .keras file's weights (fine-tuning); "" from scratch
    early_stopping_patience: int = 5
    threads: int = 1
    ema_momentum: float = 0.0
    strategy: str = "default"  # "default" | "mirrored" | "multi_worker" (see edge_ecg.model.distribute)
    feed: str = "auto"  # "auto" (memory if it fits, else shards) | "shards" (streamed from disk) | "memory" (in RAM)
    in_run_weight: float = 1.0

    def specs(self) -> tuple[str, ...]:
        """The record-set specs this schedule trains on: ``data``, or :data:`DEFAULT_TRAIN_DATA`."""
        return tuple(self.data) or DEFAULT_TRAIN_DATA

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"train.strategy must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.feed not in FEEDS:
            raise ConfigError(f"train.feed must be one of {', '.join(FEEDS)}, got {self.feed!r}")
        if self.feed == "memory" and self.strategy != "default":
            raise ConfigError("train.feed = 'memory' works only with train.strategy = 'default'; use 'shards'")
        if self.imbalance not in IMBALANCE:
            raise ConfigError(f"train.imbalance must be one of {', '.join(IMBALANCE)}, got {self.imbalance!r}")
        if self.qat_lstm not in ("calibrate", "fake_quant"):
            raise ConfigError(f"train.qat_lstm must be 'calibrate' or 'fake_quant', got {self.qat_lstm!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.qat_epochs < 0 or self.threads < 1:
            raise ConfigError("train.epochs, train.batch_size and train.threads must be >= 1, train.qat_epochs >= 0")
        if self.learning_rate <= 0 or self.qat_learning_rate <= 0:
            raise ConfigError("train.learning_rate and train.qat_learning_rate must be positive")
        if not 0 < self.val_fraction < 1:
            raise ConfigError(f"train.val_fraction must be in (0, 1), got {self.val_fraction}")
        if not 1 <= self.in_run_weight <= 100:
            raise ConfigError(f"train.in_run_weight must be in [1, 100] (1: off), got {self.in_run_weight}")
        if not 0 <= self.ema_momentum < 1:
            raise ConfigError(f"train.ema_momentum must be in [0, 1) (0: off), got {self.ema_momentum}")


@dataclass(frozen=True)
class AdaptConfig:
    """On-device adaptation to the wearer (:mod:`edge_ecg.runtime.adapt`); written in every
    wearer state file.

    ``design``: ``cluster`` (the wearer's beats grouped by QRS morphology, each group split by
    timing, the network's own probabilities averaged per group and blended into each beat's)
    or ``prototype`` (class prototypes re-estimated from the wearer's confident beats,
    T3A-style, in a feature space computed without TensorFlow). Both read a morphology
    vector, the normalised window from ``morph_start_s`` to ``morph_end_s`` around the R peak
    (seconds) every ``morph_step`` samples, and the RR ratios ``pre_rr_ratio`` /
    ``prev_rr_ratio`` when the model has them.

    cluster: at most ``max_clusters`` groups; a beat joins the nearest when its correlation
    is >= ``join_corr`` and its amplitude within a factor ``join_amp_ratio``; timing bins are
    ``pre_rr_ratio`` < ``premature_ratio`` / normal / > ``late_ratio``. A bin with at least
    ``min_votes`` votes blends its mean vote into the beat with weight
    ``max_weight * n / (n + vote_half)``; votes and centroids are running means over at most
    ``vote_memory`` / ``centroid_memory`` beats.

    prototype: a beat whose network probability of its top class is >= ``confident`` supports
    that class's prototype (running mean over at most ``vote_memory`` beats); with two or more
    classes holding ``min_support`` beats, the softmax of minus squared distances over
    ``temperature`` (timing scaled by ``timing_scale``) is blended in with weight
    ``proto_weight * min(1, support / proto_ramp)``.
    """

    design: str = "cluster"  # tools/adapt_select.py round 2, DS1 + svdb out of fold (tools/results/adapt_select_oof.json)
    morph_start_s: float = -0.1
    morph_end_s: float = 0.25
    morph_step: int = 2
    max_clusters: int = 16
    join_corr: float = 0.90
    join_amp_ratio: float = 1.6
    premature_ratio: float = 0.9
    late_ratio: float = 1.1
    min_votes: int = 8
    vote_half: float = 20.0
    max_weight: float = 0.6
    vote_memory: int = 200
    centroid_memory: int = 100
    confident: float = 0.9
    min_support: int = 5
    timing_scale: float = 2.0
    temperature: float = 0.1
    proto_weight: float = 0.5
    proto_ramp: int = 100

    def __post_init__(self) -> None:
        if self.design not in ("cluster", "prototype"):
            raise ConfigError(f"adapt.design must be 'cluster' or 'prototype', got {self.design!r}")
        if not self.morph_start_s < 0 < self.morph_end_s:
            raise ConfigError("adapt.morph_start_s must be < 0 < adapt.morph_end_s (seconds around the R peak)")
        if self.morph_step < 1 or self.max_clusters < 1 or self.vote_memory < 1 or self.centroid_memory < 1:
            raise ConfigError("adapt.morph_step, max_clusters, vote_memory and centroid_memory must be >= 1")
        if not 0 <= self.max_weight <= 1 or not 0 <= self.proto_weight <= 1:
            raise ConfigError("adapt.max_weight and adapt.proto_weight must be in [0, 1]")


@dataclass(frozen=True)
class StreamConfig:
    """The live stream's beat detector and signal-quality settings
    (:class:`edge_ecg.stream.pipeline.StreamPipeline`); written into ``edge-ecg stream``'s
    ``--summary-json`` and the header line of its ``--jsonl`` event log. The signal classes
    take their defaults from here, so a stream and an offline run of them agree.

    Serial glitches (:class:`edge_ecg.signal.impulse.ImpulseRejector`, at the device rate): a
    sample is replaced when it lies further than ``impulse_spread_factor`` trimmed spreads of
    its ``impulse_half`` neighbours on each side (also the samples held back) from their
    median and further than ``impulse_amplitude_fraction`` of the signal's usual peak to peak
    (over ``impulse_blocks`` blocks of ``impulse_block_s`` seconds).

    Signal quality (:class:`edge_ecg.signal.quality.QualityMonitor`, at the device rate):
    flat when the last ``flat_s`` seconds moved by at most ``flat_fraction`` of the usual
    range; saturated when an extreme value repeats for ``saturation_s`` seconds.

    QRS detection (:class:`edge_ecg.signal.detect.QRSDetector`, at the model's rate):
    ``qrs_threshold`` is the fraction of the way from noise to signal level a peak must pass,
    ``qrs_searchback`` the multiple of the mean RR after which missed beats are searched for,
    ``qrs_learning_s`` the learning phase in seconds.

    Beats: a beat with an unusable sample within ``qrs_guard_s`` seconds of its R peak is not
    classified (and restarts the RR history); at most ``max_pending`` beats wait for their
    right context at once (more: the oldest are dropped).
    """

    impulse_half: int = 3
    impulse_spread_factor: float = 5.0
    impulse_amplitude_fraction: float = 0.5
    impulse_block_s: float = 1.0
    impulse_blocks: int = 8
    flat_s: float = 0.5
    flat_fraction: float = 0.01
    saturation_s: float = 0.05
    qrs_threshold: float = 0.125
    qrs_searchback: float = 1.66
    qrs_learning_s: float = 2.0
    qrs_guard_s: float = 0.2
    max_pending: int = 128

    def __post_init__(self) -> None:
        if self.qrs_guard_s < 0 or self.max_pending < 1:
            raise ConfigError("stream.qrs_guard_s must be >= 0 seconds and stream.max_pending >= 1")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``edge-ecg train`` needs; written as ``config.json`` in every run folder."""

    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


# --------------------------------------------------------------------------- (de)serialising


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON-able data (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def to_json(config: Any) -> str:
    """A dataclass config as stable, indented JSON."""
    return json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n"


def config_hash(*configs: Any, extra: Any = None) -> str:
    """A short stable hash of one or more configs (and any JSON-able ``extra``), for cache keys."""
    payload = json.dumps([to_dict(c) for c in configs] + [extra], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``, strictly.

    Unknown keys and values of the wrong type raise :class:`ConfigError` naming the key
    (``where`` is the path shown to the user, e.g. ``config.train``).
    """
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a table/object, got {type(data).__name__}")
    if cls is TrainConfig:
        data = upgrade_train_table(data, where)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known keys: {', '.join(fields)}"
            raise ConfigError(f"unknown key {where}.{key}{hint}")
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}")
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - dataclass signature mismatch
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where} must have {len(args)} items, got {len(value)}")
        return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin in (typing.Union, types.UnionType):
        for a in args:
            try:
                return _coerce(a, value, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where} has the wrong type: {value!r}")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def read_config_data(path: str | Path) -> dict:
    """The table in a JSON (``.json``) or TOML (``.toml``) config file, or a one-line :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10: the same parser as the `tomli` package
                import tomli as tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a table/object")
    return data


def load_config(path: str | Path, cls: type[T] = RunConfig) -> T:  # type: ignore[assignment]
    """Read a JSON (``.json``) or TOML (``.toml``) config file into ``cls``, strictly."""
    return from_dict(cls, read_config_data(path), where=Path(path).name)
