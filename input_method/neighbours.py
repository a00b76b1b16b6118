"""Neighbour memory: the network's own states over the training text, and the word after each.

The phrase memory (memory.py) finds exact repeats of the last 3-6 words. The
network's state already says which earlier contexts resemble this one, exact
or not, so the training text can vote by state (kNN-LM, Khandelwal et al.
2020): for every position of the training text keep the network's state there
(the input of its output layer) and the word that came next; at a key press
the ``k`` stored states nearest to the current one vote for their next words,

    P_neighbours(w) ∝ Σ over the k nearest states s whose next word was w of exp(−‖q − s‖² / T)
    P               = (1 − κ) P_mixture + κ P_neighbours

(P_mixture: the network with the trigram and phrase memory, mixture.py).
On all 178,242 validation windows the shipped setting (κ 0.3, T 3.99) adds 0.68
hit@1 and 0.72 hit@5 points to the shipped mixture (README: "Mixing in the
trigram", the neighbour memory).

Nothing of it is stored in the checkpoint but its settings: the states are
recomputed from the phrase memory's text by the shipped network when the
model loads (a minute or two of one core, on a worker thread) and can be
cached on disk. They are reduced by PCA to ``dims`` dimensions and grouped
by k-means into ``lists`` inverted lists, so a key press searches the
``probes`` nearest lists only (about 1.5 % of the states, under a millisecond):

    states (N, hidden) ──PCA──> keys (N, dims) ──k-means──> lists of keys
    query state ──PCA──> nearest ``probes`` centroids ──> their keys ──> k nearest
"""

from __future__ import annotations

import ctypes
import hashlib
import itertools
import logging
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
import torch

from input_method.adapt import weights_fingerprint
from input_method.atomic import atomic_open
from input_method.config import NeighbourSettings
from input_method.dataset import cut_pieces
from input_method.model import NextWordModel

log = logging.getLogger(__name__)

FORMAT = 1
SAMPLE = 200_000  # states the PCA is fitted on


def text_pieces(text: np.ndarray, start_id: int, pad_id: int, context_size: int
                ) -> Iterator[tuple[list[int], list[int]]]:
    """The text's sentences (each ``<s>`` then its words) cut as training cuts them
    (``dataset.cut_pieces``): ``(inputs, targets)`` of ``context_size`` ids, ``<pad>``
    where a target is not scored there, so every word is one piece's target once."""
    ids = text.tolist()
    starts = [i for i, w in enumerate(ids) if w == start_id] + [len(ids)]
    for begin, end in zip(starts, starts[1:], strict=False):
        if end - begin > 1:
            yield from cut_pieces(ids[begin:end], context_size, pad_id)


