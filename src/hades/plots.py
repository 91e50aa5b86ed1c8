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


def learning_curve(
    rows: list[dict], path, title: str = "", eval_key: str = "eval_return_mean", random: float | None = None
) -> None:
    """Population fitness (mean, min-max band), the mean dataset's evaluation (``eval_key``) and,
    when given, the random policy's return (a dotted line) so "below random" shows."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    if random is not None:
        ax.axhline(random, ls=":", lw=1.2, color="C7", label="random policy")
    if rows:
        g = [r["generation"] for r in rows]
        ax.fill_between(
            g, [r["fitness_min"] for r in rows], [r["fitness_max"] for r in rows], alpha=0.2, label="population min-max"
        )
        ax.plot(g, [r["fitness_mean"] for r in rows], label="population mean")
        ev = [(r["generation"], r[eval_key]) for r in rows if r.get(eval_key) is not None]
        if ev:
            ax2 = ax if eval_key == "eval_return_mean" else ax.twinx()
            measure = eval_key.removeprefix("eval_").removesuffix("_mean").replace("_", " ")
            ax2.plot(*zip(*ev), "o-", ms=4, color="C3", label=f"mean dataset ({measure}, held out)")
            ax2.legend(loc="upper left", fontsize=8)
            if ax2 is not ax:
                ax2.set_ylabel(f"{measure} of the distilled images")
    ax.xaxis.get_major_locator().set_params(integer=True)  # generations are whole numbers
    ax.set_xlabel("generation")
    ax.set_ylabel("fitness (return)" if eval_key == "eval_return_mean" else "fitness (minus training cross-entropy)")
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


X_AXES = {
    "generation": "generation",
    "evaluations": "candidate evaluations",
    "wall_seconds": "wall time (s)",
    "env_steps": "environment steps",
}


def label_colours(labels, fixed: tuple[str, ...] | None = None) -> dict[str, str]:
    """Matplotlib colours (C0, C1, ...) for ``labels``: those in ``fixed`` (default: the methods,
    in a fixed order) by their place there, so a method has one colour in every figure; the rest
    after them, in order of appearance."""
    from hades.config import VARIANTS

    order = list(dict.fromkeys([*(tuple(sorted(VARIANTS)) if fixed is None else fixed), *labels]))
    return {label: f"C{i}" for i, label in enumerate(order)}


def curve_panels(
    panels: dict[str, dict[str, list[list[dict]]]],
    path,
    key: str = "eval_return_mean",
    x: str = "generation",
    reference: dict[str, dict[str, float]] | None = None,
    log_x: bool = False,
) -> dict[str, dict[str, tuple]]:
    """Learning curves, one panel per environment (``{panel: {label: [each seed's metrics rows]}}``):
    a line per label at the mean over its seeds, with the 95% confidence band of that mean
    (Student t) when it has more than one seed. ``x`` is a metrics column (generation, wall
    seconds, environment steps); a seed's curve is read at its own x values and the seeds are
    averaged where all of them have a point (by index for wall time, which differs per seed).
    ``reference`` draws dotted horizontal lines (e.g. the random policy) per panel and label;
    ``log_x`` a logarithmic x axis.
    Colours come from ``label_colours``: a method keeps its colour in every figure.
    Returns what was drawn: ``{panel: {label: (x, mean, ci95 half-width)}}``."""
    import numpy as np

    from hades.report import OWN_INIT
    from hades.stats import ci95

    plt = _plt()
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    n = len(panels)
    cols = min(n, 4) or 1
    rows_ = -(-n // cols) if n else 1
    most = max((len(groups) for groups in panels.values()), default=0)
    legend_rows = -(-most // 2) if most > 4 else 0  # many series: a two-column legend under each panel
    fig, axes = plt.subplots(
        rows_,
        cols,
        # one panel with a legend under it: as wide as that legend, so the axes are not a strip beside it
        figsize=(
            6.4 if cols == 1 and legend_rows else 3.6 * cols,
            (2.8 + 0.16 * legend_rows) * rows_ * (1.25 if legend_rows else 1),
        ),
        squeeze=False,
    )
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    drawn: dict[str, dict[str, tuple]] = {}
    colour = label_colours(label.removesuffix(OWN_INIT) for groups in panels.values() for label in groups)
    for ax, (panel, groups) in zip(axes.ravel(), panels.items()):
        for label, runs in groups.items():
            if x == "env_steps":  # rows count each generation's steps: the axis is their running total
                runs = [[{**r, x: t} for r, t in zip(rows, np.cumsum([r.get(x) or 0 for r in rows]))] for rows in runs]
            series = [[r for r in rows if r.get(key) is not None and r.get(x) is not None] for rows in runs]
            length = min((len(s) for s in series), default=0)
            if not length:
                continue
            xs = np.array([[r[x] for r in s[:length]] for s in series], np.float64).mean(0)
            ys = np.array([[r[key] for r in s[:length]] for s in series], np.float64)
            marker = "o" if length <= 30 else None  # a short series (or a single point) stays visible
            own = label.endswith(OWN_INIT)  # a method's own-init series: its colour, dashed
            (line,) = ax.plot(
                xs,
                ys.mean(0),
                marker=marker,
                ms=3,
                ls="--" if own else "-",
                label=f"{label} (n={len(runs)})",
                color=colour[label.removesuffix(OWN_INIT)],
            )
            half = np.array([ci95(ys[:, j]) for j in range(length)])
            if len(runs) > 1:
                ax.fill_between(xs, ys.mean(0) - half, ys.mean(0) + half, alpha=0.2, color=line.get_color())
            drawn.setdefault(panel, {})[label] = (xs, ys.mean(0), half)
        for j, (name, value) in enumerate((reference or {}).get(panel, {}).items()):
            ax.axhline(value, ls=":", lw=1, color=f"C{7 + j}", label=name)
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel(X_AXES.get(x, x), fontsize=8)
        ax.set_ylabel(key.removeprefix("eval_").replace("_", " "), fontsize=8)
        ax.tick_params(labelsize=7)
        if log_x:
            ax.set_xscale("log")
            lo, hi = ax.get_xlim()
            decades = np.log10(hi / lo) if lo > 0 else 3.0
            subs = (1.0, 2.0, 5.0) if decades <= 1.6 else (1.0, 3.0) if decades <= 3 else (1.0,)
            ax.xaxis.set_major_locator(LogLocator(subs=subs))  # 1-2-5 (or 1-3) steps, labelled plainly
            ax.xaxis.set_minor_formatter(NullFormatter())
        elif x == "generation":
            ax.xaxis.get_major_locator().set_params(integer=True)
        # 10k, 2.5M: five-digit tick labels ran into each other on a 3.6-inch panel
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_number(v)))
        ax.grid(alpha=0.3)
        if legend_rows:  # under the axes and their x label, off the curves
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        else:
            ax.legend(fontsize=6, loc="best")
    fig.tight_layout()  # a row's panel titles clear the x labels of the row above
    _save(fig, path)
    return drawn


def compact_number(v: float) -> str:
    """A tick label: 500, 2500, 12.8k, 2.56M (numbers from 10,000 on in thousands or millions)."""
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


MAX_DRAWN_STATES, MAX_DRAWN_FEATURES, MAX_DRAWN_PANELS = 512, 512, 2048


def dataset_figure(states, actions, path, feature_names=None, channel_names=None, title: str = "") -> None:
    """A readable picture of a dataset: a feature heatmap with action labels (vector states), the
    state channels as small images (MinAtar), or the image grid (image datasets)."""
    import numpy as np

    from hades.errors import HadesError

    states, actions = np.asarray(states), np.asarray(actions)
    flat_size = int(np.prod(states.shape[1:])) if states.ndim > 1 else 1
    panels = states.shape[0] * (states.shape[-1] if states.ndim == 4 and states.shape[-1] > 1 else 1)
    if (
        states.shape[0] > MAX_DRAWN_STATES
        or panels > MAX_DRAWN_PANELS
        or (states.ndim < 4 and flat_size > MAX_DRAWN_FEATURES)
    ):
        raise HadesError(
            f"a dataset of {states.shape[0]} states x {flat_size} values is too large to draw "
            f"(at most {MAX_DRAWN_STATES} states, {MAX_DRAWN_FEATURES} features); "
            "read it with safetensors.numpy.load_file"
        )
    plt = _plt()
    if states.ndim == 4 and states.shape[-1] == 1:  # images, one per class
        image_grid([states], ["distilled"], path, col_labels=[str(a) for a in actions])
        return
    if states.ndim == 4:  # [N, H, W, C] channel images
        n, _, _, c = states.shape
        fig, axes = plt.subplots(n, c, figsize=(1.0 * c, 1.0 * n + 0.5), squeeze=False)
        for i in range(n):
            for j in range(c):
                ax = axes[i][j]
                ax.imshow(states[i, :, :, j], cmap="viridis")
                ax.set_xticks([])
                ax.set_yticks([])
                if i == 0:
                    ax.set_title(channel_names[j] if channel_names else f"ch {j}", fontsize=7)
                if j == 0:
                    ax.set_ylabel(f"a={_action_text(actions[i])}", fontsize=7)
        height = 1.0 * n + 0.5
        fig.subplots_adjust(top=1 - 0.65 / height, hspace=0.15)
        fig.suptitle(title, fontsize=9, y=1 - 0.1 / height)
        _save(fig, path)
        return
    flat = states.reshape(len(states), -1)
    names = (
        list(feature_names)
        if feature_names and len(feature_names) == flat.shape[1]
        else [f"x{j}" for j in range(flat.shape[1])]
    )
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * flat.shape[1], 0.8 + 0.35 * len(flat)))
    scale = np.abs(flat).max() or 1.0
    im = ax.imshow(flat, cmap="coolwarm", vmin=-scale, vmax=scale, aspect="auto")
    if flat.size <= 1024:  # values written in the cells while they can be read
        for i in range(flat.shape[0]):
            for j in range(flat.shape[1]):
                ax.text(j, i, f"{flat[i, j]:.2g}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(flat)))
    ax.set_yticklabels([f"a={_action_text(a)}" for a in actions], fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.04)
    ax.set_title(title, fontsize=9)
    _save(fig, path)


def _action_text(a) -> str:
    import numpy as np

    a = np.asarray(a)
    return str(int(a)) if a.ndim == 0 else ",".join(f"{x:.2g}" for x in a)


def transfer_figure(results: dict[str, tuple[list[dict], tuple | None]], path, title: str = "") -> None:
    """Return distributions per policy architecture (paper Fig. 4: per width; with several
    activations or depths, per width x activation x depth), one colour per dataset side by side:
    every trained policy a dot, the top half of each group solid, the bottom half faded, a box over
    all of them; the architecture each dataset was evolved for is starred on the axis."""
    import numpy as np

    from hades.transfer import group_label, group_of

    plt = _plt()
    groups = sorted({group_of(r) for rows, _ in results.values() for r in rows}, key=lambda g: (g[2], g[1], g[0]))
    full = len({g[1:] for g in groups}) > 1  # activations or depths vary: label them
    k = len(results)
    fig, ax = plt.subplots(figsize=(1.0 + (1.3 if full else 1.1) * len(groups) * max(1, k * 0.7), 3.8))
    rng = np.random.default_rng(0)
    span = 0.8 / k
    stars = []
    for d, (label, (rows, own)) in enumerate(results.items()):
        color = f"C{d}"
        for i, g in enumerate(groups):
            r = np.sort([x["return"] for x in rows if group_of(x) == g])
            if not len(r):
                continue
            x0 = i - 0.4 + span * (d + 0.5)
            ax.boxplot(
                [r],
                positions=[x0],
                widths=span * 0.8,
                showfliers=False,
                medianprops={"color": color},
                boxprops={"color": color, "alpha": 0.5},
                whiskerprops={"color": color, "alpha": 0.5},
                capprops={"color": color, "alpha": 0.5},
            )
            jitter = rng.uniform(-span * 0.3, span * 0.3, len(r))
            half = len(r) // 2
            ax.scatter(x0 + jitter[:half], r[:half], s=6, color=color, alpha=0.2)
            ax.scatter(
                x0 + jitter[half:],
                r[half:],
                s=8,
                color=color,
                alpha=0.9,
                label=f"{label} (top half solid)" if i == 0 else None,
            )
            if own is not None and tuple(own) == g:
                stars.append((x0, color))
    if stars:  # inside the axes, in a strip below the data, and named in the legend
        lo, hi = ax.get_ylim()
        strip = lo - 0.08 * (hi - lo)
        ax.set_ylim(strip - 0.05 * (hi - lo), hi)
        for j, (x0, color) in enumerate(stars):
            ax.plot([x0], [strip], ls="none", marker="*", color=color, markersize=12,
                    label="evolved for (not a result)" if j == 0 else None)  # fmt: skip
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([group_label(g, full).replace(" ", "\n") for g in groups], fontsize=8 if full else None)
    what = "width, activation, hidden layers" if full else "policy width"
    ax.set_xlabel(f"{what} (star: the learner the dataset was evolved for)")
    ax.set_ylabel("return")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)  # beside the data
    _save(fig, path)


def merge_figure(result: dict, path, title: str = "") -> None:
    """Multi-task evaluation (paper Fig. 5): per environment, the returns of agents trained on the
    task's own dataset, on the merged dataset, and of untrained policies, with 95% intervals over
    policies where the result has them; the merged agents' normalised return in the title."""
    plt = _plt()
    tasks = result["tasks"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.4), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        values = [t["random_return"], t["single_task_return"], t["multi_task_return"]]
        ci = [t.get(f"{k}_ci95") for k in ("random", "single_task", "multi_task")]
        yerr = [c if c is not None and c == c else 0.0 for c in ci]  # no bar for a missing or nan interval
        ax.bar(["untrained", "own dataset", "merged"], values, yerr=yerr, capsize=3, color=["0.7", "C0", "C1"])
        norm = t["normalised_return"]
        ax.set_title(t["env"] + (f"\nmerged: normalised return {norm:.2f}" if norm is not None else ""), fontsize=9)
        ax.set_ylabel("return")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(title, fontsize=9, y=1.04)
    fig.tight_layout()
    _save(fig, path)


def size_sweep_figure(rows: list[dict], path, title: str = "") -> None:
    """Final return against the dataset size: with several seeds (rows from ``size_sweep_seeds``)
    the mean over seeds with its 95% interval, each seed's return as a dot and HaDES-F's own-init
    return dashed; with one seed, the mean and std over its evaluation episodes. The random
    policy's return is dotted."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 3.4))
    # x: the states BC trains on (the official label layout keeps dataset_size // A per action)
    sizes = [r.get("states") or r["dataset_size"] for r in rows]
    means = [r["final_return_mean"] for r in rows]
    seeds = rows[0].get("seeds") or []
    if len(seeds) > 1:
        ci = [r["final_return_ci95"] or 0.0 for r in rows]
        ax.errorbar(
            sizes, means, yerr=ci, marker="o", capsize=3, label=f"fresh inits (mean, 95% CI, {len(seeds)} seeds)"
        )
        for size, r in zip(sizes, rows):
            ax.scatter(
                [size] * len(r["final_return_per_seed"]),
                r["final_return_per_seed"],
                s=8,
                c="C0",
                alpha=0.4,
            )
        if all(r.get("own_init_return_mean") is not None for r in rows):
            ax.plot(sizes, [r["own_init_return_mean"] for r in rows], "--", marker="s", c="C1", label="own init (mean)")
    else:
        std = [r["final_return_std"] for r in rows]
        ax.errorbar(sizes, means, yerr=std, marker="o", capsize=3, label="final return (std over episodes)")
    random = [r.get("random_return_mean") for r in rows]
    if all(v is not None for v in random):
        ax.axhline(float(np.mean(random)), ls=":", c="grey", label="random policy")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes)
    ax.set_xticklabels([str(s) for s in sizes])
    asked = [r["dataset_size"] for r in rows]
    ax.set_xlabel(
        "dataset size (state-action pairs)"
        if asked == sizes
        else f"state-action pairs trained on (--dataset-size {','.join(map(str, asked))}; official label layout)"
    )
    ax.set_ylabel("final return")
    ax.set_title(title, fontsize=9)
    # under the axes and their x label: above them it covered the own-init line
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    ax.grid(alpha=0.3)
    _save(fig, path)


def run_figures(out) -> list[Path]:
    """Draw a finished or running run directory's figures from its files: ``learning_curve.png``
    and, for an image run, ``images.png`` (the distilled images above the class means)."""
    from hades.rundir import read_run

    run_dir = read_run(out)
    out, cfg, images = run_dir.path, run_dir.config, run_dir.images
    title = f"{cfg['dataset']} {cfg['model']}" if images else f"{cfg['env']} {cfg['variant']}"
    eval_key = "eval_accuracy_mean" if images else "eval_return_mean"
    random = run_dir.summary.get("random_return_mean") if run_dir.finished and not images else None
    learning_curve(run_dir.metrics(), out / "learning_curve.png", title=title, eval_key=eval_key, random=random)
    drawn = [out / "learning_curve.png"]
    if images and (out / "dataset.safetensors").is_file():
        from hades.artifacts import load_dataset
        from hades.config import ImageDistillConfig
        from hades.supervised import class_means, training_split

        (fit_x, fit_y), _ = training_split(ImageDistillConfig.from_dict(cfg))
        distilled = load_dataset(out / "dataset.safetensors").states
        image_grid([distilled, class_means(fit_x, fit_y)], ["distilled", "class mean"], out / "images.png")
        drawn.append(out / "images.png")
    return drawn


def tuning_figure(record: dict, path) -> None:
    """Per study of ``hades tune``: each trial's value (pruned ones at their last in-run value) and
    the best so far; the held-out check, the preset and the best paired per seed; and the
    importance of each tuned parameter (fANOVA)."""
    studies = record["studies"]
    plt = _plt()
    fig, axes = plt.subplots(len(studies), 3, figsize=(14, 2.8 * len(studies)), squeeze=False)
    for (name, s), (hist, held, imp) in zip(studies.items(), axes):
        done = [t for t in s["trials"] if t["value"] is not None and t["state"] == "COMPLETE"]
        xs, ys = [t["number"] for t in done], [t["value"] for t in done]
        hist.plot(xs, ys, "o", ms=4, label="trial")
        pruned = [t for t in s["trials"] if t["value"] is not None and t["state"] == "PRUNED"]
        if pruned:
            hist.plot([t["number"] for t in pruned], [t["value"] for t in pruned], "x", ms=5, color="grey",
                      label="pruned (last in-run value)")  # fmt: skip
        best = [max(ys[: i + 1]) for i in range(len(ys))]
        hist.step(xs, best, where="post", label="best so far")
        if s.get("preset_value") is not None:  # trial 0 of a study: the preset's own setting
            hist.axhline(s["preset_value"], color="grey", ls=":", lw=1, label="the preset's setting")
        hist.set_xlabel("trial")
        hist.set_ylabel(s["objective"].removeprefix("final_"))
        hist.set_title(name, fontsize=9)
        hist.legend(fontsize=7)
        _holdout_panel(held, s.get("holdout"))
        items = sorted(s["importance"].items(), key=lambda kv: kv[1])
        if items:
            imp.barh([k for k, _ in items], [v for _, v in items])
            imp.set_xlabel("importance (fANOVA)")
        else:
            imp.text(0.5, 0.5, "importance needs 2+ finished trials\nwith different values", ha="center", va="center")
            imp.set_axis_off()
    fig.tight_layout()
    _save(fig, path)


def _holdout_panel(ax, holdout: dict | None) -> None:
    """One line per held-out seed from the preset's value to the best setting's, titled with the
    paired difference and what it decided."""
    if not holdout or "preset" not in holdout:  # not asked for, or the preset won its own study
        ax.text(0.5, 0.5, "the preset won its study:\nnothing to check" if holdout else
                "no held-out check\n(--holdout-seeds)", ha="center", va="center")  # fmt: skip
        ax.set_axis_off()
        return
    for seed, a, b in zip(holdout["seeds"], holdout["preset"], holdout["best"]):
        ax.plot([0, 1], [a, b], "o-", ms=4, lw=1, label=f"seed {seed}")
    ax.set_xticks([0, 1], ["the preset", "the study's best"])
    ax.set_xlim(-0.3, 1.3)
    kept = "the best holds" if holdout["verdict"] == "best" else "the preset stays"
    diff, ci = holdout["difference_mean"], holdout["difference_ci95"]
    ax.set_title(f"held-out: best - preset {diff:+.3g} ± {ci:.3g}: {kept}", fontsize=9)
    ax.legend(fontsize=7)
