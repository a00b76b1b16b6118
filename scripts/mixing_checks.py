"""Other ways to combine the network with n-gram counts, checked on validation (a diagnostic).

    python scripts/mixing_checks.py buckets --windows 60000   # λ per trigram-context count
    python scripts/mixing_checks.py cache --windows 20000     # boost words already in the window
    python scripts/mixing_checks.py kn4 --windows 40000       # a Kneser-Ney 4-gram for the trigram
    python scripts/mixing_checks.py loglinear --windows 40000 # a weighted product, not a sum
    python scripts/mixing_checks.py longest --windows 40000   # the longest context seen in training

The shipped model mixes one Kneser-Ney trigram into the network with one weight λ
(mixture.py). Each check scores a variant of that mixture on the first
``--windows`` validation windows, split in two halves: anything tuned (a λ per
bucket) is tuned on the first half, and the second half says whether it holds.
Figures are hit@1 / hit@5 over all targets (special ids never suggested), as
``ime evaluate`` counts them. README: "What did not help".
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from input_method.checkpoint import load_model, load_ngram
from input_method.dataset import WindowDataset, context_size_of
from input_method.memory import PhraseMemory, plain_trigram
from input_method.mixture import last_two
from input_method.model import window_logits
from input_method.ngram import KneserNeyTrigram, _discount, _Order, mix_log_probs
from input_method.vocab import Vocab

WEIGHTS = (0.2, 0.3, 0.4, 0.5)


def ranks_of(probs: torch.Tensor, targets: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """(batch, V) probabilities -> (batch,) how many words rank above the target."""
    probs = probs.clone()
    probs[:, special] = -1.0
    return (probs > probs.gather(1, targets[:, None].long())).sum(1)


def hits(ranks: torch.Tensor) -> str:
    """hit@1 / hit@5 of a set of ranks."""
    return f"{(ranks == 0).float().mean():.4f} / {(ranks < 5).float().mean():.4f}"


class Setup:
    """The model, its trigram and weight, and the validation windows in batches."""

    def __init__(self, model_dir: str, data_dir: str, windows: int) -> None:
        self.model, self.vocab, payload = load_model(model_dir)
        ngram, self.weight = load_ngram(payload)
        # The checks study the trigram's mixing: a shipped phrase memory is left out.
        self.ngram = None if ngram is None else plain_trigram(ngram)
        if self.ngram is None:
            raise SystemExit(f"{model_dir} ships no n-gram; export it with --ngram-min-count")
        self.data = Path(data_dir)
        self.size, self.pad = len(self.vocab), self.vocab.pad_id
        self.valid = WindowDataset.from_split(self.data, "valid", context_size_of(self.data),
                                              self.size, windows
                                              ).last_words(int(payload["context_size"]))
        self.special = torch.tensor(self.vocab.special_ids)

    def batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(inputs, targets, network probabilities) for every batch of windows."""
        with torch.inference_mode():
            for inputs, targets in self.valid.batches(500):
                logits = window_logits(self.model, inputs, self.pad).float()
                yield inputs, targets, torch.softmax(logits, -1)


def collect(setup: Setup, variants: dict[str, Callable[[torch.Tensor, torch.Tensor],
                                                         torch.Tensor]]
            ) -> dict[str, torch.Tensor]:
    """Each variant's target ranks over all windows: variant(inputs, network) -> probs."""
    ranks: dict[str, list[torch.Tensor]] = {name: [] for name in variants}
    for inputs, targets, network in setup.batches():
        for name, variant in variants.items():
            ranks[name].append(ranks_of(variant(inputs, network), targets, setup.special))
    return {name: torch.cat(found) for name, found in ranks.items()}


def report(ranks: dict[str, torch.Tensor]) -> None:
    """hit@1 / hit@5 of each variant on both halves."""
    for name, found in ranks.items():
        half = len(found) // 2
        print(f"{name:<28} first half {hits(found[:half])}   second half {hits(found[half:])}")


