"""Would a 4-gram help on top of the shipped mixture? A rough estimate (a diagnostic).

    python scripts/fourgram_check.py --model models/default --windows 20000 --min-count 1 2

Scores, on the first ``--windows`` validation windows, the model's own mixture
(network + its trigram) with a maximum-likelihood 4-gram of the training split
interpolated on top where the last three words were seen as a context:

    P = (1 - w) P_mixture + w c(t u v x) / c(t u v .)      (then renormalised)

and w = 0 where the context was never seen (or keeps no 4-gram of at least
``--min-count``, or whose context was seen fewer than ``--min-context`` times).
Not Kneser-Ney: an upper-bound-style check of whether longer
exact phrases are worth their size. Also prints how large the packed 4-gram
would be (n-gram tables version 3).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from input_method.checkpoint import load_model, load_ngram
from input_method.dataset import WindowDataset, context_size_of
from input_method.memory import plain_trigram
from input_method.metrics import RankingTotals
from input_method.mixture import last_two
from input_method.model import window_logits
from input_method.ngram import _Order, mix_log_probs

WEIGHTS = (0.0, 0.1, 0.2, 0.3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--min-count", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--min-context", type=int, default=1,
                        help="use only contexts seen at least this many times")
    args = parser.parse_args(argv)

    model, vocab, payload = load_model(args.model)
    ngram, weight = load_ngram(payload)
    ngram = None if ngram is None else plain_trigram(ngram)  # the phrase memory left out
    data = Path(args.data_dir)
    size, pad = len(vocab), vocab.pad_id
    train = WindowDataset.from_split(data, "train", context_size_of(data), size)
    last3 = train.inputs[:, -3:].long()
    contexts = (last3[:, 0] * size + last3[:, 1]) * size + last3[:, 2]
    keys, counts = torch.unique(contexts * size + train.targets.long(), return_counts=True)
    for m in args.min_count:
        packed = _Order.from_counts(keys, counts, 0.5, size, m).pack()
        nbytes = sum(len(v["zlib"]) for k, v in packed.items() if k != "discount")
        print(f"4-grams seen {m}+ times: {int((counts >= m).sum()):,}, packed {nbytes / 1e6:.2f} MB")

    valid = WindowDataset.from_split(data, "valid", context_size_of(data), size, args.windows)
    totals = {(m, w): RankingTotals() for m in args.min_count for w in WEIGHTS}
    with torch.inference_mode():
        for inputs, targets in valid.batches(1000):
            network = torch.log_softmax(window_logits(model, inputs, pad).float(), -1)
            mixture = network.exp()
            if ngram is not None:
                mixture = mix_log_probs(network, ngram.probs(last_two(inputs, pad)), weight).exp()
            query = inputs[:, -3:].long()
            query = (query[:, 0] * size + query[:, 1]) * size + query[:, 2]
            low = torch.searchsorted(keys, query * size)
            high = torch.searchsorted(keys, (query + 1) * size)
            for m in args.min_count:
                four = torch.zeros_like(mixture)  # (batch, V)
                for row in range(len(query)):
                    found, seen = keys[low[row]:high[row]], counts[low[row]:high[row]]
                    total = seen.sum()
                    keep = seen >= m
                    if keep.any() and total >= args.min_context:
                        four[row, found[keep] % size] = seen[keep].float() / float(total)
                has = four.sum(1, keepdim=True) > 0
                for w in WEIGHTS:
                    probs = torch.where(has, (1 - w) * mixture + w * four, mixture)
                    probs = probs / probs.sum(1, keepdim=True)
                    totals[(m, w)].add(probs.clamp_min(1e-12).log(), targets, vocab.special_ids)
    print("min count, weight: hit@1 hit@5 perplexity")
    for (m, w), t in totals.items():
        s = t.summary()
        print(f"{m}, {w}: {s['hit@1']:.4f} {s['hit@5']:.4f} {s['perplexity']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
