"""One checkpoint file holds everything prediction needs.

    {"format_version": 1,
     "model_config": {...}, "train_config": {...}, "context_size": 5,
     "state_dict": {...}, "vocab": ["<pad>", "<unk>", "<s>", ...],
     "vocab_fingerprint": "...", "metrics": {...},
     "training": {...}}        # optimizer, scheduler, RNG, position; last.pt only needs it

Only tensors, numbers, strings, lists, tuples and dicts are stored, so files
load with ``torch.load(..., weights_only=True)``: a crafted pickle cannot run
code. Writes go to a temporary file that is renamed over the target.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from input_method.atomic import atomic_open
from input_method.config import QUANTIZATIONS, ModelConfig, NeighbourSettings, from_dict
from input_method.errors import CheckpointError, ModelNotFoundError, TrainingError
from input_method.memory import CountModel, PhraseMemory, TrigramWithMemory
from input_method.model import NextWordModel
from input_method.neighbours import NeighbourMemory
from input_method.ngram import KneserNeyTrigram
from input_method.vocab import Vocab

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
BEST = "best.pt"
LAST = "last.pt"
TRAIN_HINT = "train one with `make run` or `ime process && ime train --run-name NAME`"


def save_checkpoint(path: Path, *, model: NextWordModel, vocab: Vocab, context_size: int,
                    unit: str = "word", train_config: dict[str, Any] | None = None,
                    metrics: dict[str, Any] | None = None,
                    training: dict[str, Any] | None = None) -> None:
    """Write a checkpoint atomically."""
    payload = {
        "format_version": FORMAT_VERSION,
        "model_config": asdict(model.config),
        "train_config": train_config or {},
        "context_size": context_size,
        "unit": unit,  # "word" or "char": how predict must cut the prefix
        "state_dict": model.state_dict(),
        "vocab": vocab.itos,
        "vocab_fingerprint": vocab.fingerprint(),
        "metrics": metrics or {},
        "training": training or {},
    }
    with atomic_open(path, "wb", encoding=None) as handle:
        torch.save(payload, handle)


INT4_GROUP = 32  # columns sharing one scale in int4-groups


def quantize_state_dict(state_dict: dict[str, torch.Tensor],
                        quantization: str = "int8-rows") -> dict[str, Any]:
    """Shrink weights for shipping: large matrices to int8 or int4, the rest fp16.

    "int8-rows": symmetric, one fp16 scale per row, which keeps each word's
    embedding and output row at its own scale, so it costs little quality
    (measured in eval.json). "int4-groups": symmetric 4-bit values (-7..7), two
    to a byte, one fp16 scale per ``INT4_GROUP`` columns of a row: half the
    size of int8, which makes room for a larger n-gram beside the network.
    The recurrent matrices stay int8 in both: they are a small share of the
    parameters, and their errors compound along the sentence.
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r}; choose from "
                         f"{', '.join(QUANTIZATIONS)}")
    packed: dict[str, Any] = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().float().cpu()
        if tensor.dim() != 2 or tensor.numel() < 4096:
            packed[name] = tensor.half()
        elif quantization == "int4-groups" and not name.startswith("rnn."):
            packed[name] = _int4_groups(tensor)
        else:
            scale = tensor.abs().amax(dim=1).clamp(min=1e-8) / 127.0  # (rows,)
            q = torch.round(tensor / scale[:, None]).clamp(-127, 127).to(torch.int8)
            packed[name] = {"int8": q, "scale": scale.half()}
    return packed


