"""How good is an ensemble of trained models: the headroom distillation draws on (a diagnostic).

    python scripts/ensemble_check.py --models models/a models/b --windows 50000

Scores each model alone and the average of their probabilities (what
``ime train --teacher`` distils from) on the first ``--windows`` validation
windows: loss, perplexity, hit@1, hit@5 (specials never suggested), as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from input_method.dataset import WindowDataset, context_size_of
from input_method.distill import TeacherEnsemble
from input_method.metrics import RankingTotals
from input_method.runtime import resolve_device
from input_method.vocab import Vocab


def ensemble_scores(models: list[str], data_dir: str, split: str, windows: int,
                    device: torch.device, batch_size: int = 1024) -> dict[str, dict[str, float]]:
    """Validation figures of each model and of their mean distribution."""
    vocab = Vocab.load(f"{data_dir}/vocab.json")
    ensemble = TeacherEnsemble.load(models, vocab, device)
    data = WindowDataset.from_split(data_dir, split, context_size_of(Path(data_dir)), len(vocab),
                                    windows)
    names = [*models, "ensemble"]
    totals = {name: RankingTotals() for name in names}
    with torch.inference_mode():
        for inputs, targets in data.batches(batch_size):
            inputs, targets = inputs.to(device), targets.to(device)
            # Each model runs once; its distribution is scored, then added to the mean.
            total = None
            for name, alone in zip(models, ensemble.each_last(inputs, vocab.pad_id), strict=True):
                totals[name].add(alone.clamp_min(1e-12).log(), targets, vocab.special_ids)
                total = alone if total is None else total.add_(alone)
            assert total is not None
            mean = total / len(models)
            totals["ensemble"].add(mean.clamp_min(1e-12).log(), targets, vocab.special_ids)
    return {name: totals[name].summary() for name in names}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--split", default="valid", choices=("valid", "test"))
    parser.add_argument("--windows", type=int, default=50000)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    scores = ensemble_scores(args.models, args.data_dir, args.split, args.windows,
                             resolve_device(args.device))
    json.dump(scores, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
