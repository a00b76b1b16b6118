"""Adapting the network to the user's own text: a short fine-tuning run.

The count model (learn.py) remembers the word pairs a user typed; it cannot
generalise to pairs they have not typed yet. A few epochs of fine-tuning on the
user's sentences move the network's whole distribution towards their writing.
Measured with ``scripts/feature_checks.py domain`` (a newspaper model, 500
product reviews learned, 500 others replayed) — see the README's learning
section for the figures.

    user sentences ──<s> + word ids──> pieces of context_size + 1 ids
    (dataset.cut_pieces: loss at every word) ──a few epochs of Adam──> fine-tuned copy
    ──base + interpolation × (fine-tuned − base)──> adapted copy

Adaptation always starts from the base weights, never from the previous
adaptation, so adapting again on a longer history does not compound; the base
network itself is never changed. The adapted weights are saved beside the
user's history with a fingerprint of the base weights, so a retrained or
replaced model never picks up weights adapted from another one.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import pickle
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from input_method.atomic import atomic_open
from input_method.config import AdaptConfig
from input_method.dataset import cut_pieces
from input_method.model import NextWordModel

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def weights_fingerprint(model: NextWordModel) -> str:
    """A short hash of the model's configuration and weights."""
    digest = hashlib.sha1(repr(model.config).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def adapt(model: NextWordModel, sentences: Sequence[Sequence[int]], context_size: int,
          pad_id: int, config: AdaptConfig | None = None, stop: threading.Event | None = None,
          ) -> tuple[NextWordModel | None, dict[str, Any]]:
    """A fine-tuned copy of ``model`` (left unchanged) and what the run did.

    ``sentences``: word ids, each starting with ``<s>``. Setting ``stop`` (from
    another thread) ends the run at the next batch with no model (None).
    """
    config = config or AdaptConfig()
    pieces = [piece for ids in sentences if len(ids) > 1
              for piece in cut_pieces(ids, context_size, pad_id)]
    adapted = copy.deepcopy(model).train()
    if not pieces:
        return adapted.eval(), {"pieces": 0, "targets": 0, "seconds": 0.0}
    inputs = torch.tensor([p[0] for p in pieces])  # (pieces, context)
    targets = torch.tensor([p[1] for p in pieces])  # (pieces, context), pad: not scored
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.Adam(adapted.parameters(), lr=config.learning_rate)
    started = time.perf_counter()
    for _ in range(config.epochs):
        order = torch.randperm(len(pieces), generator=generator)
        for begin in range(0, len(order), config.batch_size):
            if stop is not None and stop.is_set():
                log.info("adaptation stopped")
                return None, {"pieces": len(pieces), "targets": 0, "seconds": 0.0,
                              "stopped": True}
            batch = order[begin:begin + config.batch_size]
            features, _ = adapted.features(inputs[batch])  # (batch, context, hidden)
            scored = targets[batch] != pad_id  # (batch, context)
            loss = adapted.loss(features[scored], targets[batch][scored])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(adapted.parameters(), config.grad_clip)
            optimizer.step()
    with torch.no_grad():
        for tuned, base in zip(adapted.parameters(), model.parameters(), strict=True):
            tuned.copy_(base + config.interpolation * (tuned - base))
    stats = {"pieces": len(pieces), "targets": int((targets != pad_id).sum()),
             "epochs": config.epochs, "seconds": round(time.perf_counter() - started, 2)}
    log.info("adapted the network on %d words in %.1f s", stats["targets"], stats["seconds"])
    return adapted.eval(), stats


def save_adapted(path: Path, model: NextWordModel, base_fingerprint: str,
                 stats: dict[str, Any], config: AdaptConfig) -> None:
    """Write the adapted weights (float16) atomically, tagged with the base's fingerprint."""
    payload = {"format_version": FORMAT_VERSION, "base": base_fingerprint,
               "adapt_config": asdict(config), "stats": stats,
               "state_dict": {k: v.detach().half() if v.is_floating_point() else v
                              for k, v in model.state_dict().items()}}
    with atomic_open(path, "wb", encoding=None) as handle:
        torch.save(payload, handle)


def load_adapted(path: Path, base: NextWordModel, base_fingerprint: str) -> NextWordModel | None:
    """The adapted copy of ``base`` saved at ``path``; None if absent or made from another base.

    An unreadable file is set aside (``.corrupt``) with a warning, like the history.
    """
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if payload.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format {payload.get('format_version')}, not {FORMAT_VERSION}")
        if payload["base"] != base_fingerprint:
            log.info("%s was adapted from another model; not used", path)
            return None
        adapted = copy.deepcopy(base)
        adapted.load_state_dict({k: v.float() if v.is_floating_point() else v
                                 for k, v in payload["state_dict"].items()})
    except (OSError, RuntimeError, ValueError, KeyError, TypeError, AttributeError,
            pickle.UnpicklingError) as exc:
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        log.warning("adapted weights %s unreadable (%s); moved to %s", path, exc, aside)
        return None
    return adapted.eval()
