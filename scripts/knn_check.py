"""The neighbour memory (neighbours.py, kNN-LM) on validation: exact or inverted-list search.

    python scripts/knn_check.py --windows 20000 --dims 128                 # exact search
    python scripts/knn_check.py --windows 20000 --dims 64 --lists 1024     # as the engine

On top of a model's shipped mixture (network + trigram + phrase memory), the
k nearest training states vote for their next words (neighbours.py):

    P = (1 − κ) P_mixture + κ P_neighbours

The states are the network's over its phrase memory's text (the training split),
PCA-reduced to ``--dims``; ``--lists 0`` searches all of them exactly, otherwise
the ``--probes`` nearest of ``--lists`` k-means lists as the engine does. T is
tried at multiples of the median squared distance to the nearest state, κ at
``--kappas``; figures are hit@1 / hit@5 on each half of the first ``--windows``
validation windows (what ``ime export --neighbours`` chooses from, on one set).
Nothing looks at the test split.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from input_method.checkpoint import load_model, load_ngram
from input_method.config import NeighbourSettings
from input_method.dataset import WindowDataset, context_size_of
from input_method.memory import TrigramWithMemory
from input_method.mixture import ngram_context
from input_method.model import window_features
from input_method.neighbours import NeighbourIndex, NeighbourMemory, votes
from input_method.ngram import mix_log_probs

log = logging.getLogger("knn_check")


def exact_nearest(queries: torch.Tensor, keys: torch.Tensor, words: torch.Tensor, k: int,
                  chunk: int = 400_000) -> tuple[torch.Tensor, torch.Tensor]:
    """The k nearest of all keys by squared distance: (Q, k) distances and next words."""
    best_d = torch.full((len(queries), k), float("inf"))
    best_i = torch.zeros((len(queries), k), dtype=torch.long)
    q_norms = (queries * queries).sum(1, keepdim=True)
    for start in range(0, len(keys), chunk):
        block = keys[start:start + chunk]
        d = q_norms - 2 * queries @ block.T + (block * block).sum(1)[None, :]
        d, i = torch.topk(d, min(k, d.shape[1]), dim=1, largest=False)
        both_d, both_i = torch.cat([best_d, d], 1), torch.cat([best_i, i + start], 1)
        best_d, order = torch.topk(both_d, k, dim=1, largest=False)
        best_i = both_i.gather(1, order)
    return best_d, words[best_i]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--dims", type=int, default=64, help="PCA dimensions of a key")
    parser.add_argument("--k", type=int, default=64, help="neighbours that vote")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.35, 0.5, 0.7, 1.0],
                        help="T as multiples of the median nearest squared distance")
    parser.add_argument("--kappas", type=float, nargs="+",
                        default=[0, 0.1, 0.15, 0.2, 0.25, 0.3])
    parser.add_argument("--lists", type=int, default=1024,
                        help="k-means lists searched as the engine does (0: exact search)")
    parser.add_argument("--probes", type=int, default=NeighbourSettings.probes,
                        help="lists searched per query")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    model, vocab, payload = load_model(args.model)
    ngram, weight = load_ngram(payload)
    if not isinstance(ngram, TrigramWithMemory):
        raise SystemExit(f"{args.model} ships no phrase memory; export it with --phrase-memory")
    context_size = int(payload["context_size"])
    started = time.time()
    memory = ngram.memory
    settings = NeighbourSettings(weight=0.0, temperature=1.0, k=args.k, dims=args.dims,
                                 lists=max(args.lists, 1), probes=args.probes)
    index = NeighbourIndex.from_text(model, memory.text, memory.start_id, memory.pad_id,
                                     context_size, settings)
    log.info("%d training states and their index in %.0f s", len(index), time.time() - started)
    keys = index.keys.float()  # exact search: every key, in the index's order

    data_context = context_size_of(Path(args.data_dir))
    valid = WindowDataset.from_split(args.data_dir, "valid", data_context, len(vocab),
                                     args.windows).last_words(context_size)
    special = torch.tensor(vocab.special_ids)
    temperatures: list[float] = []
    ranks: dict[tuple[float, float], list[torch.Tensor]] = {}
    search_seconds = 0.0
    with torch.inference_mode():
        for inputs, targets in valid.batches(1000):
            states = window_features(model, inputs, vocab.pad_id)  # (batch, hidden)
            mixed = mix_log_probs(torch.log_softmax(model.logits(states).float(), -1),
                                  ngram.probs(ngram_context(inputs, vocab.pad_id)), weight)
            begin = time.perf_counter()
            if args.lists:
                distances, words = index.search(states, args.k, args.probes)
            else:
                queries = (states - index.mean) @ index.projection
                distances, words = exact_nearest(queries, keys, index.nexts.long(), args.k)
            search_seconds += time.perf_counter() - begin
            if not temperatures:
                typical = float(distances[:, 0].median())
                temperatures = [typical * m for m in args.temperatures]
                log.info("median nearest squared distance %.2f", typical)
            for temperature in temperatures:
                neighbours = votes(distances, words, temperature, mixed.shape[1])
                for kappa in args.kappas:
                    probs = NeighbourMemory.mix_probs(mixed, neighbours, kappa).clone()
                    probs[:, special] = -float("inf")
                    rank = (probs > probs.gather(1, targets[:, None])).sum(1)
                    ranks.setdefault((temperature, kappa), []).append(rank)
    half = len(valid) // 2
    search = "exact search" if not args.lists else f"{args.lists} lists, {args.probes} probed"
    print(f"{len(index)} states, {args.dims} dims, k {args.k}, {search}: "
          f"{1000 * search_seconds / len(valid):.2f} ms a query; λ {weight}")
    print("T\tκ\tfirst half hit@1 / hit@5\tsecond half")
    for (temperature, kappa), parts in sorted(ranks.items()):
        r = torch.cat(parts)
        a, b = r[:half], r[half:]
        print(f"{temperature:.2f}\t{kappa}\t{(a == 0).float().mean():.4f} / "
              f"{(a < 5).float().mean():.4f}\t{(b == 0).float().mean():.4f} / "
              f"{(b < 5).float().mean():.4f}")


if __name__ == "__main__":
    main()
