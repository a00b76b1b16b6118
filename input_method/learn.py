"""Learning from the user: a small cache model of their own words, blended in.

The user model counts the user's word bigrams and unigrams, and suggestions
mix it with the network:

    P(w | context) = (1 - λ m) P_network(w | context) + λ U(w | previous word)
    U(w | v) = c(v w) / (c(v) + β)  +  β / (c(v) + β) · g · P_uni(w)
    m = Σ_w U(w | v),  g = n / (n + n0)        (λ = 0.5, β = 2, n0 = 500)

λ is 0.2 while the predictor serves a network adapted to the same sentences.

``n`` is the number of words learned. With a long history (g near 1) this
is the usual interpolated cache, ``(1 - λ) P_network + λ P_user(w | v)``. With
a short one the unigram part, which would otherwise put the few words learned
into every context's suggestions, counts only as much as the history
supports, while a word pair the user typed before is taken at its count.
Nothing learned means m = 0, so ``forget()`` restores the network's
suggestions exactly.

Counts are kept by word, not by vocabulary id: the previous word is known
even when the network's vocabulary lacks it (after a product name the
network sees only ``<unk>``, the user model sees the name), and a history
survives retraining the model with another vocabulary. Only words the
network can suggest get user probability.

λ = 0.5 was chosen on newspaper-model-on-reviews replays (``scripts/
feature_checks.py domain``, seed 0): hit@5 rose with λ up to 0.5 and was flat
to 0.6; after adaptation 0.2-0.3 was best (0.5: 0.1930, 0.3: 0.1964, 0.2: 0.1962).

The user's most recent sentences (at most ``max_words`` words) are kept too,
for :func:`adapt.adapt` to fine-tune the network on.

Counts and sentences persist as JSON, written atomically, bounded to
``max_entries`` bigrams (the rarest are dropped first) and ``max_words``. ``learning=False`` (incognito)
learns and writes nothing. A corrupted file is set aside with a warning.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, deque
from pathlib import Path

import torch

from input_method.atomic import atomic_write_text
from input_method.config import START_TOKEN, AdaptConfig
from input_method.vocab import Vocab

log = logging.getLogger(__name__)

BLEND = 0.5  # λ once the user model holds anything
# λ once the network itself was fine-tuned on the same sentences (adapt.py): it
# already carries most of what the counts would add, so the counts weigh less.
ADAPTED_BLEND = 0.2
BACKOFF = 2.0  # β: pseudo-counts of the unigram in each bigram distribution
EVIDENCE = 500  # n0: words learned at which the user's unigrams count half
FORMAT_VERSION = 3  # 3: with recent sentences; 2: counts by word only; 1: vocabulary ids
READABLE_VERSIONS = (2, 3)


def default_history_path() -> Path:
    """``$XDG_DATA_HOME/input_method/history.json`` (``~/.local/share`` by default)."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "input_method" / "history.json"


