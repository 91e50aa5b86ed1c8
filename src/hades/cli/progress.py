"""Progress on stderr: a tqdm bar over generations for runs (with --track mirroring), bars over
stages for work done in single compiled calls, bars per file or frame; --quiet draws none."""

from __future__ import annotations

import sys
from pathlib import Path

from hades.config import DistillConfig


def _progress(args) -> _Progress:
    """The progress reporter a run command's flags ask for (--quiet, --track, --wandb-*)."""
    return _Progress(args.quiet, args.track, (args.wandb_project, args.wandb_entity))


class _Progress:
    """A tqdm bar over generations: fitness, best candidate, last evaluated return, elapsed time."""

    def __init__(self, quiet: bool, track: str | None = None, wandb: tuple = (None, None), nested: bool = False):
        self.quiet, self.bar, self.eval, self.evaluated = quiet, None, None, False
        self.nested = nested  # under another bar (hades tune's trials): lines through tqdm, bar cleared when done
        self.wandb = wandb  # (project, entity)
        self.eval_key = "eval_return_mean"
        self.track, self.tracker = track, None
        if track:
            from hades.tracking import check

            check(track)  # before anything runs

    def start(self, cfg, out, start_generation):
        if self.track:
            from hades.tracking import Tracker

            name = f"{Path(out).parent.name}/{Path(out).name}"
            self.tracker = Tracker(self.track, out, cfg.to_dict(), name, *self.wandb)
        self.eval, self.evaluated = None, False
        if self.quiet:
            return
        from tqdm import tqdm

        if isinstance(cfg, DistillConfig):
            what = f"{cfg.variant} on {cfg.env}"
        else:
            what, self.eval_key = f"{cfg.model} on {cfg.dataset}", "eval_accuracy_mean"
        self._say(f"hades: {what}, population {cfg.es.population}, {cfg.generations} generations -> {out}")
        self.bar = tqdm(
            total=cfg.generations,
            initial=start_generation,
            unit="gen",
            dynamic_ncols=True,
            file=sys.stderr,
            desc="compiling",
            leave=not self.nested,
        )

    def _say(self, line: str) -> None:
        if self.nested:
            from tqdm import tqdm

            tqdm.write(line, file=sys.stderr)  # above the bars, which stay drawn below
        else:
            print(line, file=sys.stderr)

    def evaluating(self, generation):
        if self.bar is not None and not self.bar.disable:
            self.bar.set_description("evaluating" if self.evaluated else "compiling evaluation", refresh=True)
        elif self.bar is not None:  # the bar closed with the last generation: the final evaluation
            self._say("hades: final evaluation")
        self.evaluated = True

    def generation(self, row):
        if self.tracker is not None:
            self.tracker.row(row)
        if self.bar is None:
            return
        from hades.report import number  # deferred: hades.report imports JAX

        if row.get(self.eval_key) is not None:
            self.eval = row[self.eval_key]
        post = {"fit": number(row["fitness_mean"]), "max": number(row["fitness_max"])}
        if self.eval is not None:
            post["eval"] = number(self.eval)
        self.bar.set_description("gen", refresh=False)
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)
        if self.bar.n >= self.bar.total:
            self.bar.close()

    def finish(self, out, summary):
        from hades.plots import run_figures

        pictures = run_figures(out)
        if self.tracker is not None:
            self.tracker.finish(summary, pictures)
            self.tracker = None


def _bar(total: int, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True)


class _ClusterBar:
    """Cells (or trials) on a cluster: done / running / failed of the total, as the launcher
    reports them; call it with ``(done, running, failed, total)``."""

    def __init__(self, total: int, unit: str = "cell"):
        self.bar = _bar(total, unit)

    def __call__(self, done: int, running: int, failed: int, total: int) -> None:
        self.bar.n = done
        self.bar.set_postfix_str(f"{running} running, {failed} failed", refresh=True)

    def close(self) -> None:
        self.bar.close()


class _Stages:
    """A progress bar over the stages of work done in single compiled calls (train, merge
    --evaluate, transfer): ``stages(text)`` ends the previous stage and starts ``text``; the
    elapsed time ticks every second while a stage runs (nothing inside a compiled call can report
    finer progress). Quiet: nothing is drawn."""

    def __init__(self, total: int, quiet: bool = False, unit: str = "stage"):
        self.bar, self.stop = None, None
        if quiet:
            return
        import threading

        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, desc="hades")
        self.stop = threading.Event()
        self.started = False

        def tick():
            while not self.stop.wait(1.0):
                self.bar.refresh()

        threading.Thread(target=tick, daemon=True).start()

    def __call__(self, text: str) -> None:
        if self.bar is None:
            return
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description_str(text)

    def write(self, line: str) -> None:
        """A line above the bar (none when quiet)."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.stop.set()
            if self.started:
                self.bar.update(1)
            self.bar.close()


class _Bars:
    """Progress bars made on first report, one per key (a file, a stage): ``bars(key, done, total)``
    moves ``key``'s bar to ``done``; ``close()`` ends them all. Quiet: nothing is drawn."""

    def __init__(self, quiet: bool = False, **tqdm_options):
        self.quiet, self.options, self.bars = quiet, tqdm_options, {}

    def __call__(self, key: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if key not in self.bars:
            from tqdm import tqdm

            self.bars[key] = tqdm(total=total, desc=key, file=sys.stderr, **self.options)
        self.bars[key].update(done - self.bars[key].n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _close_bars() -> None:
    """End any progress bar's line, so the error that follows starts a line of its own."""
    try:
        from tqdm import tqdm
    except ImportError:
        return
    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()
