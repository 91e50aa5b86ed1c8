"""The one exception type a user of hades should ever see.

Everything that is the user's mistake (unknown environment, corrupt artifact, bad option) is
raised as :class:`HadesError` with a one-line message; the CLI prints it and exits non-zero.
Anything else escaping the library is a bug.
"""


class HadesError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class HadesWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it in one line)."""


def did_you_mean(name: str, choices, n: int = 2) -> str:
    """The hint for a mistyped name: ``"; did you mean X or Y?"``, or ``""`` when nothing is close.

    Names are compared without case and separators (``cmaes`` finds ``CMA_ES``, ``breakout`` finds
    ``Breakout-MinAtar``). A choice is close when difflib's ratio is at least 0.75 or it contains
    the whole name (3 characters or more); a looser cutoff hints at unrelated names (``nope`` ->
    ``hopper``).
    """
    import difflib
    import re

    def fold(s: str) -> str:
        return re.sub(r"[-_/. ]", "", str(s).lower())

    folded: dict[str, str] = {}
    for choice in choices:
        folded.setdefault(fold(choice), choice)
    query = fold(name)
    close = [folded[k] for k in difflib.get_close_matches(query, folded, n=n, cutoff=0.75)]
    if len(query) >= 3:
        close += [c for k, c in folded.items() if query in k and c not in close]
    return f"; did you mean {' or '.join(close[:n])}?" if close else ""


# what to do about a generation larger than memory: the formula check, the compiled step's and XLA's refusal
MEMORY_ADVICE = (
    "lower --population, --chunk, --width or --dataset-size; CMA_ES and xNES hold matrices of "
    "(searched numbers)^2, so search many numbers with SNES or Sep_CMA_ES"
)


def out_of_memory(e: BaseException) -> str | None:
    """The one line for an allocation XLA refused (``RESOURCE_EXHAUSTED``: a generation, or an ES
    state, larger than the device's memory); None for any other error."""
    import re

    text = str(e)
    if not isinstance(e, RuntimeError) or "RESOURCE_EXHAUSTED" not in text:
        return None
    size = re.search(r"allocating (\d+) bytes", text)
    at_once = f" ({int(size.group(1)) / 2**30:.3g} GiB in one allocation)" if size else ""
    return f"out of memory{at_once}: {MEMORY_ADVICE}"
