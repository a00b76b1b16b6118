"""The baseline: an interpolated Kneser-Ney trigram over the same word ids.

This is the classic input-method language model (fcitx5's libime scores with
a KenLM trigram), trained on the same training windows as the network and
scored on the same test windows. With ``u v`` the two words before ``w``::

    P3(w|u v) = max(c(u v w) - D3, 0) / c(u v .)  + D3 N1+(u v .) / c(u v .)  * P2(w|v)
    P2(w|v)   = max(N1+(. v w) - D2, 0) / N1+(. v .) + D2 N1+(v .) / N1+(. v .) * P1(w)
    P1(w)     = max(N1+(. w) - D1, 0) / N1+(. .)  + D1 N1+(.) / N1+(. .) * 1/V

(Chen & Goodman's interpolated Kneser-Ney, one discount per order,
D = n1 / (n1 + 2 n2).) A context never seen passes its whole mass down.

Counts are kept as sorted int64 keys (``(u*V + v)*V + w``), so every lookup
is a ``searchsorted`` and a batch's full distributions are built densely.

The same model can ship inside a checkpoint and be mixed into the network's
suggestions (:func:`mix_log_probs`): :meth:`KneserNeyTrigram.tables` packs its
(usually pruned) counts into a few zlib-compressed integer arrays, and
:meth:`KneserNeyTrigram.from_tables` rebuilds exactly the same model.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import torch

# 2: zlib-compressed int64 arrays; 3: each array in the narrowest integer type and
# words as gaps within their context, then zlib (the whole trigram of the bundled
# corpus: 4.6 -> 3.4 MB; lzma would make it 2.9 MB but takes 0.14 s more to load,
# and loading must stay under a second). Both are read.
TABLES_VERSION = 3
READABLE_TABLES = (2, 3)


def _discount(counts: torch.Tensor) -> float:
    n1 = int((counts == 1).sum())
    n2 = int((counts == 2).sum())
    if n1 == 0:
        return 0.5
    return n1 / (n1 + 2 * n2)


def _segment_sum(values: torch.Tensor, groups: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(size, dtype=values.dtype).index_add_(0, groups, values)


class _Order:
    """One order's kept entries, CSR-style by context.

    ``contexts`` (C,) sorted context ids that keep at least one entry, their
    ``totals`` (C,) (all counts of the context, pruned ones too) and ``lengths``
    (C,) (kept entries); ``words`` (E,) and ``counts`` (E,) the kept entries,
    context by context, words ascending. A context that keeps nothing passes
    all its mass down, exactly like an unseen one, so it is not stored.
    """

    def __init__(self, contexts: torch.Tensor, totals: torch.Tensor, lengths: torch.Tensor,
                 words: torch.Tensor, counts: torch.Tensor, discount: float,
                 vocab_size: int) -> None:
        self.contexts, self.totals, self.lengths = contexts, totals, lengths
        self.words, self.counts, self.discount = words, counts, discount
        owner = torch.repeat_interleave(torch.arange(len(contexts)), lengths)  # (E,)
        self.keys = contexts[owner] * vocab_size + words  # (E,) sorted
        # P(w | ctx) = values[entry] + backoff[ctx] * P_lower(w)
        self.values = (counts.double() - discount).clamp(min=0) / totals[owner].double()
        self.backoff = 1 - _segment_sum(self.values, owner, len(contexts))

    @classmethod
    def from_counts(cls, keys: torch.Tensor, counts: torch.Tensor, discount: float,
                    vocab_size: int, min_count: int) -> _Order:
        """From sorted keys (context * V + word) and their counts, keeping counts >= min_count."""
        contexts, index = torch.unique(keys // vocab_size, return_inverse=True)
        totals = _segment_sum(counts, index, len(contexts))
        keep = counts >= min_count
        lengths = torch.bincount(index[keep], minlength=len(contexts))
        has = lengths > 0
        return cls(contexts[has], totals[has], lengths[has], keys[keep] % vocab_size,
                   counts[keep], discount, vocab_size)

    def pack(self) -> dict[str, Any]:
        """The integer arrays, compressed. Sorted ids are stored as gaps (small numbers
        that compress well): contexts from the previous context, words from the previous
        word of the same context (a context's first word as it is)."""
        gaps = torch.diff(self.contexts, prepend=torch.zeros(1, dtype=self.contexts.dtype))
        return {"discount": self.discount, "contexts": _compress(gaps),
                "totals": _compress(self.totals), "lengths": _compress(self.lengths),
                "word_gaps": _compress(self.words - self._previous_words()),
                "counts": _compress(self.counts)}

    def _previous_words(self) -> torch.Tensor:
        """Each entry's previous word in its context, 0 for a context's first: (E,)."""
        previous = torch.cat([torch.zeros(1, dtype=self.words.dtype), self.words[:-1]])
        previous[_starts(self.lengths)] = 0
        return previous

    @classmethod
    def unpack(cls, packed: dict[str, Any], vocab_size: int) -> _Order:
        """Inverse of :meth:`pack` (and of version 2's, which stored the words as they are)."""
        lengths = _decompress(packed["lengths"])
        if "word_gaps" in packed:
            gaps = _decompress(packed["word_gaps"])
            running = torch.cumsum(gaps, 0)  # (E,) restart the sum at each context's start
            starts = _starts(lengths)
            before = (running[starts] - gaps[starts]) if len(gaps) else running[:0]
            words = running - torch.repeat_interleave(before, lengths)
        else:
            words = _decompress(packed["words"])
        return cls(torch.cumsum(_decompress(packed["contexts"]), 0),
                   _decompress(packed["totals"]), lengths, words,
                   _decompress(packed["counts"]), float(packed["discount"]), vocab_size)

    def entries(self) -> int:
        """Kept entries."""
        return len(self.words)


def _starts(lengths: torch.Tensor) -> torch.Tensor:
    """Where each context's entries begin, from the contexts' lengths: (C,)."""
    return torch.cumsum(lengths, 0) - lengths


_NARROW_TYPES = ("<u1", "<u2", "<i4", "<i8")  # the first that holds every value is used


def _compress(values: torch.Tensor) -> dict[str, Any]:
    """int64 values -> {"dtype", "zlib": bytes as a uint8 tensor} (a checkpoint holds
    only tensors, numbers and strings). The narrowest type that holds the values is
    stored: trigram context gaps can pass 2**31 (V² is 2.5e9 with 50,000 words), word
    ids and counts rarely pass 2**16."""
    array = values.numpy()
    low, high = (int(array.min()), int(array.max())) if len(array) else (0, 0)
    dtype = next(t for t in _NARROW_TYPES
                 if np.iinfo(t).min <= low and high <= np.iinfo(t).max)
    data = zlib.compress(array.astype(dtype).tobytes(), 9)
    return {"dtype": dtype, "zlib": torch.frombuffer(bytearray(data), dtype=torch.uint8)}


def _decompress(data: dict[str, Any] | torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`_compress`; a bare tensor is version 2's zlib int64."""
    if isinstance(data, torch.Tensor):
        compressed, dtype = data, "<i8"
    else:
        compressed, dtype = data["zlib"], str(data["dtype"])
        if dtype not in _NARROW_TYPES:
            raise ValueError(f"unknown array type {dtype!r}")
    raw = zlib.decompress(compressed.numpy().tobytes())
    return torch.from_numpy(np.frombuffer(raw, dtype=dtype).astype(np.int64))


class KneserNeyTrigram:
    """Interpolated Kneser-Ney trigram; ``log_probs`` gives full distributions."""

    def __init__(self, vocab_size: int, contexts: torch.Tensor, targets: torch.Tensor,
                 min_count: int = 1) -> None:
        """contexts: (N, 2) previous two ids; targets: (N,) the next id.

        ``min_count`` > 1 prunes: trigrams seen, and bigrams continued, fewer
        times are dropped, and their mass goes to the lower order (each
        context's backoff weight is what its kept entries leave), so every
        distribution still sums to one. Discounts come from the full counts.
        """
        V = vocab_size
        u, v, w = contexts[:, 0].long(), contexts[:, 1].long(), targets.long()
        # Trigram counts c(u v w), keyed (u*V + v)*V + w, sorted.
        keys3, counts3 = torch.unique((u * V + v) * V + w, return_counts=True)
        trigram = _Order.from_counts(keys3, counts3, _discount(counts3), V, min_count)
        # Continuation counts N1+(. v w): one per distinct trigram type ending in v w.
        keys2, cont2 = torch.unique(keys3 % (V * V), return_counts=True)
        bigram = _Order.from_counts(keys2, cont2, _discount(cont2), V, min_count)
        # Unigram continuation counts N1+(. w).
        cont1 = torch.bincount(keys2 % V, minlength=V)
        self._build(V, trigram, bigram, cont1, min_count)

    def _build(self, vocab_size: int, trigram: _Order, bigram: _Order,
               cont1: torch.Tensor, min_count: int) -> None:
        self.vocab_size, self.trigram, self.bigram = vocab_size, trigram, bigram
        self.cont1, self.min_count = cont1, min_count
        self.d3, self.d2 = trigram.discount, bigram.discount
        # Unigrams interpolated with the uniform distribution.
        cont = cont1.double()
        self.d1 = _discount(cont1[cont1 > 0])
        total1 = cont.sum()
        self.p1 = ((cont - self.d1).clamp(min=0) / total1
                   + self.d1 * (cont > 0).sum() / total1 / vocab_size)  # (V,)
        self.p1_float = self.p1.float()

    @property
    def keys3(self) -> torch.Tensor:
        """Kept trigram keys ((u*V + v)*V + w), sorted."""
        return self.trigram.keys

    @property
    def keys2(self) -> torch.Tensor:
        """Kept bigram keys (v*V + w), sorted."""
        return self.bigram.keys

    def tables(self) -> dict[str, Any]:
        """Everything the model is, as compressed integer tensors (for a checkpoint)."""
        return {"version": TABLES_VERSION, "vocab_size": self.vocab_size,
                "min_count": self.min_count, "trigram": self.trigram.pack(),
                "bigram": self.bigram.pack(), "unigram": _compress(self.cont1)}

    @classmethod
    def from_tables(cls, tables: dict[str, Any]) -> KneserNeyTrigram:
        """Rebuild the model :meth:`tables` packed; raises ValueError if they are not that."""
        if not isinstance(tables, dict) or tables.get("version") not in READABLE_TABLES:
            raise ValueError("not n-gram tables of a version this program reads")
        try:
            V = int(tables["vocab_size"])
            model = cls.__new__(cls)
            model._build(V, _Order.unpack(tables["trigram"], V), _Order.unpack(tables["bigram"], V),
                         _decompress(tables["unigram"]), int(tables["min_count"]))
        except (KeyError, TypeError, RuntimeError, IndexError, zlib.error) as exc:
            raise ValueError(f"damaged n-gram tables ({exc})") from None
        return model

    def entries(self) -> int:
        """Kept trigram and bigram entries."""
        return self.trigram.entries() + self.bigram.entries()

    @staticmethod
    def _lookup(sorted_keys: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of each query in ``sorted_keys`` and whether it is there."""
        if len(sorted_keys) == 0:
            return torch.zeros_like(queries), torch.zeros_like(queries, dtype=torch.bool)
        index = torch.searchsorted(sorted_keys, queries).clamp(max=len(sorted_keys) - 1)
        return index, sorted_keys[index] == queries

    @staticmethod
    def _ranges(sorted_keys: torch.Tensor, low: torch.Tensor, high: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """For row b, every position p with low[b] <= keys[p] < high[b]: (rows, positions)."""
        start = torch.searchsorted(sorted_keys, low)
        lengths = torch.searchsorted(sorted_keys, high) - start
        rows = torch.repeat_interleave(torch.arange(len(low)), lengths)
        first = torch.cumsum(lengths, 0) - lengths  # where each row's run starts in the flat list
        positions = start[rows] + torch.arange(int(lengths.sum())) - first[rows]
        return rows, positions

    def log_probs(self, contexts: torch.Tensor) -> torch.Tensor:
        """contexts: (batch, >= 2) -> log P(w | u v) for every w: (batch, V)."""
        return self.probs(contexts).log_()

    def probs(self, contexts: torch.Tensor) -> torch.Tensor:
        """contexts: (batch, >= 2), the last two columns u v -> P(w | u v) for every w:
        (batch, V), float32. Wider contexts are for the phrase memory (memory.py)."""
        V = self.vocab_size
        u, v = contexts[:, -2].long().contiguous(), contexts[:, -1].long().contiguous()
        batch = len(u)
        one = torch.ones(batch, dtype=torch.double)
        bigram, trigram = self.bigram, self.trigram

        # Interpolation weights; an unseen context gives all its mass to the lower order.
        i2, seen2 = self._lookup(bigram.contexts, v)
        lam2 = torch.where(seen2, bigram.backoff[i2], one) if len(bigram.contexts) else one
        i3, seen3 = self._lookup(trigram.contexts, u * V + v)
        lam3 = torch.where(seen3, trigram.backoff[i3], one) if len(trigram.contexts) else one

        # The dense (batch, V) part in float32, the sparse sums in float64: a key press
        # builds a few of these rows, and float64 there doubled the n-gram's cost.
        probs = (lam3 * lam2).float()[:, None] * self.p1_float[None, :]  # (batch, V)
        rows, pos = self._ranges(bigram.keys, v * V, (v + 1) * V)
        probs.index_put_((rows, bigram.words[pos]), (lam3[rows] * bigram.values[pos]).float(),
                         accumulate=True)
        rows, pos = self._ranges(trigram.keys, (u * V + v) * V, (u * V + v + 1) * V)
        probs.index_put_((rows, trigram.words[pos]), trigram.values[pos].float(), accumulate=True)
        return probs


def mix_log_probs(network: torch.Tensor, ngram: torch.Tensor, weight: float) -> torch.Tensor:
    """log((1 - weight) P_network + weight P_ngram) from the network's log-probabilities
    and the n-gram's probabilities (:meth:`KneserNeyTrigram.probs`), either (V,) or (batch, V).

    Mixed in probability space: one exp and one log per word, a quarter of
    ``logaddexp``'s time on a key press's rows. The n-gram gives every word some
    probability, so the log never sees 0. With weight 0 this is ``network``
    itself, not a copy: do not change it in place.
    """
    if weight <= 0:
        return network
    return network.exp().mul_(1 - weight).add_(ngram, alpha=weight).log_()