class UserModel:
    """Counts of the user's words; an empty one changes nothing."""

    def __init__(self, vocab: Vocab, path: Path | None = None, learning: bool = True,
                 max_entries: int = 50_000, max_words: int = AdaptConfig.max_words) -> None:
        self.vocab = vocab
        self.path = path
        self.learning = learning
        self.max_entries = max_entries
        self.max_words = max_words
        self.bigrams: Counter[tuple[str, str]] = Counter()
        self.unigrams: Counter[str] = Counter()
        self.sentences: deque[list[str]] = deque()  # the most recent, oldest first
        self._sentence_words = 0
        self.weight = BLEND  # λ; the predictor sets ADAPTED_BLEND while it serves an adapted network
        # Everything blend() needs, computed once per learn() rather than per key press:
        # g, g·P_uni over the vocabulary (None: nothing learned), and for each previous
        # word v: (follower ids, c(v w) / (c(v) + β), β / (c(v) + β), m).
        self._unigram_weight = 0.0
        self._unigram_probs: torch.Tensor | None = None
        self._followers: dict[str, tuple[torch.Tensor, torch.Tensor, float, float]] = {}
        if path is not None and path.is_file():
            self._read(path)

    def __bool__(self) -> bool:
        return self._unigram_probs is not None

    def _read(self, path: Path) -> None:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("version") not in READABLE_VERSIONS:
                raise ValueError(f"history format {payload.get('version', 1)}, "
                                 f"not {FORMAT_VERSION}")
            bigrams = Counter({(str(a), str(b)): int(c) for a, b, c in payload["bigrams"]})
            unigrams = Counter({str(w): int(c) for w, c in payload["unigrams"]})
            sentences = [[str(w) for w in words] for words in payload.get("sentences", [])]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            log.warning("user history %s unreadable (%s); moved to %s and starting empty",
                        path, exc, aside)
            return
        self.bigrams, self.unigrams = bigrams, unigrams
        self._keep(sentences)
        self._reindex()

    def _reindex(self) -> None:
        """Tensors of the counts over the network's vocabulary, for fast blending."""
        stoi = self.vocab.stoi
        counts = torch.zeros(len(self.vocab))
        for word, count in self.unigrams.items():
            if word in stoi:
                counts[stoi[word]] += count
        total = counts.sum()
        learned = sum(self.unigrams.values())
        weight = self._unigram_weight = learned / (learned + EVIDENCE)  # g
        self._unigram_probs = counts * (weight / total) if total > 0 else None  # g·P_uni
        followers: dict[str, dict[int, int]] = {}
        for (previous, word), count in self.bigrams.items():
            if word in stoi:
                followers.setdefault(previous, {})[stoi[word]] = count
        self._followers = {}
        for previous, found in followers.items():
            context_total = sum(found.values())
            backoff = BACKOFF / (context_total + BACKOFF)
            self._followers[previous] = (
                torch.tensor(list(found)),
                torch.tensor(list(found.values()), dtype=torch.float) / (context_total + BACKOFF),
                backoff, context_total / (context_total + BACKOFF) + backoff * weight)

    def learn(self, sentences: list[list[str]]) -> None:
        """Count the words of sentences (lists of words, without a start token)."""
        if not self.learning:
            return
        for words in sentences:
            self.unigrams.update(words)
            self.bigrams.update(zip([START_TOKEN, *words], words, strict=False))
        self._keep(sentences)
        if len(self.bigrams) > self.max_entries:
            self.bigrams = Counter(dict(self.bigrams.most_common(self.max_entries)))
        self._reindex()
        self.save()

    def _keep(self, sentences: list[list[str]]) -> None:
        """Append sentences, dropping the oldest beyond ``max_words`` words."""
        for words in sentences:
            if words:
                self.sentences.append(list(words))
                self._sentence_words += len(words)
        while self._sentence_words > self.max_words and self.sentences:
            self._sentence_words -= len(self.sentences.popleft())

    def save(self) -> None:
        """Write the counts atomically (only while learning, and only with a path)."""
        if self.path is None or not self.learning:
            return
        payload = {"version": FORMAT_VERSION,
                   "bigrams": [[a, b, c] for (a, b), c in self.bigrams.items()],
                   "unigrams": [[w, c] for w, c in self.unigrams.items()],
                   "sentences": list(self.sentences)}
        atomic_write_text(self.path, json.dumps(payload, ensure_ascii=False))

    def forget(self) -> None:
        """Drop everything learned, on disk too."""
        self.bigrams.clear()
        self.unigrams.clear()
        self.sentences.clear()
        self._sentence_words = 0
        self._reindex()
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def blend(self, log_probs: torch.Tensor, previous: str) -> torch.Tensor:
        """Mix the user model into a (V,) log-distribution given the previous word."""
        if self._unigram_probs is None:
            return log_probs
        user = self._unigram_probs  # U with c(v) = 0
        mass = self._unigram_weight  # m = Σ U
        followers = self._followers.get(previous)
        if followers is not None:
            index, shares, backoff, mass = followers
            user = (user * backoff).index_add(0, index, shares)
        weight = self.weight
        mixed = (1 - weight * mass) * log_probs.exp() + weight * user
        return mixed.clamp(min=1e-30).log()
