"""Typed errors. Every message is one line that says what went wrong and how to fix it.

`InputError` and its subclasses are the caller's fault (bad file, bad option): the CLI exits 2 and the
app shows the message. Anything else is a bug: the CLI exits 1.
"""

from __future__ import annotations


class ForensicsError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(ForensicsError):
    """The input cannot be analysed as given (CLI exit code 2)."""


class NotAVideoError(InputError):
    """The file is not a video or image that OpenCV can decode."""


class CorruptVideoError(InputError):
    """The file looks like a video but its frames cannot be decoded."""


class EmptyVideoError(InputError):
    """The video decodes but holds no frames."""


class InputTooLargeError(InputError):
    """The file is over the configured size or duration cap."""


class WeightsError(ForensicsError):
    """Weights and their JSON sidecar are missing, inconsistent or do not fit the architecture."""


class MissingDependencyError(ForensicsError):
    """An optional package that the chosen option needs is not installed (the message says how to install it)."""
