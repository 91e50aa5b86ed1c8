"""Figures (matplotlib, Agg backend, imported only when a figure is drawn)."""

from __future__ import annotations

import io
from pathlib import Path

from hades.artifacts import atomic_write


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    _plt().close(fig)
    atomic_write(Path(path), buf.getvalue())


def learning_curve(rows: list[dict], path, title: str = "") -> None:
    """Population fitness (mean, min-max band) and the mean dataset's evaluated return."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if rows:
        g = [r["generation"] for r in rows]
        ax.fill_between(g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows],
                        alpha=0.2, label="population min-max")
        ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean")
        ev = [(r["generation"], r["eval_return_mean"]) for r in rows if r.get("eval_return_mean") is not None]
        if ev:
            ax.plot(*zip(*ev), "o-", label="mean dataset (eval)")
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)
