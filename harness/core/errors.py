"""The one exception type for user mistakes, and the pieces of its messages.

The CLI prints a UserError's message on one line and exits 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in what the user asked for (name, setting, path), not a bug in the harness."""


class DiskFull(UserError):
    """A file could not be written for lack of room: a full disk, a quota or a file-size limit
    (ENOSPC, EDQUOT, EFBIG). The user's to fix, so it is one error line, not a traceback."""


def one_line(err: BaseException, limit: int = 240) -> str:
    """An exception's message on one line (library errors are often multi-line)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest of `choices`, or '' when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