def text_states(network: NextWordModel, text: np.ndarray, start_id: int, pad_id: int,
                context_size: int, batch_size: int = 512, every: int = 1,
                reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                limit: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The network's state before every word of ``text`` and that word: (N, hidden), (N,).

    ``every``: only every n-th piece (a sample); ``reduce``: applied to each batch of
    states as it comes (so the full-width states of the whole text are never held);
    ``limit``: only the first ``limit`` states (0: all).
    """
    pieces = itertools.islice(text_pieces(text, start_id, pad_id, context_size), 0, None, every)
    network = network.eval()
    # States are written into one tensor as they come, not gathered into a list and
    # copied at the end, which held them twice (750 MB of keys for the bundled corpus).
    # The whole text is one state per word after each <s> (text_pieces); a sample has
    # fewer, but how many is not known before it is run: rows it never writes are
    # never touched either, and hold no memory.
    words = _words_remembered(text, start_id)
    size = min(words, limit) if limit else words
    states, nexts = torch.empty(0), torch.empty(0, dtype=torch.int32)
    filled = 0
    while filled < size and (batch := list(itertools.islice(pieces, batch_size))):
        with torch.inference_mode():
            inputs = torch.tensor([piece[0] for piece in batch])  # (batch, context)
            targets = torch.tensor([piece[1] for piece in batch])  # (batch, context)
            features, _ = network.features(inputs)  # (batch, context, hidden)
            scored = targets != pad_id
            batch_states = features[scored].float()  # (scored, hidden), row by row
            if reduce is not None:
                batch_states = reduce(batch_states)
        if not filled:  # the width is known from the first batch; made outside inference
            states = torch.empty(size, batch_states.shape[1])  # mode: callers change it
            nexts = torch.empty(size, dtype=torch.int32)
        take = min(len(batch_states), size - filled)
        states[filled:filled + take] = batch_states[:take]
        nexts[filled:filled + take] = targets[scored][:take]
        filled += take
    if not filled:
        raise ValueError("the text has no words to remember")
    assert every > 1 or filled == size, "every word after <s> is one piece's target once"
    return states[:filled], nexts[:filled]


def _words_remembered(text: np.ndarray, start_id: int) -> int:
    """How many states :func:`text_states` keeps for the whole text: every word after
    the text's first ``<s>`` that is not an ``<s>`` itself."""
    starts = np.flatnonzero(text == start_id)
    return 0 if len(starts) == 0 else int(len(text) - starts[0] - len(starts))


class NeighbourIndex:
    """Keys (PCA-reduced states) grouped in inverted lists, with the word after each."""

    def __init__(self, mean: torch.Tensor, projection: torch.Tensor, centroids: torch.Tensor,
                 offsets: torch.Tensor, keys: torch.Tensor, nexts: torch.Tensor) -> None:
        """``keys`` (N, dims, float16) and ``nexts`` (N,) sorted list by list; list c holds
        rows ``offsets[c]:offsets[c + 1]``."""
        if not (len(keys) == len(nexts) == int(offsets[-1])
                and len(offsets) == len(centroids) + 1):
            raise ValueError("the neighbour index's parts do not fit together")
        self.mean, self.projection, self.centroids = mean, projection, centroids
        self.offsets, self.keys, self.nexts = offsets, keys, nexts.int()
        # Block by block: the whole of keys in float32, squared, was 750 MB at once.
        self.key_norms = torch.cat([(block.float() ** 2).sum(1) for block in keys.split(65_536)])
        self.centroid_norms = (centroids ** 2).sum(1)

    @classmethod
    def build(cls, states: torch.Tensor, nexts: torch.Tensor, settings: NeighbourSettings
              ) -> NeighbourIndex:
        """From states in hand: PCA to ``settings.dims``, then k-means into lists."""
        generator = torch.Generator().manual_seed(settings.seed)
        mean, projection = _principal(
            states[torch.randperm(len(states), generator=generator)[:SAMPLE]], settings.dims)
        return cls.group(mean, projection, lambda: ((states - mean) @ projection, nexts),
                         settings)

    @classmethod
    def from_text(cls, network: NextWordModel, text: np.ndarray, start_id: int, pad_id: int,
                  context_size: int, settings: NeighbourSettings) -> NeighbourIndex:
        """The index of ``network``'s states over ``text``, in two passes: the PCA from
        every 8th piece, then every state reduced as it comes (the bundled corpus:
        376 MB of keys in float32 while building, not 3 GB of full states)."""
        sample, _ = text_states(network, text, start_id, pad_id, context_size, every=8,
                                limit=SAMPLE)
        mean, projection = _principal(sample, settings.dims)
        del sample
        _release_freed_memory()  # the sample's batches, freed but still held by malloc
        return cls.group(mean, projection,
                         lambda: text_states(network, text, start_id, pad_id, context_size,
                                             reduce=lambda states: (states - mean) @ projection),
                         settings)

    @classmethod
    def group(cls, mean: torch.Tensor, projection: torch.Tensor,
              keys_and_nexts: Callable[[], tuple[torch.Tensor, torch.Tensor]],
              settings: NeighbourSettings, iterations: int = 8) -> NeighbourIndex:
        """Reduced keys (N, dims) grouped by k-means into ``settings.lists`` lists, after
        identical keys beyond ``settings.k`` copies are thinned out.

        ``keys_and_nexts`` makes the keys and their next words here, so that no caller
        holds them: the keys before thinning, and the float32 keys once the float16
        ones are made, are then let go (376 MB each for the bundled corpus)."""
        keys, nexts = _thin_duplicates(*keys_and_nexts(), settings.k)
        _release_freed_memory()  # the network's batches of the keys' pass, freed by now
        generator = torch.Generator().manual_seed(settings.seed)
        lists = min(settings.lists, len(keys))
        centroids = keys[torch.randperm(len(keys), generator=generator)[:lists]].clone()
        for _ in range(iterations):
            assign = _nearest_centroid(keys, centroids)
            sums = torch.zeros_like(centroids).index_add_(0, assign, keys)
            counts = torch.bincount(assign, minlength=lists)
            moved = counts > 0  # an emptied list keeps its centroid
            centroids[moved] = sums[moved] / counts[moved, None]
        # Empty lists go: identical keys (every sentence's first state is the same)
        # draw several centroids to one point, and only the first of them gets keys;
        # a query must not probe the others and find nothing.
        centroids = centroids[torch.bincount(_nearest_centroid(keys, centroids),
                                             minlength=lists) > 0]
        lists = len(centroids)
        assign = _nearest_centroid(keys, centroids)
        order = torch.argsort(assign, stable=True)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long),
                             torch.bincount(assign, minlength=lists).cumsum(0)])
        keys = keys.half()  # float16 first, the float32 keys let go: the sorted copy is
        keys = keys[order]  # made from half the size and beside half the size
        return cls(mean, projection, centroids, offsets, keys, nexts[order])

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, states: torch.Tensor, k: int, probes: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` nearest keys in the ``probes`` nearest lists of each state:
        (B, hidden) -> (B, k) squared distances (inf where fewer) and next words."""
        queries = (states.float() - self.mean) @ self.projection  # (B, dims)
        probes = min(probes, len(self.centroids))
        near = torch.topk(self.centroid_norms[None, :] - 2 * queries @ self.centroids.T,
                          probes, largest=False).indices  # (B, probes)
        distances = torch.full((len(queries), k), float("inf"))
        words = torch.zeros((len(queries), k), dtype=torch.long)
        offsets = self.offsets.tolist()
        for row, query in enumerate(queries):
            # A list's keys are one slice (they are stored list by list): slicing, not
            # gathering by index, halves a key press's search (0.36 ms, not 0.87).
            spans = [(offsets[c], offsets[c + 1]) for c in near[row].tolist()]
            keys = torch.cat([self.keys[a:b] for a, b in spans]).float()  # (candidates, dims)
            norms = torch.cat([self.key_norms[a:b] for a, b in spans])
            d = norms - 2 * (keys @ query) + query @ query
            take = min(k, len(d))
            d, best = torch.topk(d, take, largest=False)
            nexts = torch.cat([self.nexts[a:b] for a, b in spans])
            distances[row, :take], words[row, :take] = d, nexts[best]
        return distances, words

    def to_dict(self) -> dict[str, Any]:
        """Tensors only, for ``torch.save`` and a ``weights_only`` load."""
        return {"format": FORMAT, "mean": self.mean, "projection": self.projection,
                "centroids": self.centroids, "offsets": self.offsets, "keys": self.keys,
                "nexts": self.nexts.int()}

    @classmethod
    def from_dict(cls, stored: dict[str, Any]) -> NeighbourIndex:
        """Back from :meth:`to_dict` (ValueError when it is not one)."""
        if stored.get("format") != FORMAT:
            raise ValueError(f"neighbour index format {stored.get('format')!r} is not {FORMAT}")
        return cls(stored["mean"], stored["projection"], stored["centroids"],
                   stored["offsets"], stored["keys"], stored["nexts"])


def _release_freed_memory() -> None:
    """Hand the build's freed memory back to the system. glibc keeps it for reuse
    otherwise: measured after building the bundled corpus's index, the process held
    1,668 MB, and 686 MB after this (the index itself is 178 MB)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        pass


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/input_method`` (``~/.cache`` by default): where the engine keeps
    a neighbour index between loads."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "input_method"


def _thin_duplicates(keys: torch.Tensor, nexts: torch.Tensor, keep: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """At most ``keep`` rows of each set of identical keys (as stored, in float16), evenly
    spaced through the text; everything else as it was, in text order.

    Every sentence starts from the same state: 72,268 identical keys in the bundled
    corpus, one k-means list that every query near it had to search (0.8 ms). Tied at
    the same distance, at most k of them can vote anyway; an even spread of k of them
    votes for the sentence starts of the whole text, not of its first pages.
    """
    # Rows can only be in such a set if their hash is shared by more than `keep` rows:
    # the exact grouping (torch.unique over whole rows) runs on those alone. Over all
    # of the bundled corpus's keys it took 890 MB, the build's peak.
    bits = keys.half().view(torch.int16)  # (N, dims): the keys as stored
    _, by_hash, per_hash = torch.unique(_row_hashes(bits), return_inverse=True,
                                        return_counts=True)
    crowded = torch.nonzero(per_hash[by_hash] > keep)[:, 0]  # (C,) in text order
    if len(crowded) == 0:
        return keys, nexts
    inverse, counts = torch.unique(bits[crowded], dim=0, return_inverse=True,
                                   return_counts=True)[1:]
    if int(counts.max()) <= keep:
        return keys, nexts
    order = torch.argsort(inverse, stable=True)  # each set together, in text order
    group = inverse[order]
    starts = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
    rank, size = torch.arange(len(order)) - starts[group], counts[group]
    slot = rank * keep // size  # keep slots per set; a set of at most keep rows: one each
    first = (rank == 0) | (slot != (rank - 1) * keep // size)
    stays = torch.ones(len(keys), dtype=torch.bool)
    stays[crowded[order[~first]]] = False  # the crowded sets' rows past their k slots
    kept = torch.nonzero(stays)[:, 0]
    log.info("%d identical keys beyond %d copies left out", len(keys) - len(kept), keep)
    return keys[kept], nexts[kept]


def _row_hashes(rows: torch.Tensor) -> torch.Tensor:
    """(N, columns) int16 -> (N,) int64, equal for equal rows: two polynomial hashes
    modulo 2³¹ − 1, side by side (no step can overflow int64). Unequal rows rarely
    share one; where they do, they are only compared in full."""
    prime = 2**31 - 1
    first = torch.zeros(len(rows), dtype=torch.long)
    second = torch.zeros(len(rows), dtype=torch.long)
    for column in rows.unbind(1):
        value = column.long() + 32_768  # 0 .. 65,535
        first = (first * 65_599 + value) % prime
        second = (second * 40_503 + value) % prime
    return first * 2**31 + second


def _principal(sample: torch.Tensor, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The sample's mean and its ``dims`` leading principal directions (hidden, dims):
    eigenvectors of its covariance, exact (no random start), largest first.

    The sample is centred in place (its callers drop it next): a centred copy beside
    it was 376 MB more at the build's peak for the bundled corpus."""
    mean = sample.mean(0)
    _, vectors = torch.linalg.eigh(_covariance(sample.sub_(mean).T))
    dims = min(dims, sample.shape[1])
    return mean, vectors[:, -dims:].flip(1).contiguous()


def _covariance(variables: torch.Tensor) -> torch.Tensor:
    """``torch.cov(variables)`` for (variables, observations), the same operations in the
    same order (ATen's Correlation.cpp: the mean over observations, divided by their
    count, subtracted, ``mm`` with the transpose, divided by count − 1), so the same
    values bit for bit, except that ``variables`` itself is centred in place where
    ``torch.cov`` makes a centred copy (376 MB at the build's peak)."""
    count = torch.scalar_tensor(variables.shape[1], dtype=torch.long)
    variables.sub_((variables.sum(1) / count).unsqueeze(1))
    return torch.true_divide(torch.mm(variables, variables.t()), count - 1)


def _nearest_centroid(keys: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    norms = (centroids ** 2).sum(1)
    # In blocks, each scaled and shifted in place: 16,384 keys × 1,024 centroids is 64 MB
    # of distances at a time (−2 x + n is exactly n − 2 x, so the same argmin).
    return torch.cat([(block @ centroids.T).mul_(-2).add_(norms).argmin(1)
                      for block in keys.split(16_384)])


class NeighbourMemory:
    """The index (built, or being built on a worker thread) and how to mix it in."""

    def __init__(self, index: NeighbourIndex | Future[NeighbourIndex],
                 settings: NeighbourSettings, vocab_size: int) -> None:
        """``index``: built, or being built (:meth:`building`)."""
        self._index, self.settings, self.vocab_size = index, settings, vocab_size
        self._lock = threading.Lock()
        self._failed = False

    @classmethod
    def building(cls, network: NextWordModel, text: np.ndarray, start_id: int, pad_id: int,
                 context_size: int, settings: NeighbourSettings, vocab_size: int,
                 cache: Path | None = None, after: Callable[[], object] | None = None
                 ) -> NeighbourMemory:
        """Build the index on a worker thread (or read it from ``cache``, and write it
        there once built); :meth:`ready` says when it can be used. ``after``: what the
        worker waits for first (the rest of loading: the threads share the GIL)."""
        def build() -> NeighbourIndex:
            if after is not None:
                after()
            if cache is not None and cache.is_file():
                try:
                    return NeighbourIndex.from_dict(torch.load(cache, weights_only=True))
                except (ValueError, KeyError, RuntimeError, EOFError) as exc:
                    log.warning("neighbour cache %s unreadable (%s); rebuilding", cache, exc)
            index = NeighbourIndex.from_text(network, text, start_id, pad_id, context_size,
                                             settings)
            _release_freed_memory()
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                with atomic_open(cache, "wb", encoding=None) as handle:
                    torch.save(index.to_dict(), handle)
            return index

        # A daemon thread, not an executor's: a short-lived process (``ime learn``) must
        # not wait minutes at exit for an index it never used; the cache is written
        # atomically, so being stopped half-way leaves no broken file.
        future: Future[NeighbourIndex] = Future()

        def run() -> None:
            try:
                future.set_result(build())
            except BaseException as exc:  # handed to whoever waits for the index
                future.set_exception(exc)

        threading.Thread(target=run, name="neighbours", daemon=True).start()
        return cls(future, settings, vocab_size)

    @staticmethod
    def fingerprint(network: NextWordModel, text: np.ndarray, settings: NeighbourSettings) -> str:
        """What an index depends on, hashed: the network's weights, the text, and the
        settings of the index (not κ or T, which only mix it in)."""
        digest = hashlib.sha1(repr((settings.dims, settings.lists, settings.seed)).encode())
        digest.update(weights_fingerprint(network).encode())
        digest.update(np.ascontiguousarray(text).tobytes())
        return digest.hexdigest()[:16]

    def ready(self) -> bool:
        """Whether the build has ended (a failed one too: :meth:`wait` then raises)."""
        return not isinstance(self._index, Future) or self._index.done()

    def available(self) -> bool:
        """Whether the index is built and usable, without waiting; a failed build is
        logged once and the memory stays unused."""
        if self._failed or not self.ready():
            return False
        try:
            self.wait()
        except (RuntimeError, ValueError, OSError, MemoryError):  # suggestions go on without
            log.exception("the neighbour memory could not be built; going on without it")
            self._failed = True
            return False
        return True

    def wait(self) -> NeighbourIndex:
        """The index, once built (re-raises what the build raised)."""
        return self.index

    @property
    def index(self) -> NeighbourIndex:
        """The index, waiting for it if it is still being built."""
        with self._lock:
            if isinstance(self._index, Future):
                self._index = self._index.result()
            return self._index

    def probs(self, states: torch.Tensor) -> torch.Tensor:
        """(B, hidden) network states -> (B, V) the neighbours' votes: rows sum to 1, or
        to 0 where the probed lists held no key."""
        settings = self.settings
        distances, words = self.index.search(states, settings.k, settings.probes)
        return votes(distances, words, settings.temperature, self.vocab_size)

    def mix(self, log_probs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        """log((1 − κ) P + κ P_neighbours) from log P (B, V) and the states (B, hidden);
        a row without neighbours stays as it was."""
        if self.settings.weight <= 0:
            return log_probs
        return self.mix_probs(log_probs, self.probs(states), self.settings.weight)

    def mix_first(self, log_probs: torch.Tensor, states: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """:meth:`mix`, and the mixture the first suggestion is ranked by (its own κ and
        T, one search for both), or None where the settings give it none."""
        settings = self.settings
        if settings.first_weight is None or settings.first_temperature is None:
            return self.mix(log_probs, states), None
        distances, words = self.index.search(states, settings.k, settings.probes)
        # P and the rows with a vote once for both (a key press is one row of 30,000
        # words: each pass over it counts); the same values as mix(), bit for bit.
        probs = log_probs.exp()
        found = torch.isfinite(distances).any(1, keepdim=True)  # (B, 1)
        served, first = (
            self.mix_probs(log_probs, votes(distances, words, temperature, self.vocab_size),
                           weight, probs, found)
            for temperature, weight in ((settings.temperature, settings.weight),
                                        (settings.first_temperature, settings.first_weight)))
        return served, first

    def mix_targets(self, probs: torch.Tensor, states: torch.Tensor, targets: torch.Tensor
                    ) -> torch.Tensor:
        """:meth:`mix` for one word per row: P(target) (N,) -> (1 − κ) P + κ P_neighbours
        of that word, from the states (N, hidden); a row without neighbours stays."""
        neighbours = self.probs(states)  # (N, V)
        mixed = ((1 - self.settings.weight) * probs
                 + self.settings.weight * neighbours.gather(1, targets[:, None])[:, 0])
        return torch.where(neighbours.sum(1) > 0, mixed, probs)

    @staticmethod
    def mix_probs(log_probs: torch.Tensor, neighbours: torch.Tensor, weight: float,
                  probs: torch.Tensor | None = None, found: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """log((1 − weight) P + weight P_neighbours) from log P and P_neighbours (B, V);
        rows of P_neighbours that are all zero (no neighbour found) leave P as it was.
        ``probs`` (P itself) and ``found`` ((B, 1): the rows with a neighbour), when the
        caller has them, each spare a pass over the vocabulary."""
        if weight <= 0:
            return log_probs
        if found is None:
            found = neighbours.sum(1, keepdim=True) > 0  # (B, 1)
        scaled = log_probs.exp().mul_(1 - weight) if probs is None else probs * (1 - weight)
        mixed = scaled.add_(neighbours, alpha=weight).log_()
        return mixed if bool(found.all()) else torch.where(found, mixed, log_probs)


def votes(distances: torch.Tensor, words: torch.Tensor, temperature: float, vocab_size: int
          ) -> torch.Tensor:
    """The neighbours' votes (B, V) from their squared distances and next words (B, k),
    each weighted exp(−distance / T): rows sum to 1, or to 0 where none was found."""
    weights = torch.softmax(-distances / temperature, dim=1)  # inf: no vote
    weights = weights.nan_to_num_(0.0)  # a row of inf only: no neighbour at all
    return torch.zeros(len(distances), vocab_size).scatter_add_(1, words, weights)


def ranked_suggestable(probs: torch.Tensor, special_ids: list[int]) -> torch.Tensor:
    """Each row of ``probs`` (B, V) sorted ascending, the special words set to −1 first:
    the ``ranked`` that :func:`mixed_ranks` searches."""
    ranked = probs.clone()
    ranked[:, special_ids] = -1.0
    return ranked.sort(1).values


def mixed_ranks(probs: torch.Tensor, ranked: torch.Tensor, neighbours: torch.Tensor,
                words: torch.Tensor, weight: float, targets: torch.Tensor,
                special_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """What :meth:`NeighbourMemory.mix_probs` followed by ``RankingTotals.add`` would
    give, without the (B, V) mixture: each target's log-probability and rank.

    ``probs`` (B, V): the mixture before the neighbours; ``ranked``: each row of it
    sorted ascending with the special words set to −1; ``neighbours`` (B, V) the
    votes and ``words`` (B, k) the words they went to. Only the voted words move,
    so every other word is above the target exactly when its (1 − κ) P is: one
    binary search in ``ranked`` per row, then the ≤ k voted words (and the target)
    corrected. The export's grid of κ and T then costs about a key press's work
    per window, not eight passes over the vocabulary (the full-validation export:
    41 minutes before, 25 after, the same checkpoint byte for byte).
    """
    found = neighbours.sum(1) > 0  # (B,): a row without neighbours stays as it was
    keep = torch.where(found, 1.0 - weight, 1.0)[:, None]  # (B, 1)
    add = torch.where(found, weight, 0.0)[:, None]
    target = (keep * probs.gather(1, targets[:, None])
              + add * neighbours.gather(1, targets[:, None]))  # (B, 1)
    threshold = target / keep  # a word not voted for is above the target past this
    above = ranked.shape[1] - torch.searchsorted(ranked, threshold, right=True)  # (B, 1)
    # The voted words and the target, each once, specials and padding out: the target
    # is handled here, as its (1 − κ) P / (1 − κ) may round to just above its P.
    voted, _ = torch.cat([words, targets[:, None]], 1).sort(1)  # (B, k + 1)
    once = torch.ones_like(voted, dtype=torch.bool)
    once[:, 1:] = voted[:, 1:] != voted[:, :-1]
    once &= ~torch.isin(voted, torch.tensor(special_ids))
    was_above = (probs.gather(1, voted) > threshold) & once
    now_above = (keep * probs.gather(1, voted) + add * neighbours.gather(1, voted) > target) & once
    rank = 1 + above[:, 0] - was_above.sum(1) + now_above.sum(1)
    return target[:, 0].log(), rank


def best_suggestable(probs: torch.Tensor, special_ids: list[int]) -> torch.Tensor:
    """(B,) each row's most probable word of ``probs`` (B, V) that is not special: the
    ``best`` :func:`first_words` starts from."""
    suggestable = probs.clone()
    suggestable[:, special_ids] = -1.0
    return suggestable.argmax(1)


def first_words(probs: torch.Tensor, best: torch.Tensor, neighbours: torch.Tensor,
                words: torch.Tensor, weight: float, special_ids: list[int]) -> torch.Tensor:
    """(B,) the best suggestable word of :meth:`NeighbourMemory.mix_probs`'s mixture
    without building it: ``best`` (B,), the best suggestable word of ``probs`` (B, V),
    or one of the voted ``words`` (B, k), whichever the mixture puts higher (a word no
    neighbour voted for keeps its place below ``best``)."""
    candidates = torch.cat([best[:, None], words], 1)  # (B, k + 1)
    found = neighbours.sum(1, keepdim=True) > 0  # (B, 1)
    keep = torch.where(found, 1.0 - weight, 1.0)
    add = torch.where(found, weight, 0.0)
    mixed = keep * probs.gather(1, candidates) + add * neighbours.gather(1, candidates)
    mixed[torch.isin(candidates, torch.tensor(special_ids))] = -1.0
    return candidates.gather(1, mixed.argmax(1, keepdim=True))[:, 0]


def first_placed(rank: torch.Tensor, first_rank: torch.Tensor, first: torch.Tensor,
                 targets: torch.Tensor) -> torch.Tensor:
    """Each target's rank (B,) once ``first`` (B,) is put first: 1 if it is the target,
    else its rank, plus one when the first word was ranked below it (``first_rank``:
    that word's rank in the same ranking, as :func:`mixed_ranks` gives it).

        ranking     a  b  t  c  f         ->   f  a  b  t  c      t: 3 -> 4
        ranking     a  f  t  c            ->   f  a  t  c         t: 3 -> 3
    """
    return torch.where(first == targets, 1, rank + (first_rank > rank).long())
