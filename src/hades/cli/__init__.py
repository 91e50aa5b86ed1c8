"""The ``hades`` command line: ``main`` and the parser, assembled from one module per group of
commands (runs, datasets, browse), each command's options beside its handler. Options are
generated from the config dataclasses (config.py), so every knob is written once. User mistakes
end in one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings

from hades import stopping
from hades.cli import browse, datasets, runs
from hades.cli.options import _Parser
from hades.cli.progress import _close_bars
from hades.config import DistillConfig, ImageDistillConfig
from hades.errors import HadesError, HadesWarning, out_of_memory
from hades.presets import IMAGE_PRESETS, PRESETS, make_config, make_image_config


def build_parser(preset: str | None = None) -> argparse.ArgumentParser:
    """The command line; with ``preset``, the run commands' --help shows that preset's values."""
    from hades import __version__

    rl_defaults, image_defaults, shown = DistillConfig(), ImageDistillConfig(), ""
    try:
        if preset in PRESETS:
            rl_defaults, shown = make_config(preset), preset
        elif preset in IMAGE_PRESETS:
            image_defaults, shown = make_image_config(preset), preset
    except HadesError:
        pass

    p = _Parser(prog="hades", description="Behaviour distillation with evolution strategies (HaDES).")
    p.add_argument("--version", action="version", version=f"hades {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in (runs, datasets, browse):
        module.add_parsers(sub, rl_defaults, image_defaults, shown)
    return p


def _one_line_warnings() -> None:
    """hades' own warnings as one line each (``hades: warning: ...``), the rest as Python shows them."""
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, HadesWarning):
            print(f"hades: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    wanted = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--preset"), None)
    wanted = wanted or next((a.split("=", 1)[1] for a in argv if a.startswith("--preset=")), None)
    help_asked = any(a in ("-h", "--help") for a in argv)
    args = build_parser(wanted if help_asked else None).parse_args(argv)
    from hades.devices import float32_matmuls, use_host_cores

    use_host_cores()  # before JAX starts: split populations over the CPU cores
    commands = {**runs.COMMANDS, **datasets.COMMANDS, **browse.COMMANDS}
    stopping.clear()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    unraisable, sys.unraisablehook = sys.unraisablehook, _unraisable
    signal.signal(signal.SIGTERM, _terminate)  # schedulers stop jobs with SIGTERM: save, then exit 143
    signal.signal(signal.SIGINT, _terminate)  # Ctrl-C likewise, recorded so a swallowed interrupt still stops
    _one_line_warnings()
    try:
        given_env = getattr(args, "env", None)
        if isinstance(given_env, str) and ":" in given_env:  # the user's own word: this code may run
            from hades.envs import trust

            trust(given_env)
        with float32_matmuls():  # float32 dots in float32 on GPUs and TPUs too (JAX's default: TF32, bf16)
            return commands[args.command](args)
    except HadesError as e:
        _close_bars()
        print(f"hades: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (`hades ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a full disk, a read-only or missing directory, no permission: one line
        _close_bars()
        where = f"{e.filename}: " if e.filename else ""
        why = e.strerror or str(e)
        if isinstance(e, FileExistsError) and e.filename and not os.path.isdir(e.filename):
            why = "exists and is not a directory (an --out names a directory)"  # mkdir on a file
        print(f"hades: error: {where}{why}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # XLA refused an allocation: one line; any other error is a bug
        if (line := out_of_memory(e)) is None:
            raise
        _close_bars()
        print(f"hades: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        from hades.runs import Interrupted

        code = 128 + (stopping.requested() or signal.SIGINT)
        if isinstance(e, Interrupted) and args.command in ("reproduce", "sweep-size", "tune"):
            print(f"hades: interrupted; {e} (run the same command again to continue)", file=sys.stderr)
        elif isinstance(e, Interrupted):
            print(f"hades: interrupted; {e} (continue with --resume {e.out})", file=sys.stderr)
        else:
            print("hades: interrupted before anything was saved", file=sys.stderr)
        return code
    finally:  # in-process callers (tests, notebooks) get their handlers back and no standing request
        stopping.clear()
        sys.unraisablehook = unraisable
        for sig, handler in handlers.items():
            if handler is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(sig, handler)


def _unraisable(info) -> None:
    """Python's report of an exception it had to drop: silent for the interrupt of a recorded stop
    request (raised inside JAX's garbage-collector callback, say), which the run loop acts on after
    the generation; any other goes to Python's own report."""
    if isinstance(info.exc_value, KeyboardInterrupt) and stopping.requested() is not None:
        return
    sys.__unraisablehook__(info)


def _terminate(signum, frame):
    stopping.request(signum)  # kept: the run loop raises again if this exception is swallowed
    raise KeyboardInterrupt
