"""Trained weights on disk: one file per model, loadable with `torch.load(weights_only=True)`.

A file holds the spec (plain numbers), the state dict (tensors) and a few facts about the run;
nothing in it is pickled code, so loading a file from elsewhere runs nothing. In a sweep,
`search.save` keeps the best model per family and size (`best`, the default), every trained
model (`all`) or none; files are written after the trial's result is stored.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..models import MLPSpec, ResidualMLP, build_model
from .data import DataError

FORMAT = "hgsearch-weights-1"


def save_model(
    path: Path, spec: MLPSpec, state: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write through a temporary file renamed into place (never a torn file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "spec": dataclasses.asdict(spec),
        "state_dict": {k: v.detach().cpu() for k, v in state.items()},
        "meta": meta,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_model(path: Path | str) -> tuple[ResidualMLP, dict[str, Any]]:
    """(model in eval mode, meta) from a file written by `save_model`; one-line errors."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"no weights file at {path}: give the path `hgsearch train save=` wrote")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path} is not a weights file hgsearch can read ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise DataError(f"{path} is not an hgsearch weights file ({FORMAT})")
    model = build_model(MLPSpec(**payload["spec"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), dict(payload.get("meta") or {})
