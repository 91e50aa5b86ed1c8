"""The one exception type a user of hades should ever see.

Everything that is the user's mistake (unknown environment, corrupt artifact, bad option) is
raised as :class:`HadesError` with a one-line message; the CLI prints it and exits non-zero.
Anything else escaping the library is a bug.
"""


class HadesError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class HadesWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it in one line)."""