def _int4_groups(matrix: torch.Tensor) -> dict[str, Any]:
    """(rows, columns) float -> 4-bit codes two to a byte, fp16 scales per column group."""
    rows, columns = matrix.shape
    width = -(-columns // INT4_GROUP) * INT4_GROUP  # whole groups; the padding is zeros
    groups = torch.nn.functional.pad(matrix, (0, width - columns)).view(rows, -1, INT4_GROUP)
    scale = (groups.abs().amax(dim=2) / 7.0).half().float().clamp(min=1e-8)  # (rows, groups)
    codes = torch.round(groups / scale[:, :, None]).clamp(-7, 7).to(torch.int16) + 8  # 1..15
    codes = codes.view(rows, width).to(torch.uint8)
    return {"int4": codes[:, 0::2] | (codes[:, 1::2] << 4), "scale": scale.half(),
            "columns": columns}


def _from_int4_groups(value: dict[str, Any]) -> torch.Tensor:
    nibbles = value["int4"]  # (rows, width / 2) uint8
    rows = nibbles.shape[0]
    codes = torch.stack([nibbles & 15, nibbles >> 4], dim=2).view(rows, -1, INT4_GROUP)
    weights = (codes.float() - 8.0) * value["scale"].float()[:, :, None]
    return weights.view(rows, -1)[:, : int(value["columns"])]


def dequantize_state_dict(packed: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`quantize_state_dict`, back to float32."""
    state: dict[str, torch.Tensor] = {}
    for name, value in packed.items():
        if isinstance(value, dict) and "int4" in value:
            state[name] = _from_int4_groups(value)
        elif isinstance(value, dict):
            state[name] = value["int8"].float() * value["scale"].float()[:, None]
        else:
            state[name] = value.float()
    return state


def export_checkpoint(source: Path | str, target_dir: Path | str,
                      ngram: dict[str, Any] | None = None,
                      quantization: str = "int8-rows") -> Path:
    """Write a shippable copy of a model: int8 or int4 weights, no training state.

    ``ngram``: an n-gram to mix into its suggestions (``mixture.ngram_payload``);
    ``quantization``: one of ``QUANTIZATIONS`` (:func:`quantize_state_dict`).
    """
    payload = read_checkpoint(resolve_checkpoint(source))
    # Refuses what does not load, and unpacks an exported source (to add a trigram to it).
    model, _ = build_model(payload)
    payload = dict(payload, state_dict=quantize_state_dict(model.state_dict(), quantization),
                   quantization=quantization, training={})
    if ngram is not None:
        payload["ngram"] = ngram
    target = Path(target_dir)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_open(target / BEST, "wb", encoding=None) as handle:
        torch.save(payload, handle)
    Vocab(payload["vocab"]).save(target / "vocab.json")
    return target / BEST


def read_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict safely; any damage becomes a CheckpointError."""
    if not path.is_file():
        raise ModelNotFoundError(f"no checkpoint at {path}; {TRAIN_HINT}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError,
            KeyError, AttributeError, TypeError, OSError) as exc:
        # torch raises many types for truncated, foreign or malicious files.
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a readable checkpoint ({first_line[:200]})") from None
    required = {"format_version", "model_config", "state_dict", "vocab", "context_size"}
    if not isinstance(payload, dict) or not required <= payload.keys():
        raise CheckpointError(f"{path} is not an input_method checkpoint (missing fields)")
    if payload["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{path} has format version {payload['format_version']}, "
                              f"this program reads {FORMAT_VERSION}")
    return payload


def resolve_checkpoint(model_path: Path | str) -> Path:
    """A checkpoint file, or a model directory's ``best.pt`` (else ``last.pt``)."""
    path = Path(model_path)
    if path.is_dir():
        for name in (BEST, LAST):
            if (path / name).is_file():
                return path / name
        raise ModelNotFoundError(f"no {BEST} or {LAST} in {path}; {TRAIN_HINT}")
    if not path.exists():
        raise ModelNotFoundError(f"no model at {path}; {TRAIN_HINT}")
    return path


def build_model(payload: dict[str, Any], device: str | torch.device = "cpu"
                ) -> tuple[NextWordModel, Vocab]:
    """Rebuild the model and vocabulary of a checkpoint, checking they belong together."""
    vocab = Vocab(payload["vocab"])
    expected = payload.get("vocab_fingerprint")
    if expected is not None and expected != vocab.fingerprint():
        raise CheckpointError("the checkpoint's vocabulary does not match its fingerprint")
    config = from_dict(ModelConfig, payload["model_config"])
    if config.vocab_size != len(vocab):
        raise CheckpointError(f"the model expects {config.vocab_size} words but the "
                              f"vocabulary has {len(vocab)}")
    state_dict = payload["state_dict"]
    try:
        if payload.get("quantization") in QUANTIZATIONS:
            state_dict = dequantize_state_dict(state_dict)
        model = NextWordModel(config)
        model.load_state_dict(state_dict)
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"the weights do not fit the model shape ({str(exc)[:200]})") from None
    return model.to(device), vocab


def load_ngram(payload: dict[str, Any], background: bool = False
               ) -> tuple[CountModel | None, float]:
    """The n-gram a checkpoint mixes into the network, and its weight (None, 0.0 if none).

    A model exported with ``--phrase-memory`` stores the training text instead of
    the trigram's tables: the text is checked here (0.08 s for the bundled
    corpus), then indexed and the trigram rebuilt from it (0.3 s), on a worker
    thread when ``background`` (the first use waits for it).
    """
    stored = payload.get("ngram")
    if stored is None:
        return None, 0.0
    ngram: CountModel
    try:
        weight = float(stored["weight"])
        if "memory" in stored:
            vocab = Vocab(payload["vocab"])
            memory = PhraseMemory.unpack(stored["memory"], len(vocab), vocab.start_id,
                                         vocab.pad_id)
            memory_weight = float(stored["memory_weight"])
            ngram = (TrigramWithMemory.rebuilding(memory, memory_weight) if background else
                     TrigramWithMemory(KneserNeyTrigram(len(vocab), *memory.trigram_windows()),
                                       memory, memory_weight))
        else:
            ngram = KneserNeyTrigram.from_tables(stored["tables"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"the checkpoint's n-gram is damaged ({str(exc)[:200]})") from None
    if ngram.vocab_size != len(payload["vocab"]) or not 0.0 <= weight < 1.0:
        raise CheckpointError("the checkpoint's n-gram does not fit its vocabulary or weight range")
    return ngram, weight


def load_neighbours(payload: dict[str, Any], network: NextWordModel, ngram: CountModel | None,
                    background: bool = False, cache_dir: Path | str | None = None,
                    after: Callable[[], object] | None = None) -> NeighbourMemory | None:
    """The neighbour memory a checkpoint mixes in (None if none): its states rebuilt by
    ``network`` (the shipped one) from the phrase memory's text, on a worker thread when
    ``background``. With ``cache_dir`` the built index is kept there and read back by
    the next load of the same network and settings (seconds instead of minutes).
    ``after``: what the build waits for first (NeighbourMemory.building)."""
    stored = (payload.get("ngram") or {}).get("neighbours")
    if stored is None:
        return None
    if not isinstance(ngram, TrigramWithMemory):
        raise CheckpointError("the checkpoint's neighbour memory has no phrase memory to "
                              "rebuild its states from")
    try:
        settings = NeighbourSettings(**stored)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"the checkpoint's neighbour settings are damaged ({exc})") from None
    memory = ngram.memory
    cache = None
    if cache_dir is not None:
        name = NeighbourMemory.fingerprint(network, memory.text, settings)
        cache = Path(cache_dir) / f"neighbours-{name}.pt"
    neighbours = NeighbourMemory.building(network, memory.text, memory.start_id, memory.pad_id,
                                          int(payload["context_size"]), settings,
                                          memory.vocab_size, cache, after)
    if not background:
        neighbours.wait()
    return neighbours


def load_trained_on(model_path: Path | str, vocab: Vocab, device: str | torch.device,
                    role: str) -> NextWordModel:
    """A trained model (directory or checkpoint; exports dequantised) to train with:
    a teacher, or the start of a fine-tuning run (``role`` names it in the error).
    Refused if trained on another vocabulary: its ids would mean other words."""
    payload = read_checkpoint(resolve_checkpoint(model_path), map_location=device)
    if payload.get("vocab_fingerprint") != vocab.fingerprint():
        raise TrainingError(f"{role} {model_path} was trained on another vocabulary; "
                            "train with models made from the same processed data")
    model, _ = build_model(payload, device)
    return model


def load_model(model_path: Path | str, device: str | torch.device = "cpu"
               ) -> tuple[NextWordModel, Vocab, dict[str, Any]]:
    """Load a model directory or checkpoint file for inference (eval mode)."""
    payload = read_checkpoint(resolve_checkpoint(model_path), map_location=device)
    model, vocab = build_model(payload, device)
    model.eval()
    return model, vocab, payload
