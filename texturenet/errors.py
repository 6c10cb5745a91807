"""The one exception type for mistakes a user can fix (bad paths, bad files, bad options)."""


class TexturenetError(Exception):
    """A user-facing error: the command line prints its message as one line and exits non-zero.

    The message says what is wrong and what to do; no traceback is shown for it.
    """
