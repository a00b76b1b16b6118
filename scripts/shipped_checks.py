"""Changes to the shipped model's whole mixture, checked on validation (a diagnostic).

    python scripts/shipped_checks.py temperature --windows 60000   # sharpen or soften the network
    python scripts/shipped_checks.py precision --int8-from M        # the output layer in int8
    python scripts/shipped_checks.py first-slot --windows 0 [--bar]  # the first word ranked apart

mixing_checks.py studies the network with the trigram alone; these checks score
the mixture as the engine serves it (``Predictor.distributions``): the network
at λ with the trigram and phrase memory, then the neighbour memory at κ with the
shipped T, k and lists probed. The neighbour votes come from the network's
states, so a variant may change only what comes after them (the output layer,
its temperature) and reuse the shipped index (built, or read from the cache).

- ``temperature``: the network's logits divided by τ before mixing, at each λ.
- ``precision``: matrices of the output layer taken from an int8 export of the
  same network (``--int8-from``, e.g. the shipped student's int8 export) in
  place of the shipped 4-bit ones: what the size budget left free would buy.
- ``first-slot``: bars whose first word is ranked by one neighbour (T, κ) and the
  other four by another (``NeighbourSettings.first_weight``), as every word is
  ranked or, with ``--bar``, as the suggestion bar offers them (no punctuation).

Each prints hit@1 / hit@5 on the two halves of the first ``--windows``
validation windows (0: all) and on all of them, counted as ``ime evaluate``
counts them (special targets are misses). README: "Mixing in the trigram".
"""

from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path

import torch

from input_method.checkpoint import dequantize_state_dict, read_checkpoint, resolve_checkpoint
from input_method.dataset import WindowDataset, context_size_of
from input_method.mixture import ngram_context
from input_method.model import NextWordModel, window_features
from input_method.neighbours import (
    best_suggestable,
    default_cache_dir,
    first_placed,
    first_words,
    mixed_ranks,
    ranked_suggestable,
    votes,
)
from input_method.ngram import mix_log_probs
from input_method.predict import Predictor

# A variant: the network's states (B, hidden) -> its log-probabilities (B, V)
Variant = Callable[[torch.Tensor], torch.Tensor]

OUTPUT_LAYERS = {
    "head": ("adaptive.head.weight",),
    "head+tail0": ("adaptive.head.weight", "adaptive.tail.0.0.weight",
                   "adaptive.tail.0.1.weight"),
}


def score(predictor: Predictor, data_dir: Path, windows: int,
          variants: dict[str, Variant], weights: tuple[float, ...],
          kappas: tuple[float, ...]) -> None:
    """Print each (variant, λ, κ)'s hit@1 / hit@5 on validation."""
    vocab, counts, neighbours = predictor.vocab, predictor.ngram, predictor.neighbours
    if counts is None or neighbours is None:
        raise SystemExit("the model ships no phrase memory and neighbour memory")
    settings, special = neighbours.settings, vocab.special_ids
    valid = WindowDataset.from_split(data_dir, "valid", context_size_of(data_dir), len(vocab),
                                     windows).last_words(predictor.context_size)
    ranks: dict[tuple[str, float, float], list[torch.Tensor]] = {}
    with torch.inference_mode():
        for inputs, targets in valid.batches(1000):
            states = window_features(predictor.base_model, inputs, vocab.pad_id)
            count_probs = counts.probs(ngram_context(inputs, vocab.pad_id))
            distances, words = neighbours.index.search(states, settings.k, settings.probes)
            voted = votes(distances, words, settings.temperature, len(vocab))
            missed = torch.isin(targets, torch.tensor(special))  # never suggested
            for name, variant in variants.items():
                network = variant(states)
                for weight in weights:
                    probs = mix_log_probs(network, count_probs, weight).exp()
                    ranked = ranked_suggestable(probs, special)
                    for kappa in kappas:
                        _, rank = mixed_ranks(probs, ranked, voted, words, kappa, targets,
                                              special)
                        ranks.setdefault((name, weight, kappa), []).append(
                            torch.where(missed, len(vocab), rank))
    for (name, weight, kappa), parts in ranks.items():
        found = torch.cat(parts)
        half = len(found) // 2
        figures = [f"{(r == 1).float().mean():.4f} / {(r <= 5).float().mean():.4f}"
                   for r in (found[:half], found[half:], found)]
        print(f"{name:<14} λ {weight:.2f} κ {kappa:.2f}   first half {figures[0]}   "
              f"second half {figures[1]}   all {figures[2]}", flush=True)


