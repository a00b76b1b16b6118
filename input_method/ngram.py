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
"""

from __future__ import annotations

import torch


def _discount(counts: torch.Tensor) -> float:
    n1 = int((counts == 1).sum())
    n2 = int((counts == 2).sum())
    if n1 == 0:
        return 0.5
    return n1 / (n1 + 2 * n2)


def _segment_sum(values: torch.Tensor, groups: torch.Tensor, size: int) -> torch.Tensor:
    return torch.zeros(size, dtype=values.dtype).index_add_(0, groups, values)


def _order(keys: torch.Tensor, counts: torch.Tensor, discount: float, vocab_size: int,
           min_count: int) -> tuple[torch.Tensor, ...]:
    """One order's tables from its sorted keys (context * V + word) and their counts:
    kept keys, discounted counts, contexts, each context's total and backoff weight."""
    adjusted = (counts.double() - discount).clamp(min=0)
    contexts, index = torch.unique(keys // vocab_size, return_inverse=True)
    total = _segment_sum(counts.double(), index, len(contexts))
    keep = counts >= min_count
    kept_mass = _segment_sum(adjusted[keep], index[keep], len(contexts))
    # Unpruned, 1 - kept_mass / total is exactly D * N1+(context .) / c(context .).
    backoff = 1 - kept_mass / total
    return keys[keep], adjusted[keep], contexts, total, backoff


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
        V = self.vocab_size = vocab_size
        u, v, w = contexts[:, 0].long(), contexts[:, 1].long(), targets.long()
        # Trigram counts c(u v w), keyed (u*V + v)*V + w, sorted.
        keys3, counts3 = torch.unique((u * V + v) * V + w, return_counts=True)
        self.d3 = _discount(counts3)
        self.keys3, self.adj3, self.ctx3, self.ctx3_total, self.ctx3_backoff = _order(
            keys3, counts3, self.d3, V, min_count)

        # Continuation counts N1+(. v w): one per distinct trigram type ending in v w.
        keys2, cont2 = torch.unique(keys3 % (V * V), return_counts=True)
        self.d2 = _discount(cont2)
        self.keys2, self.adj2, self.ctx2, self.ctx2_total, self.ctx2_backoff = _order(
            keys2, cont2, self.d2, V, min_count)

        # Unigram continuation counts N1+(. w), interpolated with the uniform distribution.
        cont1 = torch.bincount(keys2 % V, minlength=V).double()
        self.d1 = _discount(cont1[cont1 > 0])
        total1 = cont1.sum()
        self.p1 = ((cont1 - self.d1).clamp(min=0) / total1
                   + self.d1 * (cont1 > 0).sum() / total1 / V)  # (V,)

    @staticmethod
    def _lookup(sorted_keys: torch.Tensor, queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of each query in ``sorted_keys`` and whether it is there."""
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
        """contexts: (batch, 2) -> log P(w | u v) for every w: (batch, V)."""
        V = self.vocab_size
        u, v = contexts[:, 0].long().contiguous(), contexts[:, 1].long().contiguous()
        batch = len(u)

        # Interpolation weights; an unseen context gives all its mass to the lower order.
        i2, seen2 = self._lookup(self.ctx2, v)
        lam2 = torch.where(seen2, self.ctx2_backoff[i2], torch.ones(batch, dtype=torch.double))
        i3, seen3 = self._lookup(self.ctx3, u * V + v)
        lam3 = torch.where(seen3, self.ctx3_backoff[i3], torch.ones(batch, dtype=torch.double))

        probs = (lam3 * lam2)[:, None] * self.p1[None, :]  # (batch, V)
        rows, pos = self._ranges(self.keys2, v * V, (v + 1) * V)
        values = lam3[rows] * self.adj2[pos] / self.ctx2_total[i2[rows]]
        probs.index_put_((rows, self.keys2[pos] % V), values, accumulate=True)
        rows, pos = self._ranges(self.keys3, (u * V + v) * V, (u * V + v + 1) * V)
        values = self.adj3[pos] / self.ctx3_total[i3[rows]]
        probs.index_put_((rows, self.keys3[pos] % V), values, accumulate=True)
        return probs.log().float()
