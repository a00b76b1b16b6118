"""How far mixing the Kneser-Ney trigram into the network goes, by pruning (a diagnostic).

    python scripts/mixture_check.py --model models/default --split valid --windows 30000 \
        --min-count 1 2 3

For each weight w, scores ``(1 - w) P_network + w P_trigram`` on the first
``--windows`` windows of a split: hit@1, hit@5 (specials never suggested) and
perplexity. w = 0 is the checkpoint's network alone (a trigram the checkpoint
ships is not used here), w = 1 the trigram alone. With several
``--min-count`` values, each pruned trigram (ngram.py) is scored, with its
number of kept entries and its packed size (what shipping it costs): the
README's pruning table. ``ime export --ngram-min-count M`` then ships one.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import sys
from pathlib import Path

import torch

from input_method.checkpoint import load_model
from input_method.dataset import WindowDataset, context_size_of
from input_method.mixture import last_two
from input_method.model import window_logits
from input_method.ngram import KneserNeyTrigram

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0)


def mixture(model_dir: str, data_dir: str, split: str, windows: int,
            min_counts: tuple[int, ...] = (1,)) -> dict:
    """hit@1, hit@5 and perplexity of the mixture at each trigram weight and pruning."""
    model, vocab, payload = load_model(Path(model_dir), "cpu")
    data = Path(data_dir)
    context = int(payload["context_size"])
    window_size = context_size_of(data)  # the model may see fewer words than the data holds
    scored = WindowDataset.from_split(data, split, window_size, len(vocab), windows
                                      ).last_words(context)
    train = WindowDataset.from_split(data, "train", window_size, len(vocab))
    trigrams = {m: KneserNeyTrigram(len(vocab), last_two(train.inputs, vocab.pad_id),
                                    train.targets, min_count=m) for m in min_counts}
    never = torch.tensor(vocab.special_ids)
    totals = {(m, w): [0, 0, 0.0] for m in min_counts for w in WEIGHTS}  # hit@1, hit@5, -log p
    with torch.inference_mode():
        for inputs, targets in scored.batches(1000):
            network = torch.softmax(window_logits(model.eval(), inputs, vocab.pad_id).float(), -1)
            for m, trigram in trigrams.items():
                counts = trigram.log_probs(last_two(inputs, vocab.pad_id)).exp()
                for w in WEIGHTS:
                    total = totals[m, w]
                    mixed = (1 - w) * network + w * counts  # (batch, vocab)
                    total[2] -= mixed.gather(1, targets[:, None]).clamp(min=1e-30).log().sum().item()
                    mixed[:, never] = 0
                    top = mixed.topk(5).indices
                    total[0] += (top[:, 0] == targets).sum().item()
                    total[1] += (top == targets[:, None]).any(1).sum().item()
    n = len(scored)
    return {"split": split, "windows": n, "by_min_count": {
        str(m): {"trigrams": len(trigram.keys3), "bigrams": len(trigram.keys2),
                 "packed_bytes": len(pickle.dumps(trigram.tables())),
                 "by_trigram_weight": {
                     str(w): {"hit@1": round(totals[m, w][0] / n, 4),
                              "hit@5": round(totals[m, w][1] / n, 4),
                              "perplexity": round(math.exp(totals[m, w][2] / n), 1)}
                     for w in WEIGHTS}}
        for m, trigram in trigrams.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--split", default="valid", choices=["valid", "test"])
    parser.add_argument("--windows", type=int, default=60000)
    parser.add_argument("--min-count", type=int, nargs="+", default=[1])
    args = parser.parse_args(argv)
    print(json.dumps(mixture(args.model, args.data_dir, args.split, args.windows,
                             tuple(args.min_count))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
