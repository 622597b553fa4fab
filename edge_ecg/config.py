"""Typed configuration: one dataclass per pipeline stage, in one place.

Every artefact edge-ecg writes (a window cache, a training run, a converted model) carries
the resolved configuration that made it, as JSON, so a file is never a mystery.

- :class:`WindowConfig`  beats: how a beat becomes a model input (rate, lead, context, RR).
- :class:`ModelConfig`   model: the network's shape.
- :class:`AugmentConfig` model: training-time augmentation.
- :class:`TrainConfig`   model: the schedule, imbalance handling, QAT.
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

#: Past-only RR features (see :mod:`edge_ecg.beats.rr` for definitions).
RR_FEATURES: tuple[str, ...] = (
    "pre_rr",  # s, this beat minus the previous one
    "prev_rr",  # s, the previous beat minus the one before it
    "local_rr",  # s, mean of the last 10 RR intervals up to this beat
    "pre_rr_ratio",  # pre_rr / local_rr
    "prev_rr_ratio",  # prev_rr / local_rr
    "pre_rr_long_ratio",  # pre_rr / mean RR of the last 5 minutes
)


@dataclass(frozen=True)
class WindowConfig:
    """How one beat becomes a model input.

    The window is ``pre_s`` seconds before the R peak to ``post_s`` seconds after it,
    sampled at ``fs`` Hz from lead ``lead``, filtered by the causal ``ecg_clean``
    (``highpass_hz``/``lowpass_hz``) and normalised per window so that ADC gain and offset
    do not matter. ``post_s`` is also the least latency a stream can have.
    """

    fs: float = 180.0
    lead: str = "MLII"
    pre_s: float = 1.5
    post_s: float = 1.0
    highpass_hz: float = 0.5
    lowpass_hz: float = 40.0
    normalise: str = "robust"  # "robust": (x - median) / (MAD-based scale); "zscore"
    rr_features: tuple[str, ...] = RR_FEATURES

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
        unknown = [f for f in self.rr_features if f not in RR_FEATURES]
        if unknown:
            raise ConfigError(f"unknown RR feature {unknown[0]!r}; known: {', '.join(RR_FEATURES)}")


@dataclass(frozen=True)
class ModelConfig:
    """The network. ``arch`` is ``cnn_lstm`` (the product), ``cnn`` or ``lstm`` (ablations)."""

    arch: str = "cnn_lstm"
    conv_filters: tuple[int, ...] = (16, 24, 32)
    conv_kernel: int = 7
    pool: int = 2
    lstm_units: int = 32
    dense_units: int = 32
    dropout: float = 0.2
    use_rr: bool = True

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise ConfigError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHES)}")


ARCHES: tuple[str, ...] = ("cnn_lstm", "cnn", "lstm")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation. Real noise comes from nstdb's first 15 minutes only."""

    enabled: bool = True
    noise_prob: float = 0.5
    snr_db_range: tuple[float, float] = (0.0, 24.0)
    noise_types: tuple[str, ...] = ("em", "ma", "bw")
    noise_minutes: float = 15.0  # first N minutes of each nstdb noise record; the rest is for tests
    wander_prob: float = 0.3
    scale_range: tuple[float, float] = (0.7, 1.4)
    shift_max_s: float = 0.03
    rate_jitter: float = 0.03


@dataclass(frozen=True)
class TrainConfig:
    """The schedule. Validation holds out whole DS1 records (patient-wise)."""

    epochs: int = 30
    batch_size: int = 256
    learning_rate: float = 2e-3
    seed: int = 0
    qat: bool = True
    qat_epochs: int = 4
    imbalance: str = "class_weight"  # "class_weight" | "balanced_sampling" | "focal" | "none"
    val_records: tuple[str, ...] = ("101", "106", "118", "201", "207", "209")
    early_stopping_patience: int = 5


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


def load_config(path: str | Path, cls: type[T] = RunConfig) -> T:  # type: ignore[assignment]
    """Read a JSON (``.json``) or TOML (``.toml``) config file into ``cls``, strictly."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # json.JSONDecodeError, tomllib.TOMLDecodeError
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    return from_dict(cls, data, where=path.name)
