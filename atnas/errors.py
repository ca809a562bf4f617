"""Typed errors of the atnas library. Every error carries a message a user can act on."""

from __future__ import annotations


class AtnasError(Exception):
    """Base class of every error raised on purpose by atnas."""


class DatasetError(AtnasError):
    """A dataset cannot be read or does not fit the request (names the file or class)."""


class EncodeError(AtnasError):
    """An architecture encode is malformed or not valid in its search space."""


class ConfigError(AtnasError):
    """A configuration value is out of range or inconsistent."""


class CheckpointError(AtnasError):
    """A checkpoint is missing, corrupt or does not match the run it should resume."""


class Cancelled(AtnasError):
    """The caller asked a long-running loop to stop (raised from a progress callback)."""


class ConstraintError(ConfigError):
    """A cost constraint that no encode of the search space can meet (names the smallest cost)."""
