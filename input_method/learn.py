"""Learning from the user: a small cache model of their own words, blended in.

The user model counts the user's word bigrams and unigrams, and suggestions
mix it with the network:

    P(w | context) = (1 - λ m) P_network(w | context) + λ U(w | previous word)
    U(w | v) = c(v w) / (c(v) + β)  +  β / (c(v) + β) · g · P_uni(w)
    m = Σ_w U(w | v),  g = n / (n + n0)        (β = 2, n0 = 500; λ learned, below)

λ starts at 0.5, or 0.2 while the predictor serves a network adapted to the
same sentences, and moves with what the user types (``observe()``).

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

λ starts at 0.5, chosen on newspaper-model-on-reviews replays (``scripts/
feature_checks.py domain``, seed 0): hit@5 rose with λ up to 0.5 and was flat
to 0.6; after adaptation 0.2-0.3 was best (0.5: 0.1930, 0.3: 0.1964, 0.2: 0.1962).
But one λ cannot suit every user: replaying the validation split (the
network's own domain) sentence by sentence, learning each once typed, hit@5
fell from 0.2988 without learning to 0.2792 at λ 0.5 (0.2908 at 0.3), while
reviews replayed through the newspaper model rose from 0.1712 to 0.2207. So
λ is learned from the user's typing: before a sentence is counted, the engine
scores it, and ``observe()`` takes one EM step (the decayed share of the
typed words' probability the counts supplied). The validation replay then
settles near λ 0.13, the reviews near 0.54.

The user's most recent sentences (at most ``max_words`` words) are kept too,
for :func:`adapt.adapt` to fine-tune the network on.

Counts and sentences persist as JSON, written atomically, bounded to
``max_entries`` bigrams and ``max_words``. Once a tenth more than
``max_entries`` pairs have gathered, the rarest are dropped, but never the
fifth of the bound seen most recently: a new phrase starts at a count of one,
and would otherwise be dropped at once by a full history of older pairs (the
history would stop learning new phrases after a few thousand sentences).
``learning=False`` (incognito) learns and writes nothing. A corrupted file is
set aside with a warning.

Learning a sentence costs in proportion to the sentence, not to the history:
the suggestion box learns on a worker thread, and rebuilding every count and
rewriting a 3 MB file after each sentence took 0.6-1.1 s and held the
interpreter long enough to stall key presses (up to 350 ms with 50,000
bigrams; ``scripts/learn_stall.py``). So learn() only marks the previous words
a sentence touched (their tensors are rebuilt when a key press needs them) and
appends one line to a journal beside the file (``history.json.journal``):

    history.json           snapshot, generation g
    history.json.journal   {"generation": g, "sentences": [...]}   one line per learn()

Loading reads the snapshot, replays the journal's lines of the same
generation, and writes a new snapshot (generation g + 1) before removing the
journal; a crash between the two leaves lines of an older generation, which
are skipped, never counted twice. A torn last line (a crash mid-append) is
skipped with a warning. The snapshot is also rewritten after
``COMPACT_AFTER`` journal lines.
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
# λ is learned from the user's own typing (observe()): it starts at BLEND (or
# ADAPTED_BLEND) worth WEIGHT_PRIOR words and follows about the last
# 1 / (1 - WEIGHT_MEMORY) words, within WEIGHT_RANGE.
WEIGHT_PRIOR = 200.0
WEIGHT_MEMORY = 0.9995
WEIGHT_RANGE = (0.05, 0.8)
FORMAT_VERSION = 3  # 3: with recent sentences; 2: counts by word only; 1: vocabulary ids
READABLE_VERSIONS = (2, 3)
# Journal lines before the snapshot is rewritten during a session (loading always
# rewrites it): writing 50,000 pairs holds the interpreter for about a quarter second.
COMPACT_AFTER = 10_000


def _evidence(value: object) -> list[float] | None:
    """λ's evidence as stored, [Σ r, Σ m]; None when absent (older files) or malformed."""
    try:
        if isinstance(value, list) and len(value) == 2:
            return [float(x) for x in value]
    except (TypeError, ValueError):
        pass
    return None


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
        # λ's starting point; the predictor sets ADAPTED_BLEND while it serves an adapted network.
        self.prior_weight = BLEND
        # Decayed sums over the user's typed words of the cache's responsibility r and
        # its mass m (observe()): λ = (Σ r + K λ0) / (Σ m + K).
        self._weight_evidence = [0.0, 0.0]
        # What blend() needs, kept up to date by learn() rather than computed per key
        # press: g and g·P_uni over the vocabulary (None: nothing learned).
        self._unigram_weight = 0.0
        self._unigram_probs: torch.Tensor | None = None
        # What those are made from: the vocabulary words' counts, the words learned
        # (n), and for each previous word its followers' counts by vocabulary id.
        self._counts = torch.zeros(len(vocab))
        self._learned = 0
        self._by_previous: dict[str, dict[int, int]] = {}
        # Each previous word's tensors for blend() — (follower ids, c(v w) / (c(v) + β),
        # β / (c(v) + β), c(v) / (c(v) + β)) — are built when a key press first needs
        # them and kept until learn() touches that word again. learn() runs on the
        # suggestion box's worker thread: it only marks words (``_changed_at``), so a
        # sentence after a common word like 的 costs it nothing per follower.
        self._followers: dict[str, tuple[int, tuple[torch.Tensor, torch.Tensor, float, float]]] = {}
        self._changed_at: dict[str, int] = {}
        self._version = 0
        self._generation = 0  # of the snapshot on disk; journal lines carry it
        self._journal_lines = 0
        if path is not None:
            if path.is_file():
                self._read(path)
            if self.journal_path.is_file():
                self._replay_journal()

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
            generation = int(payload.get("generation", 0))
            evidence = _evidence(payload.get("weight_evidence"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            aside = path.with_name(path.name + ".corrupt")
            os.replace(path, aside)
            log.warning("user history %s unreadable (%s); moved to %s and starting empty",
                        path, exc, aside)
            return
        self.bigrams, self.unigrams = bigrams, unigrams
        self._generation = generation
        self._weight_evidence = evidence or [0.0, 0.0]
        self._keep(sentences)
        self._reindex()

    @property
    def journal_path(self) -> Path:
        """The journal beside the snapshot: one line per learn() since it was written."""
        assert self.path is not None
        return self.path.with_name(self.path.name + ".journal")

    def _replay_journal(self) -> None:
        """Count the journal's lines of this snapshot's generation, then fold them in."""
        replayed = torn = 0
        touched: set[str] = set()
        # errors="replace": a crash mid-append can cut a character in two; that line is
        # then unreadable JSON, skipped below, and the rest still counts.
        for line in self.journal_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
                generation, sentences = int(entry["generation"]), entry["sentences"]
                sentences = [[str(w) for w in words] for words in sentences]
            except (ValueError, KeyError, TypeError) as exc:
                torn += 1
                log.warning("user history journal %s: unreadable line skipped (%s)",
                            self.journal_path, exc)
                continue
            if generation == self._generation:  # older ones are in the snapshot already
                touched |= self._count(sentences)  # one learn() each: pruned as they were
                self._weight_evidence = _evidence(entry.get("weight_evidence")) or self._weight_evidence
                replayed += 1
        self._refresh(touched)
        log.info("user history: %d journal lines replayed, %d skipped", replayed, torn)
        if self.learning:
            self.save()

    def _reindex(self) -> None:
        """Rebuild everything blend() needs from the counts (after reading or forgetting)."""
        stoi = self.vocab.stoi
        self._counts = torch.zeros(len(self.vocab))
        for word, count in self.unigrams.items():
            if word in stoi:
                self._counts[stoi[word]] += count
        self._learned = sum(self.unigrams.values())
        self._by_previous = {}
        for (previous, word), count in self.bigrams.items():
            if word in stoi:
                self._by_previous.setdefault(previous, {})[stoi[word]] = count
        self._followers = {}
        self._changed_at = {}
        self._refresh(set())

    def _refresh(self, touched: set[str]) -> None:
        """Update g and g·P_uni; mark the ``touched`` previous words' tensors as stale."""
        total = self._counts.sum()
        weight = self._learned / (self._learned + EVIDENCE)  # g
        self._unigram_probs = self._counts * (weight / total) if total > 0 else None  # g·P_uni
        self._unigram_weight = weight
        self._version += 1  # after the counts changed: a build that saw the old ones is older
        for previous in touched:
            self._changed_at[previous] = self._version

    def _follower_tensors(self, previous: str) -> tuple[torch.Tensor, torch.Tensor, float, float] | None:
        """The tensors blend() needs after ``previous`` (None: no follower known)."""
        cached = self._followers.get(previous)
        if cached is not None and cached[0] >= self._changed_at.get(previous, 0):
            return cached[1]
        version = self._version  # read before the counts: a learn() meanwhile makes this stale
        found = self._by_previous.get(previous)
        items = list(found.items()) if found else []  # one call: a consistent copy
        if not items:
            return None
        context_total = sum(count for _, count in items)
        tensors = (torch.tensor([index for index, _ in items]),
                   torch.tensor([count for _, count in items], dtype=torch.float) / (context_total + BACKOFF),
                   BACKOFF / (context_total + BACKOFF), context_total / (context_total + BACKOFF))
        self._followers[previous] = (version, tensors)
        return tensors

    def learn(self, sentences: list[list[str]]) -> None:
        """Count the words of sentences (lists of words, without a start token)."""
        sentences = [list(words) for words in sentences if words]
        if not self.learning or not sentences:
            return
        self._refresh(self._count(sentences))
        self._write(sentences)

    def _count(self, sentences: list[list[str]]) -> set[str]:
        """Add sentences to the counts; return the previous words whose followers changed."""
        stoi = self.vocab.stoi
        touched: set[str] = set()
        known: list[int] = []  # vocabulary ids of the words, for one index_add
        for words in sentences:
            self.unigrams.update(words)
            self._learned += len(words)
            known.extend(stoi[word] for word in words if word in stoi)
            for previous, word in zip([START_TOKEN, *words], words, strict=False):
                # Re-inserted at the end: the dict's order is the order pairs were last seen.
                self.bigrams[previous, word] = self.bigrams.pop((previous, word), 0) + 1
                if word in stoi:
                    found = self._by_previous.setdefault(previous, {})
                    found[stoi[word]] = found.get(stoi[word], 0) + 1
                    touched.add(previous)
        self._counts.index_add_(0, torch.tensor(known, dtype=torch.long), torch.ones(len(known)))
        self._keep(sentences)
        # Prune once a tenth more than the bound have gathered, so that sorting 50,000
        # counts happens every few hundred sentences, not after each one.
        if len(self.bigrams) > self.max_entries + self.max_entries // 10:
            kept = self._pruned()
            for previous, word in self.bigrams.keys() - kept.keys():
                if word in stoi:
                    found = self._by_previous[previous]
                    del found[stoi[word]]
                    if not found:
                        del self._by_previous[previous]
                    touched.add(previous)
            self.bigrams = kept
        return touched

    def _pruned(self) -> Counter[tuple[str, str]]:
        """The ``max_entries`` pairs to keep: the recent fifth, then the commonest others.

        Among equal counts the more recently seen pair stays; the kept pairs
        keep their order (last seen last).
        """
        pairs = list(self.bigrams.items())  # least recently seen first
        recent = max(1, self.max_entries // 5)
        older = len(pairs) - recent
        # Rank by (count, recency) in one key, in torch: no Python loop holding the
        # interpreter while the suggestion box waits for it.
        counts = torch.tensor(list(self.bigrams.values())[:older], dtype=torch.long)
        key = counts * older + torch.arange(older)
        kept = torch.topk(key, self.max_entries - recent).indices.sort().values.tolist()
        return Counter(dict([pairs[i] for i in kept] + pairs[older:]))

    def _write(self, sentences: list[list[str]]) -> None:
        """Persist one learn(): a line in the journal, or a new snapshot when due."""
        if self.path is None:
            return
        if not self.path.is_file() or self._journal_lines >= COMPACT_AFTER:
            self.save()
            return
        entry = {"generation": self._generation, "sentences": sentences,
                 "weight_evidence": self._weight_evidence}
        with open(self.journal_path, "a", encoding="utf-8", newline="\n") as journal:
            journal.write(json.dumps(entry, ensure_ascii=False) + "\n")
            journal.flush()
            os.fsync(journal.fileno())
        self._journal_lines += 1

    def _keep(self, sentences: list[list[str]]) -> None:
        """Append sentences, dropping the oldest beyond ``max_words`` words."""
        for words in sentences:
            if words:
                self.sentences.append(list(words))
                self._sentence_words += len(words)
        while self._sentence_words > self.max_words and self.sentences:
            self._sentence_words -= len(self.sentences.popleft())

    def save(self) -> None:
        """Write a new snapshot atomically and drop the journal it includes.

        Only while learning, and only with a path. The new generation number
        marks any journal line left by a crash before the unlink as counted.
        """
        if self.path is None or not self.learning:
            return
        payload = {"version": FORMAT_VERSION, "generation": self._generation + 1,
                   "weight_evidence": self._weight_evidence,
                   "bigrams": [[a, b, c] for (a, b), c in self.bigrams.items()],
                   "unigrams": [[w, c] for w, c in self.unigrams.items()],
                   "sentences": list(self.sentences)}
        atomic_write_text(self.path, json.dumps(payload, ensure_ascii=False))
        self._generation += 1
        self.journal_path.unlink(missing_ok=True)
        self._journal_lines = 0

    def forget(self) -> None:
        """Drop everything learned, on disk too."""
        self.bigrams.clear()
        self.unigrams.clear()
        self.sentences.clear()
        self._sentence_words = 0
        self._weight_evidence = [0.0, 0.0]
        self._reindex()
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.journal_path.unlink(missing_ok=True)
            self._journal_lines = 0

    @property
    def weight(self) -> float:
        """λ: the prior, moved by what the user's typing showed (observe())."""
        responsibility, mass = self._weight_evidence
        weight = (responsibility + WEIGHT_PRIOR * self.prior_weight) / (mass + WEIGHT_PRIOR)
        return min(max(weight, WEIGHT_RANGE[0]), WEIGHT_RANGE[1])

    def reset_weight(self) -> None:
        """Back to the prior λ, on disk too: what the typing showed was about another network."""
        self._weight_evidence = [0.0, 0.0]
        self.save()

    def user_probability(self, previous: str, word_id: int) -> tuple[float, float]:
        """U(word | previous) and the user model's mass m after ``previous``."""
        if self._unigram_probs is None:
            return 0.0, 0.0
        backoff, mass, known = self._user_parts(previous)
        probability = float(self._unigram_probs[word_id])
        if known is not None:
            index, shares = known
            probability = probability * backoff + float(shares[index == word_id].sum())
        return probability, mass

    def observe(self, network_probs: list[float], user: list[tuple[float, float]]) -> None:
        """One EM step on λ from words the user typed, before they are counted.

        For each word: the probability the engine gave it without the user model
        (``network_probs``) and ``user_probability`` of it. The share of the
        mixture's probability the user model supplied, r = λU / ((1 - λm)P + λU),
        is what λ m would be if the mixture fitted this user; summed with decay,
        λ = (Σ r + K λ0) / (Σ m + K). A user whose words the network already
        predicts well (its own domain) drives λ down, so learning does not cost
        them suggestions; one who writes what the network never saw drives it up.
        """
        weight = self.weight
        responsibility = mass = 0.0
        for network, (probability, user_mass) in zip(network_probs, user, strict=True):
            mixed = (1 - weight * user_mass) * network + weight * probability
            if mixed > 0:
                responsibility += weight * probability / mixed
            mass += user_mass
        decay = WEIGHT_MEMORY ** len(network_probs)
        self._weight_evidence = [self._weight_evidence[0] * decay + responsibility,
                                 self._weight_evidence[1] * decay + mass]

    def _user_parts(self, previous: str
                    ) -> tuple[float, float, tuple[torch.Tensor, torch.Tensor] | None]:
        """U's pieces after ``previous``, shared by blend() and user_probability().

        (the unigram's share β / (c(v) + β), the mass m = Σ_w U(w | v), and the
        followers' ids with their shares c(v w) / (c(v) + β), or None when none
        is known and U is the unigram part alone).
        """
        followers = self._follower_tensors(previous)
        if followers is None:
            return 1.0, self._unigram_weight, None
        index, shares, backoff, context_share = followers
        return backoff, context_share + backoff * self._unigram_weight, (index, shares)

    def blend(self, log_probs: torch.Tensor, previous: str) -> torch.Tensor:
        """Mix the user model into a (V,) log-distribution given the previous word."""
        if self._unigram_probs is None:
            return log_probs
        backoff, mass, known = self._user_parts(previous)
        user = self._unigram_probs  # U with c(v) = 0
        if known is not None:
            user = (user * backoff).index_add(0, *known)
        weight = self.weight
        mixed = (1 - weight * mass) * log_probs.exp() + weight * user
        return mixed.clamp(min=1e-30).log()
