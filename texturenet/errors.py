"""User-facing messages: the one exception type for mistakes a user can fix, the one way to print a file name in them, and to list a few names."""
from __future__ import annotations

import os

_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class TexturenetError(Exception):
    """A user-facing error: the command line prints its message as one line and exits non-zero.

    The message says what is wrong and what to do; no traceback is shown for it.
    """


def printable(name: str | bytes | os.PathLike) -> str:
    """A file name as it may appear in a log line, a CSV or an error: every character that is not printable escaped.

    Why: a file name may hold any byte but ``/`` and NUL. Printed raw, escape sequences in it set
    the terminal's title or colours, and a newline forges log lines ("saved fake.pth") (issue 21,
    case 20). Control, format (e.g. right-to-left overrides), separator and unassigned characters
    become Python-style escapes (``\\n``, ``\\x1b``, ``\\u202e``), a byte that is not UTF-8 ``\\xff``,
    and a backslash ``\\\\`` so that an escape is never ambiguous; letters in any script, accents and
    spaces print as they are, so ordinary names read as before.
    """
    text = os.fsdecode(name) if isinstance(name, (bytes, os.PathLike)) else str(name)
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(character) for character in text)


def _escape(character: str) -> str:
    if character in _ESCAPES:
        return _ESCAPES[character]
    if character.isprintable():
        return character
    code = ord(character)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8, as os.fsdecode keeps it (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def first_few(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, and how many more there are."""
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")
