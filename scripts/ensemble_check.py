"""How good is an ensemble of trained models: the headroom distillation draws on (a diagnostic).

    python scripts/ensemble_check.py --models models/a models/b --windows 50000
    python scripts/ensemble_check.py --models ... --trigram-from models/default

Scores each model alone and the average of their probabilities (what
``ime train --teacher`` distils from) on the first ``--windows`` validation
windows: loss, perplexity, hit@1, hit@5 (specials never suggested), as JSON.
With ``--trigram-from``, also the trigram shipped in that model alone, and each
model and the average with it mixed in as the engine mixes it,
(1 - λ) P + λ P_trigram, for every ``--trigram-weight`` λ: the ceiling of
what more networks of these kinds could give the shipped mixture.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from input_method.checkpoint import load_ngram, read_checkpoint, resolve_checkpoint
from input_method.dataset import WindowDataset, context_size_of
from input_method.distill import TeacherEnsemble
from input_method.memory import plain_trigram
from input_method.metrics import RankingTotals
from input_method.mixture import last_two
from input_method.ngram import KneserNeyTrigram
from input_method.runtime import resolve_device
from input_method.vocab import Vocab


def shipped_trigram(model: str, vocab: Vocab) -> KneserNeyTrigram:
    """The n-gram a model directory ships (``ime export --ngram-min-count``)."""
    ngram, _ = load_ngram(read_checkpoint(resolve_checkpoint(model), map_location="cpu"))
    ngram = None if ngram is None else plain_trigram(ngram)  # the phrase memory left out
    if ngram is None:
        raise SystemExit(f"{model} ships no n-gram; export it with --ngram-min-count")
    if ngram.vocab_size != len(vocab):
        raise SystemExit(f"{model}'s trigram has another vocabulary than the data")
    return ngram


def ensemble_scores(models: list[str], data_dir: str, split: str, windows: int,
                    device: torch.device, batch_size: int = 1024,
                    trigram: KneserNeyTrigram | None = None,
                    trigram_weights: tuple[float, ...] = ()) -> dict[str, dict[str, float]]:
    """Validation figures of each model and of their mean distribution.

    With a trigram, also the trigram alone and every model (and the mean) with
    the trigram mixed in at each weight, named "<model> + trigram <λ>".
    """
    vocab = Vocab.load(f"{data_dir}/vocab.json")
    ensemble = TeacherEnsemble.load(models, vocab, device)
    data = WindowDataset.from_split(data_dir, split, context_size_of(Path(data_dir)), len(vocab),
                                    windows)
    totals: dict[str, RankingTotals] = {}

    def score(name: str, probs: torch.Tensor, targets: torch.Tensor) -> None:
        totals.setdefault(name, RankingTotals()).add(probs.clamp_min(1e-12).log(), targets,
                                                     vocab.special_ids)

    with torch.inference_mode():
        for inputs, targets in data.batches(batch_size):
            inputs, targets = inputs.to(device), targets.to(device)
            each = dict(zip(models, ensemble.each_last(inputs, vocab.pad_id), strict=True))
            # The mean is a new tensor, so the members stay as they are for mixing below.
            each["ensemble"] = torch.stack(list(each.values())).mean(0)
            for name, probs in each.items():
                score(name, probs, targets)
            if trigram is None:
                continue
            counts = trigram.probs(last_two(inputs.cpu(), vocab.pad_id)).to(device)
            score("trigram", counts, targets)
            for name, probs in each.items():
                for weight in trigram_weights:
                    score(f"{name} + trigram {weight}", (1 - weight) * probs + weight * counts,
                          targets)
    return {name: total.summary() for name, total in totals.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--windows", type=int, default=50000)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--trigram-from", metavar="MODEL",
                        help="also mix in the trigram this exported model ships")
    parser.add_argument("--trigram-weight", type=float, nargs="+", default=[0.2, 0.3, 0.4])
    args = parser.parse_args(argv)
    vocab = Vocab.load(f"{args.data_dir}/vocab.json")
    trigram = shipped_trigram(args.trigram_from, vocab) if args.trigram_from else None
    scores = ensemble_scores(args.models, args.data_dir, args.split, args.windows,
                             resolve_device(args.device), trigram=trigram,
                             trigram_weights=tuple(args.trigram_weight))
    json.dump(scores, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