def buckets(setup: Setup) -> None:
    """One λ per band of the trigram context's count c(u v .), chosen on the first half."""
    grid = [round(0.05 * i, 2) for i in range(13)]
    edges = torch.tensor([0.5, 1.5, 2.5, 4.5, 9.5, 19.5, 49.5, 199.5])
    trigram = setup.ngram.trigram
    ranks: list[torch.Tensor] = []
    bands: list[torch.Tensor] = []
    for inputs, targets, network in setup.batches():
        context = last_two(inputs, setup.pad).long()
        probs = setup.ngram.probs(context)
        index, seen = KneserNeyTrigram._lookup(
            trigram.contexts, (context[:, 0] * setup.size + context[:, 1]).contiguous())
        totals = torch.where(seen, trigram.totals[index], torch.zeros_like(index))
        bands.append(torch.bucketize(totals.double(), edges.double()))
        ranks.append(torch.stack([ranks_of((1 - w) * network + w * probs, targets,
                                           setup.special) for w in grid], 1))
    found, band = torch.cat(ranks), torch.cat(bands)  # (windows, weights), (windows,)
    half = len(found) // 2
    tune = torch.arange(len(found)) < half
    choice = torch.full_like(band, grid.index(0.3))
    for b in range(len(edges) + 1):
        mine = tune & (band == b)
        if mine.any():
            score = (found[mine] == 0).sum(0) + (found[mine] < 5).sum(0)  # hit@1 + hit@5
            choice[band == b] = int(score.argmax())
            print(f"band {b}: {int(mine.sum())} tuning windows, λ {grid[choice[band == b][0]]}")
    chosen = found.gather(1, choice[:, None])[:, 0]
    report({f"one λ {setup.weight}": found[:, grid.index(round(setup.weight, 2))],
            "λ per context band": chosen})


