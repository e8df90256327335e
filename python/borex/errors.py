"""borex's exceptions.

Every error the native library reports arrives as a subclass of
:class:`BorexError`, carrying the library's one-line message. Each subclass
also derives from the built-in exception a Python user would catch for that
kind of problem (``ValueError`` for bad arguments, ``FileNotFoundError`` for
a missing file, ``RuntimeError`` for failures of ONNX Runtime or the GPU), so
``except ValueError`` works as well as ``except borex.BorexError``.
"""

from __future__ import annotations

__all__ = [
    "BorexError",
    "BorexIOError",
    "BorexRuntimeError",
    "ImageError",
    "InternalError",
    "InvalidInputError",
    "MissingFileError",
    "ModelError",
]


class BorexError(Exception):
    """Base class of every error borex raises."""


class InvalidInputError(BorexError, ValueError):
    """A bad argument: an array of the wrong dtype or shape, an unknown method,
    class or setting, a value out of range, a non-finite prior."""


class ImageError(BorexError, ValueError):
    """A file that is not a readable image (unknown format, truncated, too large)."""


class ModelError(BorexError, ValueError):
    """A model file (or its labels) that borex cannot use: not ONNX, wrong inputs or outputs; or a
    model callable that raised or returned unusable scores (its exception is the ``__cause__``)."""


class MissingFileError(BorexError, FileNotFoundError):
    """A file or folder that does not exist."""


class BorexIOError(BorexError, OSError):
    """Any other file-system error (permissions, a full disk)."""


class BorexRuntimeError(BorexError, RuntimeError):
    """ONNX Runtime or the GPU failed, or no GPU adapter was found for ``device="gpu"``."""


class InternalError(BorexError, RuntimeError):
    """A bug in borex (a Rust panic, caught before it could reach the interpreter)."""
