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
