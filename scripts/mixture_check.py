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
import pickle
import sys
from pathlib import Path

from input_method.checkpoint import load_model
from input_method.mixture import build_ngram, score_weights

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 1.0)


def mixture(model_dir: str, data_dir: str, split: str, windows: int,
            min_counts: tuple[int, ...] = (1,)) -> dict:
    """hit@1, hit@5 and perplexity of the mixture at each trigram weight and pruning."""
    model, vocab, payload = load_model(Path(model_dir), "cpu")
    context = int(payload["context_size"])
    by_min_count, scored = {}, 0
    for m in min_counts:
        trigram = build_ngram(data_dir, vocab, m)
        scores = score_weights(model, vocab, trigram, data_dir, context, windows, WEIGHTS, split)
        scored = scores[WEIGHTS[0]]["windows"]
        by_min_count[str(m)] = {
            "trigrams": len(trigram.keys3), "bigrams": len(trigram.keys2),
            "packed_bytes": len(pickle.dumps(trigram.tables())),
            "by_trigram_weight": {str(w): {"hit@1": round(s["hit@1"], 4),
                                           "hit@5": round(s["hit@5"], 4),
                                           "perplexity": round(s["perplexity"], 1)}
                                  for w, s in scores.items()}}
    return {"split": split, "windows": scored, "by_min_count": by_min_count}


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
