"""Errors raised for bad user input: they always name the offending file and the problem."""

from __future__ import annotations

import os
import sys

__all__ = ["InputError", "input_error_behind", "install_excepthook"]


class InputError(ValueError):
    """A user-supplied file or value cannot be used.

    The message reads ``"<path>: <problem>"`` so that a user can find the file at once.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")


def input_error_behind(error: BaseException | None) -> str | None:
    """The message of the :class:`InputError` behind ``error``, or None.

    Looks through the chain of causes (MONAI re-raises a transform's or a config expression's error as a
    ``RuntimeError`` from it) and through the text of errors re-raised from DataLoader workers, which
    carry the original only as a formatted traceback.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, InputError):
            return str(error)
        text = str(error)
        marker = f"{InputError.__module__}.{InputError.__name__}: "
        if "Caught InputError" in text and marker in text:
            return text.rsplit(marker, 1)[1].strip()
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _report_input_error_last(exc_type, exc, tb, previous=sys.__excepthook__) -> None:
    previous(exc_type, exc, tb)
    message = None if isinstance(exc, InputError) else input_error_behind(exc)
    if message is not None:
        sys.stderr.write(f"\n{InputError.__name__}: {message}\n")


def install_excepthook() -> None:
    """Repeat the input problem behind an uncaught error as the last thing printed.

    The traceback of a bundle run ends in MONAI's wrappers (``Failed to evaluate ConfigExpression``,
    ``applying transform ...``) with the file and its problem tens of lines above. Only the interpreter's
    default hook is replaced, so debuggers and notebooks keep their own.
    """
    if sys.excepthook is sys.__excepthook__:
        sys.excepthook = _report_input_error_last
