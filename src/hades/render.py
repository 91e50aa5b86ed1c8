"""Record an episode of a policy and draw it (``hades render``): GIF, MP4 or self-contained HTML.

``record_episode`` runs one episode (greedy/mean actions) and keeps the environment state of every
step; ``animate`` draws the frames with matplotlib, offline (no network at render or view time):
- classic control: the cart and pole, the acrobot's links, the pendulum, the mountain car on its hill;
- MinAtar: the observation's channels as one colour image;
- Brax: a side view (x-z plane) of the bodies' positions joined to their parents, the camera
  following the first body (Brax's own HTML viewer loads its JavaScript from a CDN, so it is not
  used here).
HTML output is matplotlib's JavaScript animation with every frame embedded as PNG.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hades.artifacts import file_mode
from hades.dataset import Dataset
from hades.envs import Env
from hades.errors import HadesError
from hades.normalization import ObsNorm, RolloutStats
from hades.policies import Policy
from hades.rollout import episode_cap

FORMATS = (".gif", ".mp4", ".html")


def render_dataset(
    ds: Dataset,
    output,
    *,
    dataset_path=None,
    env_name: str | None = None,
    backend: str | None = None,
    own_init: bool = False,
    actions: str | None = None,
    seed: int = 0,
    eval_steps: int = 0,
    fps: int = 30,
    max_frames: int = 300,
    progress=None,
    on_frame=None,
) -> dict:
    """Train one policy by BC on ``ds`` with the settings of the run that made it, record one
    episode and draw it into ``output``; ``None`` options take the dataset's run's setting;
    ``progress(text)`` is told each stage as it starts, ``on_frame(done, total)`` each drawn frame.
    ``own_init`` (HaDES-F) trains from ``init.safetensors`` beside ``dataset_path``."""
    from hades.artifacts import own_init_params
    from hades.bc import make_bc_train
    from hades.envs import make_env
    from hades.evaluation import check_dataset, input_norm, run_config
    from hades.policies import make_policy

    _check_writer(output)  # before training: a missing ffmpeg is known now
    if ds.variant in ("supervised", "multitask"):
        raise HadesError(f"{dataset_path or 'the dataset'} is a {ds.variant} dataset; render a single-task RL dataset")
    base = run_config(ds)
    env = make_env(env_name or ds.env, backend or base.backend)
    check_dataset(ds, env)
    policy = make_policy(base.policy, env.obs_shape, env.discrete, env.action_dim)
    key = jax.random.PRNGKey(seed)
    if own_init:
        params0 = own_init_params(dataset_path, ds, base.policy)
    else:
        params0 = policy.init(jax.random.fold_in(key, 1))
    say = progress or (lambda text: None)
    say(f"training a policy on the dataset ({base.bc.bc_steps} BC steps)")
    train = jax.jit(make_bc_train(policy, base.bc))
    params, _ = train(params0, jnp.asarray(ds.inputs()), jnp.asarray(ds.actions))
    say(f"recording an episode of {env.name}")
    states, obs, rewards = record_episode(
        env,
        policy,
        params,
        input_norm(ds, env.obs_shape),
        jax.random.fold_in(key, 2),
        eval_steps,
        actions=actions or base.actions,
        per_rollout_norm=ds.normalisation == "rollout",
    )
    name = Path(dataset_path).name if dataset_path else "the dataset"
    title = f"{env.name}: policy trained on {name}"
    say(f"drawing {Path(output).name} ({len(rewards)} steps, at most {max_frames} frames)")
    return animate(env, states, obs, rewards, output, fps=fps, max_frames=max_frames, title=title, on_frame=on_frame)


def record_episode(
    env: Env,
    policy: Policy,
    params,
    norm: ObsNorm,
    key,
    max_steps: int = 0,
    actions: str = "sample",
    per_rollout_norm: bool = False,
):
    """(states, observations, rewards) of one episode, trimmed to where it ended (numpy pytrees,
    the first entry the reset state). Actions and normalisation as in ``rollout.py``."""
    cap = episode_cap(env, max_steps)
    stochastic = actions == "sample"
    k_reset, k_run = jax.random.split(key)

    @jax.jit
    def run():
        obs, state = jax.tree.map(jnp.asarray, env.reset(k_reset))

        def body(carry, t):
            obs, state, done, stats = carry
            if per_rollout_norm:
                stats = stats.update(obs[None], ~done[None])
            k_act, k_env = jax.random.split(jax.random.fold_in(k_run, t))
            action = policy.act(params, stats(obs) if per_rollout_norm else norm(obs), k_act, stochastic)
            nobs, nstate, reward, now_done = env.step(k_env, state, action)
            return (nobs, nstate, done | now_done, stats), (nobs, nstate, jnp.where(done, 0.0, reward), done)

        stats0 = RolloutStats.fresh(env.obs_shape) if per_rollout_norm else ()
        _, (obs_seq, state_seq, rewards, was_done) = jax.lax.scan(
            body, (obs, state, jnp.bool_(False), stats0), jnp.arange(cap)
        )
        first = jax.tree.map(lambda a: a[None], (obs, state))
        return (
            jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first[0], obs_seq),
            jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first[1], state_seq),
            rewards,
            was_done,
        )

    obs, states, rewards, was_done = jax.device_get(run())
    length = int(np.argmax(was_done)) if was_done.any() else cap  # steps taken before the episode ended
    keep = lambda a: a[: length + 1]
    return jax.tree.map(keep, states), keep(obs), rewards[:length]


def _drawer(env: Env, states, obs):
    """(draw(ax, i), axis limits setup) for the environment family."""
    name = env.name
    if name == "CartPole-v1":

        def draw(ax, i):
            x, th = float(states.x[i]), float(states.theta[i])
            ax.add_patch(_rect(x - 0.25, -0.12, 0.5, 0.24))
            ax.plot([x, x + math.sin(th)], [0, math.cos(th)], lw=5, color="C1")
            ax.plot([-2.4, 2.4], [-0.12, -0.12], color="k", lw=1)
            ax.set_xlim(-2.6, 2.6), ax.set_ylim(-0.6, 1.3)

        return draw
    if name == "Acrobot-v1":

        def draw(ax, i):
            a1, a2 = float(states.joint_angle1[i]), float(states.joint_angle2[i])
            p1 = (math.sin(a1), -math.cos(a1))
            p2 = (p1[0] + math.sin(a1 + a2), p1[1] - math.cos(a1 + a2))
            ax.plot([0, p1[0], p2[0]], [0, p1[1], p2[1]], "-o", lw=4, color="C0")
            ax.axhline(1.0, color="k", ls="--", lw=1)
            ax.set_xlim(-2.2, 2.2), ax.set_ylim(-2.2, 2.2)

        return draw
    if name == "Pendulum-v1":

        def draw(ax, i):
            th = float(states.theta[i])
            ax.plot([0, math.sin(th)], [0, math.cos(th)], "-o", lw=6, color="C3")
            ax.set_xlim(-1.3, 1.3), ax.set_ylim(-1.3, 1.3)

        return draw
    if name.startswith("MountainCar"):
        xs = np.linspace(-1.2, 0.6, 200)

        def draw(ax, i):
            p = float(states.position[i])
            ax.plot(xs, np.sin(3 * xs) * 0.45 + 0.55, color="k", lw=1)
            ax.plot([p], [math.sin(3 * p) * 0.45 + 0.55], "o", color="C0", markersize=14)
            ax.axvline(0.5, color="C2", ls="--")
            ax.set_xlim(-1.25, 0.65), ax.set_ylim(0, 1.1)

        return draw
    if name.endswith("-MinAtar"):

        def draw(ax, i):
            o = np.asarray(obs[i])
            img = np.where(o.any(-1), o.argmax(-1) + 1, 0)
            ax.imshow(img, cmap="tab10", vmin=0, vmax=9, interpolation="nearest")

        return draw
    if name.startswith("brax/"):
        parents = env.body_parents
        pos = np.asarray(states.pipeline_state.x.pos)  # [T, bodies, 3]

        def draw(ax, i):
            p = pos[i]
            cx = p[0, 0]
            for child, parent in enumerate(parents):
                if parent >= 0:
                    ax.plot([p[parent, 0], p[child, 0]], [p[parent, 2], p[child, 2]], lw=4, color="C0")
            ax.plot(p[:, 0], p[:, 2], "o", color="C1", markersize=5)
            ax.axhline(0.0, color="k", lw=1)
            ax.set_xlim(cx - 1.5, cx + 1.5), ax.set_ylim(-0.2, max(2.0, float(p[:, 2].max()) + 0.3))

        return draw
    # any other environment: its observation as the policy sees it (a grid as an image, a vector as bars)
    o_all = np.asarray(obs)
    if o_all.ndim >= 3:

        def draw(ax, i):
            o = o_all[i]
            ax.imshow(
                o if o.ndim == 2 else o.reshape(*o.shape[:2], -1).sum(-1), cmap="viridis", interpolation="nearest"
            )

        return draw
    lo, hi = float(o_all.min()), float(o_all.max())
    pad = 0.1 * (hi - lo) + 1e-6

    def draw(ax, i):
        ax.bar(range(o_all.shape[1]), o_all[i], color="C0")
        ax.axhline(0.0, color="k", lw=1)
        ax.set_ylim(min(lo, 0.0) - pad, max(hi, 0.0) + pad)

    return draw


def _rect(x, y, w, h):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, color="C0")


def animate(
    env: Env, states, obs, rewards, path, *, fps: int = 30, max_frames: int = 300, title: str = "", on_frame=None
) -> dict:
    """Draw the recorded episode into ``path`` (.gif, .mp4 or .html); returns what was drawn.
    ``on_frame(done, total)`` is told as each frame is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import animation

    path = Path(path)
    _check_writer(path)
    steps = len(rewards)
    every = max(1, math.ceil((steps + 1) / max_frames))
    frames = list(range(0, steps + 1, every))
    draw = _drawer(env, states, obs)
    cumulative = np.concatenate([[0.0], np.cumsum(rewards)])
    fig, ax = plt.subplots(figsize=(4.5, 3.6))

    def update(k):
        if on_frame is not None:
            on_frame(k + 1, len(frames))
        i = frames[k]
        ax.clear()
        draw(ax, i)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{title}\nstep {i}/{steps}  return {cumulative[i]:.1f}", fontsize=8)
        return []

    ani = animation.FuncAnimation(fig, update, frames=len(frames), interval=1000 / fps, blit=False)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    # a fresh, unpredictable name (O_EXCL: never follows a planted symlink), renamed into place
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        if suffix == ".gif":
            ani.save(tmp, writer=animation.PillowWriter(fps=fps))
        elif suffix == ".mp4":
            ani.save(tmp, writer=animation.FFMpegWriter(fps=fps))
        else:
            matplotlib.rcParams["animation.embed_limit"] = 200.0  # MB
            tmp.write_text(
                f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
                f"<body>{_offline(ani.to_jshtml(fps=fps, default_mode='once'))}</body></html>"
            )
        os.chmod(tmp, file_mode())  # mkstemp made it 0600; give it the usual permissions
        tmp.replace(path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return {"steps": steps, "return": float(cumulative[-1]), "frames": len(frames), "out": str(path)}


# matplotlib's player draws its buttons with Font Awesome icons loaded from a CDN: the page would
# fetch them (and show empty buttons offline). Plain characters instead keep it self-contained.
_ICONS = {
    "fa fa-fast-backward": "&#x23EE;",
    "fa fa-step-backward": "&#x23F4;&#x23F4;",
    "fa fa-play fa-flip-horizontal": "&#x25C0;",
    "fa fa-pause": "&#x23F8;",
    "fa fa-play": "&#x25B6;",
    "fa fa-step-forward": "&#x23F5;&#x23F5;",
    "fa fa-fast-forward": "&#x23ED;",
    "fa fa-minus": "&minus;",
    "fa fa-plus": "+",
}


def _offline(page: str) -> str:
    """matplotlib's jshtml without anything fetched from the network."""
    import re

    page = re.sub(r"<link[^>]*https?://[^>]*>", "", page)
    for cls, text in _ICONS.items():
        page = page.replace(f'<i class="{cls}"></i>', text)
    return page


def _check_writer(output) -> None:
    """Refuse an output that cannot be written before any work: a suffix hades does not draw, or
    .mp4 without ffmpeg."""
    suffix = Path(output).suffix.lower()
    if suffix not in FORMATS:
        raise HadesError(f"{output}: choose an output ending in {', '.join(FORMATS)}")
    if suffix == ".mp4" and not (shutil.which("ffmpeg") or _imageio_ffmpeg()):
        raise HadesError(
            "MP4 needs ffmpeg (apt install ffmpeg, or pip install imageio-ffmpeg); use .gif or .html instead"
        )


def _imageio_ffmpeg() -> bool:
    try:
        import imageio_ffmpeg
        import matplotlib

        matplotlib.rcParams["animation.ffmpeg_path"] = imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except ImportError:
        return False