def first_slot(predictor: Predictor, data_dir: Path, windows: int,
               firsts: list[tuple[float, float]], rests: list[tuple[float, float]],
               bar: bool = False) -> None:
    """Print hit@1 / hit@5 of suggestion bars whose first word comes from one neighbour
    setting A (T, κ) and the other four from another, B: the bar is A's first word, then
    B's ranking without it, so a target's rank is 1 if it is A's first word, else its
    rank under B, plus one if B ranked A's first word below it. ``bar``: ranked as the
    suggestion bar offers words (no punctuation), not every word."""
    vocab, counts, neighbours = predictor.vocab, predictor.ngram, predictor.neighbours
    if counts is None or neighbours is None:
        raise SystemExit("the model ships no phrase memory and neighbour memory")
    settings = neighbours.settings
    special = vocab.unsuggested_ids if bar else vocab.special_ids
    valid = WindowDataset.from_split(data_dir, "valid", context_size_of(data_dir), len(vocab),
                                     windows).last_words(predictor.context_size)
    grid = sorted(set(firsts) | set(rests))
    temperatures = sorted({t for t, _ in grid})
    found: dict[tuple[int, int], list[torch.Tensor]] = {}
    typical = 0.0
    with torch.inference_mode():
        for inputs, targets in valid.batches(1000):
            states = window_features(predictor.base_model, inputs, vocab.pad_id)
            probs = mix_log_probs(torch.log_softmax(predictor.base_model.logits(states).float(),
                                                    -1),
                                  counts.probs(ngram_context(inputs, vocab.pad_id)),
                                  predictor.ngram_weight).exp()
            ranked = ranked_suggestable(probs, special)
            best = best_suggestable(probs, special)
            distances, words = neighbours.index.search(states, settings.k, settings.probes)
            if not typical:
                typical = float(distances[:, 0].median())
            missed = torch.isin(targets, torch.tensor(special))
            voted = {t: votes(distances, words, round(typical * t, 3), len(vocab))
                     for t in temperatures}
            tops = [first_words(probs, best, voted[t], words, k, special) for t, k in grid]
            for b, (t, k) in enumerate(grid):
                if (t, k) not in rests:
                    continue
                _, rank_b = mixed_ranks(probs, ranked, voted[t], words, k, targets, special)
                for a, first in enumerate(tops):
                    if grid[a] not in firsts and a != b:
                        continue
                    _, first_rank = mixed_ranks(probs, ranked, voted[t], words, k, first,
                                                special)
                    rank = first_placed(rank_b, first_rank, first, targets)
                    found.setdefault((a, b), []).append(torch.where(missed, len(vocab), rank))
    print(f"T as multiples of {typical:.3f}", flush=True)
    rows = []
    for (a, b), parts in found.items():
        ranks = torch.cat(parts)
        half = len(ranks) // 2
        figures = [((r == 1).float().mean().item(), (r <= 5).float().mean().item())
                   for r in (ranks[:half], ranks[half:], ranks)]
        rows.append((figures[2][0] + figures[2][1], grid[a], grid[b], figures))
    for total, first, rest, figures in sorted(rows, reverse=True)[:40]:
        text = "   ".join(f"{h1:.4f} / {h5:.4f}" for h1, h5 in figures)
        print(f"first T×{first[0]} κ {first[1]:.2f}  rest T×{rest[0]} κ {rest[1]:.2f}   "
              f"halves and all: {text}   sum {total:.4f}", flush=True)
    for a, first in enumerate(grid):  # each setting alone (A = B)
        if (a, a) not in found:
            continue
        ranks = torch.cat(found[(a, a)])
        print(f"alone T×{first[0]} κ {first[1]:.2f}: {(ranks == 1).float().mean():.4f} / "
              f"{(ranks <= 5).float().mean():.4f}", flush=True)


def with_matrices(network: NextWordModel, source: Path | str, names: tuple[str, ...]
                  ) -> NextWordModel:
    """A copy of ``network`` with ``names`` taken from the checkpoint at ``source``."""
    stored = dequantize_state_dict(read_checkpoint(resolve_checkpoint(source))["state_dict"])
    copied = copy.deepcopy(network)
    state = copied.state_dict()
    for name in names:
        if stored[name].shape != state[name].shape:
            raise SystemExit(f"{source} is not the same network: {name} differs in shape")
        state[name] = stored[name]
    copied.load_state_dict(state)
    return copied.eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("temperature", "precision", "first-slot"))
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--windows", type=int, default=60000, help="0: all")
    parser.add_argument("--temperatures", type=float, nargs="+",
                        default=[0.8, 0.9, 1.0, 1.1, 1.25])
    parser.add_argument("--weights", type=float, nargs="+", default=None,
                        help="λ (default: 0.2 0.3 0.4 for temperature, the shipped λ and "
                        "the network alone for precision)")
    parser.add_argument("--bar", action="store_true", help="first-slot: rank as the "
                        "suggestion bar does (no punctuation), the rest as shipped")
    parser.add_argument("--int8-from", help="precision: an int8 export of the same network")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    predictor = Predictor.load(args.model, cache_dir=default_cache_dir())
    predictor.wait_until_ready()
    network = predictor.base_model.eval()
    kappa = predictor.neighbours.settings.weight if predictor.neighbours else 0.0
    variants: dict[str, Variant] = {}
    if args.check == "first-slot":
        first_slot(predictor, Path(args.data_dir), args.windows,
                   [(t, k) for t in (0.5, 0.7, 1.0) for k in (0.25, 0.3, 0.35, 0.4)],
                   [(0.7, 0.3)] if args.bar else
                   [(t, k) for t in (0.7, 1.0, 1.4) for k in (0.2, 0.25, 0.3, 0.35)], args.bar)
        return 0
    if args.check == "temperature":
        for tau in args.temperatures:
            variants[f"τ {tau}"] = (lambda states, tau=tau: torch.log_softmax(
                network.logits(states).float() / tau, -1))
        weights = tuple(args.weights or (0.2, 0.3, 0.4))
        kappas: tuple[float, ...] = (kappa,)
    else:
        if not args.int8_from:
            parser.error("precision needs --int8-from")
        models = {"shipped int4": network}
        models.update({f"{name} int8": with_matrices(network, args.int8_from, names)
                       for name, names in OUTPUT_LAYERS.items()})
        for name, model in models.items():
            variants[name] = (lambda states, model=model: torch.log_softmax(
                model.logits(states).float(), -1))
        weights = tuple(args.weights or (0.0, predictor.ngram_weight))
        kappas = (0.0, kappa)
    score(predictor, Path(args.data_dir), args.windows, variants, weights, kappas)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
