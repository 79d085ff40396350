"""Errors raised for bad user input: they always name the offending file and the problem."""

from __future__ import annotations

import os

__all__ = ["InputError"]


class InputError(ValueError):
    """A user-supplied file or value cannot be used.

    The message reads ``"<path>: <problem>"`` so that a user can find the file at once.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = None if path is None else os.fspath(path)
        self.problem = problem
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")
