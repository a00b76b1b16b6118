"""Stage 3: score a trained model on the test split, beside a Kneser-Ney trigram.

Both scorers see exactly the same windows: the network its full left context,
the trigram the last two ids of it. Results go to a table and to
``eval.json`` beside the model.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from input_method.atomic import atomic_write_text
from input_method.checkpoint import load_model, load_neighbours, load_ngram, resolve_checkpoint
from input_method.config import EvalConfig
from input_method.dataset import WindowDataset, context_size_of
from input_method.errors import CheckpointError, CorpusError
from input_method.metrics import RankingTotals
from input_method.mixture import last_two, ngram_context
from input_method.model import window_features
from input_method.ngram import KneserNeyTrigram, mix_log_probs
from input_method.runtime import resolve_device
from input_method.segment import HAN
from input_method.vocab import Vocab

log = logging.getLogger(__name__)

def han_mask(vocab: Vocab) -> torch.Tensor:
    """(V,) True for words that contain a Han character (not punctuation, digits, Latin)."""
    return torch.tensor([bool(HAN.search(w)) for w in vocab.itos])


class _Scores:
    """Totals over all windows and over those whose target is a Chinese word; both
    twice: ranking every word (the language model), and ranking what the suggestion
    bar can offer (no punctuation: ``Vocab.unsuggested_ids``)."""

    def __init__(self, vocab: Vocab, is_han: torch.Tensor) -> None:
        self.never = {"model": vocab.special_ids, "bar": vocab.unsuggested_ids}
        self.is_han = is_han
        self.totals = {(ranking, targets): RankingTotals()
                       for ranking in self.never for targets in ("all", "han")}

    def add(self, log_probs: torch.Tensor, targets: torch.Tensor,
            target_chars: torch.Tensor | None = None, first: torch.Tensor | None = None
            ) -> None:
        """``first``: what the first suggestion is ranked by, if apart (RankingTotals.add)."""
        mask = self.is_han[targets]
        han_chars = chars = target_chars
        if chars is not None:
            han_chars = chars[mask.to(chars.device)]
        for ranking, never in self.never.items():
            self.totals[(ranking, "all")].add(log_probs, targets, never, chars, first)
            if mask.any():
                self.totals[(ranking, "han")].add(
                    log_probs[mask], targets[mask], never, han_chars,
                    None if first is None else first[mask])

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = self.totals[("model", "all")].summary()
        result["han_targets"] = self.totals[("model", "han")].summary()
        bar = {k: v for k, v in self.totals[("bar", "all")].summary().items()
               if k not in ("loss", "perplexity")}  # the same distribution: same perplexity
        bar["han_targets"] = {k: v for k, v in self.totals[("bar", "han")].summary().items()
                              if k not in ("loss", "perplexity")}
        result["suggestion_bar"] = bar
        return result


def evaluate(config: EvalConfig) -> dict[str, Any]:
    """Score the model (and the baseline) on ``config.split``; write and return eval.json."""
    device = resolve_device(config.device)
    checkpoint_path = resolve_checkpoint(config.model_dir)
    model, vocab, payload = load_model(checkpoint_path, device)
    context_size = int(payload["context_size"])
    data_dir = Path(config.data_dir)
    data_vocab_path = data_dir / "vocab.json"
    if not data_vocab_path.is_file():
        raise CorpusError(f"no processed data in {data_dir}; run `ime process` first")
    if Vocab.load(data_vocab_path).fingerprint() != vocab.fingerprint():
        raise CheckpointError(f"{data_dir} was processed with another vocabulary than the model "
                              f"in {config.model_dir}; evaluate on the data it was trained on")
    # Windows as the data holds them, cut to what the model sees (it may see fewer words).
    window_size = context_size_of(data_dir)
    test = WindowDataset.from_split(data_dir, config.split, window_size, len(vocab),
                                    config.max_windows).last_words(context_size)
    is_han = han_mask(vocab).to(device)
    lengths = target_lengths(data_dir / f"{config.split}.tokens.txt", len(test), test.skipped)

    # The model as the engine serves it: with the n-gram it ships, if any, mixed in;
    # then the network alone is scored too, to show what each part brings.
    started = time.perf_counter()
    ngram, weight = load_ngram(payload)
    # Built here and waited for (the engine builds it in the background); on the CPU,
    # as the engine does: the index search is written for it.
    neighbours = load_neighbours(payload, model.cpu(), ngram) if ngram is not None else None
    model.to(device)
    model_scores = _Scores(vocab, is_han)
    network_scores = _Scores(vocab, is_han)
    with torch.inference_mode():
        for index, (inputs, targets) in enumerate(tqdm(
                test.batches(config.batch_size), desc="evaluate model",
                total=test.num_batches(config.batch_size), unit="batch")):
            chars = _batch_slice(lengths, index, config.batch_size)
            states = window_features(model, inputs.to(device), vocab.pad_id)  # (batch, hidden)
            log_probs = torch.log_softmax(model.logits(states).float(), -1)
            if ngram is not None:
                network_scores.add(log_probs, targets.to(device), chars)
                log_probs = mix_log_probs(
                    log_probs, ngram.probs(ngram_context(inputs, vocab.pad_id)).to(device),
                    weight)
            first = None
            if neighbours is not None:
                log_probs, first = neighbours.mix_first(log_probs.cpu(), states.cpu())
                log_probs = log_probs.to(device)
                first = None if first is None else first.to(device)
            model_scores.add(log_probs, targets.to(device), chars, first)
    results: dict[str, Any] = {
        "model": model_scores.summary(),
        "model_seconds": round(time.perf_counter() - started, 1),
    }
    if ngram is not None:
        results["network_alone"] = network_scores.summary()
        results["ngram"] = {"weight": weight, "min_count": ngram.min_count,
                            "entries": ngram.entries()}
    if neighbours is not None:
        results["neighbours"] = dataclasses.asdict(neighbours.settings) | {
            "states": len(neighbours.wait())}

    if config.baseline:
        started = time.perf_counter()
        train = WindowDataset.from_split(data_dir, "train", window_size, len(vocab))
        trigram = KneserNeyTrigram(len(vocab), last_two(train.inputs, vocab.pad_id),
                                   train.targets)
        baseline_scores = _Scores(vocab, is_han.cpu())
        for index, (inputs, targets) in enumerate(tqdm(
                test.batches(512), desc="evaluate trigram", total=test.num_batches(512),
                unit="batch")):
            baseline_scores.add(trigram.log_probs(last_two(inputs, vocab.pad_id)), targets,
                                _batch_slice(lengths, index, 512))
        results["kneser_ney_trigram"] = baseline_scores.summary()
        results["kneser_ney_seconds"] = round(time.perf_counter() - started, 1)

    results.update(
        split=config.split, windows=len(test), skipped_lines=test.skipped,
        checkpoint=str(checkpoint_path), vocab_size=len(vocab), context_size=context_size,
        unit=payload.get("unit", "word"),
        model_config=payload["model_config"], parameters=model.num_parameters(),
        train_metrics=payload.get("metrics", {}), eval_config=asdict(config),
    )
    out = checkpoint_path.parent / "eval.json"
    atomic_write_text(out, json.dumps(results, ensure_ascii=False, indent=2))
    log.info("wrote %s", out)
    return results


def target_lengths(tokens_path: Path, windows: int, skipped: int) -> torch.Tensor | None:
    """Characters of each window's target word, from the split's tokens file, in window order.

    None (no keystroke savings) when the file is missing or, because broken
    window lines were skipped, no longer lines up with the windows.
    """
    if skipped or not tokens_path.is_file():
        log.warning("keystroke savings skipped: %s missing or windows skipped", tokens_path)
        return None
    with tokens_path.open(encoding="utf-8") as handle:
        lengths = [len(token) for line in handle for token in line.split()]
    if len(lengths) < windows:
        log.warning("keystroke savings skipped: %s does not match the windows", tokens_path)
        return None
    return torch.tensor(lengths[:windows])


def _batch_slice(lengths: torch.Tensor | None, index: int, batch_size: int) -> torch.Tensor | None:
    if lengths is None:
        return None
    return lengths[index * batch_size:(index + 1) * batch_size]


ROWS = (("hit@1", "{:.4f}"), ("hit@5", "{:.4f}"), ("hit@10", "{:.4f}"), ("mrr", "{:.4f}"),
        ("perplexity", "{:.1f}"), ("keystroke_savings", "{:.4f}"))


def format_table(results: dict[str, Any]) -> str:
    """The evaluation as a plain-text table, model and baseline side by side."""
    columns = [("model", results["model"])]
    if "network_alone" in results:  # the model mixes in an n-gram: show the network alone too
        columns.append(("network alone", results["network_alone"]))
    if "kneser_ney_trigram" in results:
        columns.append(("KN trigram", results["kneser_ney_trigram"]))
    lines = [f"{results['split']} split: {results['windows']} windows "
             f"(all targets; in brackets: targets that are Chinese words)",
             f"{'metric':<22}" + "".join(f"{name:>24}" for name, _ in columns)]
    lines += _rows(columns, ROWS, "")
    if all("suggestion_bar" in scores for _, scores in columns):  # older eval.json lack it
        lines.append("as the suggestion bar offers them (no punctuation):")
        lines += _rows([(name, scores["suggestion_bar"]) for name, scores in columns],
                       [row for row in ROWS if row[0] != "perplexity"], "bar ")
    if "kneser_ney_trigram" in results:
        for label, model, base in (
                ("model / trigram", results["model"], results["kneser_ney_trigram"]),
                ("bar / trigram", results["model"].get("suggestion_bar"),
                 results["kneser_ney_trigram"].get("suggestion_bar"))):
            if model is None or base is None:
                continue
            # three decimals: a ratio of 1.2476 must not read as the goal 1.25
            ratios = ", ".join(f"{k} x{model[k] / base[k]:.3f}" for k in ("hit@1", "hit@5")
                               if base[k] > 0)
            lines.append(f"{label}: {ratios}")
    return "\n".join(lines)


def _rows(columns: list[tuple[str, dict[str, Any]]], rows: Sequence[tuple[str, str]],
          prefix: str) -> list[str]:
    """One line per metric: each column's value over all targets (Chinese words in brackets)."""
    lines = []
    for key, fmt in rows:
        if key not in columns[0][1]:
            continue
        cells = [f"{fmt.format(scores[key])} ({fmt.format(scores['han_targets'][key])})"
                 for _, scores in columns]
        lines.append(f"{prefix + key:<22}" + "".join(f"{c:>24}" for c in cells))
    return lines
