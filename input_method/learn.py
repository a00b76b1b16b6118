"""Learning from the user: a small cache model of their own words, blended in.

The user model counts the user's word bigrams and unigrams (vocabulary ids,
so it never suggests what the network cannot), and suggestions mix the two:

    P(w | context) = (1 - λ) P_network(w | context) + λ P_user(w | previous word)
    P_user(w | v)  = (c(v w) + β P_uni(w)) / (c(v) + β)        (β = 2)
    λ = 0 while nothing has been learned, so ``forget()`` restores the
    network's suggestions exactly.

Counts persist as JSON, written atomically, bounded to ``max_entries``
bigrams (the rarest are dropped first). ``learning=False`` (incognito)
learns and writes nothing. A corrupted file is set aside with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from pathlib import Path

import torch

from input_method.atomic import atomic_write_text

log = logging.getLogger(__name__)

BLEND = 0.3  # λ once the user model holds anything
BACKOFF = 2.0  # β: pseudo-counts of the unigram in each bigram distribution


def default_history_path() -> Path:
    """``$XDG_DATA_HOME/input_method/history.json`` (``~/.local/share`` by default)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "input_method" / "history.json"


class UserModel:
    """Counts of the user's words; an empty one changes nothing."""

    def __init__(self, vocab_size: int, path: Path | None = None, learning: bool = True,
                 max_entries: int = 50_000) -> None:
        self.vocab_size = vocab_size
        self.path = path
        self.learning = learning
        self.max_entries = max_entries
        self.bigrams: Counter[tuple[int, int]] = Counter()
        self.unigrams: Counter[int] = Counter()
        self._followers: dict[int, dict[int, int]] = {}  # previous id -> {next id: count}
        self._unigram_probs: torch.Tensor | None = None
        if path is not None and path.is_file():
            self._read(path)

    def __bool__(self) -> bool:
        return bool(self.unigrams)

    def _read(self, path: Path) -> None:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            bigrams = Counter({(int(a), int(b)): int(c) for a, b, c in payload["bigrams"]})
            unigrams = Counter({int(w): int(c) for w, c in payload["unigrams"]})
            if any(not 0 <= w < self.vocab_size for w in unigrams):
                raise ValueError("word ids outside this model's vocabulary")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            log.warning("user history %s unreadable (%s); moved to %s and starting empty",
                        path, exc, aside)
            return
        self.bigrams, self.unigrams = bigrams, unigrams
        self._reindex()

    def _reindex(self) -> None:
        self._followers = {}
        for (a, b), c in self.bigrams.items():
            self._followers.setdefault(a, {})[b] = c
        self._unigram_probs = None

    def learn(self, sentences: list[list[int]]) -> None:
        """Count the words of sentences (ids, each starting with the start id)."""
        if not self.learning:
            return
        for ids in sentences:
            self.unigrams.update(ids[1:])
            self.bigrams.update(zip(ids, ids[1:], strict=False))
        if len(self.bigrams) > self.max_entries:
            self.bigrams = Counter(dict(self.bigrams.most_common(self.max_entries)))
        self._reindex()
        self.save()

    def save(self) -> None:
        """Write the counts atomically (only while learning, and only with a path)."""
        if self.path is None or not self.learning:
            return
        payload = {"bigrams": [[a, b, c] for (a, b), c in self.bigrams.items()],
                   "unigrams": [[w, c] for w, c in self.unigrams.items()]}
        atomic_write_text(self.path, json.dumps(payload))

    def forget(self) -> None:
        """Drop everything learned, on disk too."""
        self.bigrams.clear()
        self.unigrams.clear()
        self._reindex()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def blend(self, log_probs: torch.Tensor, previous: int) -> torch.Tensor:
        """Mix the user model into a (V,) log-distribution given the previous word id."""
        if not self:
            return log_probs
        if self._unigram_probs is None:
            counts = torch.zeros(self.vocab_size)
            counts[torch.tensor(list(self.unigrams))] = torch.tensor(
                list(self.unigrams.values()), dtype=torch.float)
            self._unigram_probs = counts / counts.sum()
        user = self._unigram_probs
        followers = self._followers.get(previous)
        if followers:
            context_total = sum(followers.values())
            user = user * (BACKOFF / (context_total + BACKOFF))
            index = torch.tensor(list(followers))
            counts = torch.tensor(list(followers.values()), dtype=torch.float)
            user = user.index_add(0, index, counts / (context_total + BACKOFF))
        mixed = (1 - BLEND) * log_probs.exp() + BLEND * user
        return mixed.clamp(min=1e-30).log()
