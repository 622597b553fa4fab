"""The one exception type for user mistakes.

Anything a user can cause (a missing file, a wrong sample rate, a mistyped config key) is
raised as :class:`EdgeEcgError` with a message that names the thing and the problem in one
line. The CLI prints it as ``Error: <message>`` and exits non-zero, without a traceback.
Programming errors stay ordinary exceptions and keep their tracebacks.
"""


class EdgeEcgError(Exception):
    """A user-facing error: one clear line, no traceback."""


class DataError(EdgeEcgError):
    """Missing, corrupt or unexpected ECG data."""


class ConfigError(EdgeEcgError):
    """A configuration file or option that does not fit."""


class ModelError(EdgeEcgError):
    """A model file that is missing, malformed or does not fit the pipeline."""


class DeviceError(EdgeEcgError):
    """A serial device that is missing, busy, or not allowed."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-blank line of ``exc``'s message (its type name when empty), cut to ``limit``
    characters: a library's multi-line error as part of an :class:`EdgeEcgError` message."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
