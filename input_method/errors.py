"""Exceptions for expected failures; the CLI prints their message as one line."""

from __future__ import annotations


class InputMethodError(Exception):
    """Base class: bad input or a missing file, never a bug."""


class CorpusError(InputMethodError):
    """A corpus file cannot be read, or yields no usable text."""


class ModelNotFoundError(InputMethodError):
    """No trained model where one was expected."""


class CheckpointError(InputMethodError):
    """A checkpoint is truncated, corrupted, or does not match its vocabulary."""


class TrainingError(InputMethodError):
    """Training cannot go on (for example, the loss became NaN)."""