def cache(setup: Setup) -> None:
    """Mix in a uniform distribution over the words already in the window (a unigram
    cache), leaving out the ``rank`` most frequent words, at weight μ."""
    def variant(mu: float, rank: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def probs(inputs: torch.Tensor, network: torch.Tensor) -> torch.Tensor:
            mixed = mix_log_probs(network.log(), setup.ngram.probs(last_two(inputs, setup.pad)),
                                  setup.weight).exp()
            ids = inputs.long()
            cached = torch.zeros_like(mixed).scatter_(
                1, ids, ((ids >= rank) & (ids >= len(setup.vocab.special_ids))).float())
            cached[:, setup.special] = 0
            total = cached.sum(1, keepdim=True)
            return torch.where(total > 0, (1 - mu) * mixed + mu * cached / total.clamp_min(1),
                               mixed)
        return probs
    report(collect(setup, {f"μ {mu}, words ranked {rank}+": variant(mu, rank)
                           for mu, rank in ((0.0, 0), (0.02, 0), (0.05, 0), (0.05, 1000),
                                            (0.1, 0))}))


class FourGram:
    """Interpolated Kneser-Ney 4-gram: the trigram's recursion with one more order on
    top (its trigram level then holds continuation counts N1+(. u v w))."""

    def __init__(self, data_dir: Path, vocab: Vocab, min_context: int) -> None:
        size = self.size = len(vocab)
        train = WindowDataset.from_split(data_dir, "train", context_size_of(data_dir), size)
        x, y = train.inputs[:, -3:].long(), train.targets.long()
        keys4, counts4 = torch.unique(((x[:, 0] * size + x[:, 1]) * size + x[:, 2]) * size + y,
                                      return_counts=True)
        keys3, counts3 = torch.unique(keys4 % size ** 3, return_counts=True)
        keys2, counts2 = torch.unique(keys3 % size ** 2, return_counts=True)
        four = _Order.from_counts(keys4, counts4, _discount(counts4), size, 1)
        if min_context > 1:  # keep only contexts seen that often (to fit the size budget)
            keep = four.totals >= min_context
            entries = keep[torch.repeat_interleave(torch.arange(len(keep)), four.lengths)]
            four = _Order(four.contexts[keep], four.totals[keep], four.lengths[keep],
                          four.words[entries], four.counts[entries], four.discount, size)
        packed = four.pack()
        print(f"4-grams kept: {four.entries():,} in {len(four.contexts):,} contexts, packed "
              f"{sum(len(v['zlib']) for k, v in packed.items() if k != 'discount') / 1e6:.2f} MB")
        self.orders = [(four, 3), (_Order.from_counts(keys3, counts3, _discount(counts3), size, 1), 2),
                       (_Order.from_counts(keys2, counts2, _discount(counts2), size, 1), 1)]
        unigram = torch.bincount(keys2 % size, minlength=size).double()
        discount = _discount(unigram[unigram > 0].long())
        total = unigram.sum()
        self.p1 = ((unigram - discount).clamp(min=0) / total
                   + discount * (unigram > 0).sum() / total / size).float()

    def probs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(batch, context) windows -> P(w | last three words): (batch, V)."""
        last = inputs[:, -3:].long()
        batch = len(last)
        one = torch.ones(batch, dtype=torch.double)
        weight, parts = one.clone(), []
        for order, width in self.orders:
            context = torch.zeros(batch, dtype=torch.long)
            for column in range(3 - width, 3):
                context = context * self.size + last[:, column]
            index, seen = KneserNeyTrigram._lookup(order.contexts, context)
            rows, pos = KneserNeyTrigram._ranges(order.keys, context * self.size,
                                                 (context + 1) * self.size)
            parts.append((rows, order.words[pos], (weight[rows] * order.values[pos]).float()))
            weight = weight * torch.where(seen, order.backoff[index], one)
        probs = weight.float()[:, None] * self.p1[None, :]
        for rows, words, values in parts:
            probs.index_put_((rows, words), values, accumulate=True)
        return probs


def summed(setup: Setup, w: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The shipped way: (1 - w) P_network + w P_trigram."""
    return lambda inputs, network: (1 - w) * network + w * setup.ngram.probs(
        last_two(inputs, setup.pad))


def kn4(setup: Setup, min_contexts: list[int]) -> None:
    """The shipped trigram against Kneser-Ney 4-grams (whole, or contexts seen often)."""
    models = {m: FourGram(setup.data, setup.vocab, m) for m in min_contexts}
    variants: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {}
    for w in WEIGHTS:
        variants[f"trigram, λ {w}"] = summed(setup, w)
        for m, four in models.items():
            variants[f"4-gram ctx {m}+, λ {w}"] = (lambda i, n, w=w, four=four:
                                                   (1 - w) * n + w * four.probs(i))
    report(collect(setup, variants))


def loglinear(setup: Setup) -> None:
    """Log-linear mixing, P ∝ P_network^(1 - a) · P_trigram^a, against the shipped sum.

    A product favours words both parts agree on, where the sum lets either part
    alone carry a word; only the ranking matters here, so it is not normalised.
    """
    def product(a: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def probs(inputs: torch.Tensor, network: torch.Tensor) -> torch.Tensor:
            trigram = setup.ngram.probs(last_two(inputs, setup.pad))
            return ((1 - a) * network.clamp_min(1e-30).log()
                    + a * trigram.clamp_min(1e-30).log()).exp()
        return probs
    variants = {f"sum, λ {setup.weight}": summed(setup, setup.weight)}
    variants.update({f"product, a {a}": product(a) for a in (0.1, 0.2, 0.3, 0.4, 0.5)})
    report(collect(setup, variants))


def longest(setup: Setup, longest_context: int) -> None:
    """The shipped mixture with the phrase memory (memory.py: what followed the longest
    training context of 3 to ``longest_context`` words) mixed in where one matched."""
    train = WindowDataset.from_split(setup.data, "train", context_size_of(setup.data), setup.size)
    memory = PhraseMemory.from_windows(train, setup.size, setup.vocab.start_id, setup.pad,
                                       longest_context)
    mixture = summed(setup, setup.weight)
    matched: list[torch.Tensor] = []

    def variant(mu: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        def probs(inputs: torch.Tensor, network: torch.Tensor) -> torch.Tensor:
            counts, length = memory.probs(inputs)
            if mu == 0.0:
                matched.append(length)
                return mixture(inputs, network)
            # Unmatched rows get all-zero counts: scaling by (1 - mu) keeps their ranking.
            return (1 - mu) * mixture(inputs, network) + mu * counts
        return probs

    variants = {f"shipped + longest match, μ {mu}": variant(mu)
                for mu in (0.0, 0.05, 0.1, 0.15, 0.2, 0.3)}
    report(collect(setup, variants))
    lengths = torch.cat(matched)
    print("longest context matched (words: share of windows):",
          {n: round(float((lengths == n).float().mean()), 4) for n in range(3, longest_context + 1)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=("buckets", "cache", "kn4", "loglinear", "longest"))
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--windows", type=int, default=20000)
    parser.add_argument("--min-context", type=int, nargs="+", default=[1, 2],
                        help="kn4: keep 4-gram contexts seen at least this many times")
    parser.add_argument("--longest", type=int, default=6,
                        help="longest: the most context words matched")
    args = parser.parse_args(argv)
    setup = Setup(args.model, args.data_dir, args.windows)
    if args.check == "buckets":
        buckets(setup)
    elif args.check == "cache":
        cache(setup)
    elif args.check == "loglinear":
        loglinear(setup)
    elif args.check == "longest":
        longest(setup, args.longest)
    else:
        kn4(setup, args.min_context)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
