"""Next-word metrics shared by training, evaluation and the n-gram baseline.

Every scorer hands over log-probabilities over the whole vocabulary for a
batch of windows; the same code turns them into hit@k, MRR and perplexity,
so the model and the baseline are measured identically.

Ranking rules: the special tokens are never suggested, so they are removed
before ranking, and a target that is ``<unk>`` counts as a miss (rank
infinity) — a user cannot be offered a word the vocabulary lacks.
Perplexity uses the full distribution, ``<unk>`` included, for both scorers.

Keystroke savings replays the text as a user who, before each word, looks at
the top 5 suggestions and takes the right one when it is there: the share of
the text's characters that this user did not type (selecting costs nothing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

HIT_KS = (1, 5, 10)
SAVINGS_K = 5  # suggestions a user reads before typing a word


@dataclass
class RankingTotals:
    """Running sums; :meth:`summary` turns them into rates."""

    windows: int = 0
    nll: float = 0.0
    reciprocal_rank: float = 0.0
    hits: dict[int, int] = field(default_factory=lambda: dict.fromkeys(HIT_KS, 0))
    chars: int = 0  # characters of the target words (when lengths are given)
    chars_saved: int = 0  # characters of the targets found in the top SAVINGS_K

    def add(self, log_probs: torch.Tensor, targets: torch.Tensor, special_ids: list[int],
            target_chars: torch.Tensor | None = None, first: torch.Tensor | None = None
            ) -> None:
        """Add a batch. log_probs: (batch, vocab), normalised; targets: (batch,).

        ``target_chars`` (batch,): each target word's length in characters, the
        word as written (an ``<unk>`` target still has a length). ``first``
        (batch, vocab): the scores the first suggestion is chosen by, when the
        engine ranks it apart (``NeighbourSettings.first_weight``): its best word
        goes first, the rest keep the order of ``log_probs``.
        """
        log_probs = log_probs.float()
        target_lp = log_probs.gather(1, targets[:, None]).squeeze(1)  # (batch,)
        ranked = log_probs.clone()
        ranked[:, special_ids] = -math.inf
        target_score = ranked.gather(1, targets[:, None])  # (batch, 1)
        # Rank = 1 + words scored strictly higher.
        rank = (ranked > target_score).sum(1) + 1
        if first is not None:
            chosen = first.float().clone()
            chosen[:, special_ids] = -math.inf
            word = chosen.argmax(1, keepdim=True)  # (batch, 1)
            counted = ranked.gather(1, word) > target_score  # already among those higher
            rank = torch.where(word[:, 0] == targets, 1, rank + (~counted[:, 0]).long())
        self.add_ranks(target_lp, rank, targets, special_ids, target_chars)

    def add_ranks(self, target_lp: torch.Tensor, rank: torch.Tensor, targets: torch.Tensor,
                  special_ids: list[int], target_chars: torch.Tensor | None = None) -> None:
        """Add a batch already ranked: each target's log-probability (batch,) and its
        rank among the suggestable words (batch,; 1 = first); special targets never hit."""
        self.nll -= target_lp.sum().item()
        suggestable = ~torch.isin(targets, torch.tensor(special_ids, device=targets.device))
        for k in HIT_KS:
            self.hits[k] += int(((rank <= k) & suggestable).sum())
        self.reciprocal_rank += float((suggestable / rank.float()).sum())
        self.windows += len(targets)
        if target_chars is not None:
            target_chars = target_chars.to(rank.device)
            self.chars += int(target_chars.sum())
            self.chars_saved += int((target_chars * ((rank <= SAVINGS_K) & suggestable)).sum())

    def summary(self) -> dict[str, float]:
        """Rates over every window added so far."""
        n = max(self.windows, 1)
        loss = self.nll / n
        result = {f"hit@{k}": self.hits[k] / n for k in HIT_KS}
        result.update({"mrr": self.reciprocal_rank / n, "loss": loss,
                       "perplexity": math.exp(min(loss, 50.0)), "windows": self.windows})
        if self.chars:
            result["keystroke_savings"] = self.chars_saved / self.chars
        return result
