"""Stop requests (Ctrl-C, SIGTERM) that a run cannot lose.

The command line's signal handler records the request here and raises ``KeyboardInterrupt``.
Python drops an exception raised where it cannot propagate: in a garbage-collector callback (JAX
registers one), a finaliser or a weakref callback it prints "Exception ignored" and carries on,
and a run would then ignore the signal and go to its end. So the run loop also calls ``check()``
after every generation, which raises ``KeyboardInterrupt`` again while a request stands: a lost
signal costs one generation, and the run still stops with its checkpoint saved.
"""

from __future__ import annotations

_state: dict[str, int] = {}


def request(signum: int) -> None:
    """Record a stop request (the signal's number; the exit status is 128 + it)."""
    _state["signal"] = signum


def requested() -> int | None:
    """The signal of the standing stop request, or None."""
    return _state.get("signal")


def clear() -> None:
    _state.clear()


def check() -> None:
    """Raise ``KeyboardInterrupt`` if a stop was requested."""
    if "signal" in _state:
        raise KeyboardInterrupt


def stop_once(signum, frame) -> None:
    """A launcher worker's signal handler: the first request raises ``KeyboardInterrupt`` (the
    run writes its checkpoint and stops); later ones are only recorded, since Ctrl-C reaches a
    worker and the command forwards its own stop to it too, and a second interrupt must not cut
    the checkpoint being written."""
    first = requested() is None
    request(signum)
    if first:
        raise KeyboardInterrupt
