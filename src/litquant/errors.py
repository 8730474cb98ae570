"""The errors litquant's commands report to the user, and the exit code each gets.

An error in what the user gave (an option, a file, the data) is printed as one line that says what to do, with exit
code 2; anything else is a bug or a failure of the machine and exits 1 with its traceback kept.
"""

from __future__ import annotations

__all__ = ["USER_ERRORS", "FitComplete", "UserError", "exit_code"]


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""


class FitComplete(Exception):
    """A resumed fit that has nothing left to train: its message is printed, exit code 0, nothing written."""


#: Errors in what the user gave (options, files, data): one line and exit code 2; anything else exits 1.
#: ``litquant.data``'s ``DataError`` is a ``UserError``.
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, ValueError, OSError)



def exit_code(error: Exception) -> int:
    """The exit code of a command that failed with ``error``: 2 for :data:`USER_ERRORS`, else 1."""
    return 2 if isinstance(error, USER_ERRORS) else 1
