"""The dataset zoo: a small distilled dataset per environment, shipped inside hades with a model
card (``hades zoo`` lists them; every command that takes a dataset path takes ``zoo:NAME``, e.g.
``hades train zoo:CartPole-v1``, ``hades render zoo:brax/hopper -o h.gif``).

Each entry is a directory ``zoo_data/<name with / as ->/`` holding ``dataset.safetensors`` (and
``init.safetensors`` for a HaDES-F dataset, so ``--own-init`` works) and ``card.json``: where the
dataset came from (the run's command, budget, hades version, date), how it was chosen, and its
figures under the evaluation protocol, re-measured after the choice by the command the card
names (so a user running that command gets the card's numbers). ``tools/zoo_add.py`` makes entries.
"""

from __future__ import annotations

import json
from pathlib import Path

from hades.errors import HadesError, did_you_mean

ZOO_DIR = Path(__file__).parent / "zoo_data"
PREFIX = "zoo:"


def slug(name: str) -> str:
    return name.replace("/", "-")


def cards() -> dict[str, dict]:
    """Every zoo entry's card, by name."""
    out = {}
    for card in sorted(ZOO_DIR.glob("*/card.json")):
        c = json.loads(card.read_text())
        out[c["name"]] = c
    return out


def entry_dir(name: str) -> Path:
    """The directory of zoo entry ``name`` (bare Brax names work: ``hopper`` is ``brax/hopper``; the
    image entries answer to the CLI's dataset names too: ``fashion-mnist`` is ``fashion_mnist``)."""
    for candidate in (name, f"brax/{name}", name.replace("-", "_")):
        d = ZOO_DIR / slug(candidate)
        if (d / "dataset.safetensors").is_file():
            return d
    known = list(cards())
    hint = did_you_mean(name, known, n=3)
    raise HadesError(f"no zoo dataset {name!r}{hint} (`hades zoo` lists {len(known)})")


def resolve(path) -> Path:
    """``zoo:NAME`` -> the packaged dataset file; any other path as it is."""
    text = str(path)
    if text.startswith(PREFIX):
        return entry_dir(text[len(PREFIX) :]) / "dataset.safetensors"
    return Path(path)
