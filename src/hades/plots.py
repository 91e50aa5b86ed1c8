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


def learning_curve(rows: list[dict], path, title: str = "", eval_key: str = "eval_return_mean") -> None:
    """Population fitness (mean, min-max band) and the mean dataset's evaluation (``eval_key``)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if rows:
        g = [r["generation"] for r in rows]
        ax.fill_between(g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows],
                        alpha=0.2, label="population min-max")
        ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean")
        ev = [(r["generation"], r[eval_key]) for r in rows if r.get(eval_key) is not None]
        if ev:
            ax2 = ax if eval_key == "eval_return_mean" else ax.twinx()
            ax2.plot(*zip(*ev), "o-", color="C3", label=f"mean dataset ({eval_key.removeprefix('eval_')})")
            ax2.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def image_grid(rows: list, row_labels: list[str], path, col_labels=None) -> None:
    """Rows of images ([n, H, W, 1] or [n, H, W]) side by side, one row per array."""
    import numpy as np

    plt = _plt()
    n = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.25 * len(rows)), squeeze=False)
    for i, (imgs, label) in enumerate(zip(rows, row_labels)):
        for j in range(n):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(np.clip(np.asarray(imgs[j]).squeeze(), 0, 1), cmap="gray", vmin=0, vmax=1)
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
            if i == 0:
                ax.set_title(str(col_labels[j]) if col_labels else str(j), fontsize=8)
    _save(fig, path)
