"""Phrase memory: what followed the longest context of 3 to 6 words in the training text.

The trigram remembers word triples; the test text (the same month of the same
newspaper, more reviews of the same shops) also repeats longer phrases. The
memory keeps the training split itself, as word ids, and answers "what came
after these words there?" for the longest run of the last 3 to ``longest``
words (``<s>`` included) it holds, as relative counts: an "infinity-gram" cut
short, with no smoothing. Mixed into the trigram only where such a run exists,

    P_counts(w | context) = (1 - ν) P_trigram(w | u v) + ν P_memory(w | longest run)

it adds 0.5 hit@1 points on validation (README: "Mixing in the trigram").
Stored as the ids alone (lzma, 1.7 MB for the bundled corpus), it also lets
the trigram be rebuilt when the model loads instead of stored (3.4 MB).

Lookups use the text's suffixes sorted by their first ``longest`` words; the
suffixes that begin with a context form one run of that order, found by
narrowing one column at a time:

    text   <s> 我 很 喜欢 <s> 我 很 好 ...
    suffix at i:   (t[i], t[i+1], ..., t[i+longest-1])   sorted lexicographically
    context 我 很  -> rows where column 0 is 我, then, among those, column 1 is 很
    next words     -> t[i + len(context)] of those rows (a sentence start is skipped)
"""

from __future__ import annotations

import lzma
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from input_method.dataset import WindowDataset, rebuild_sentences
from input_method.ngram import KneserNeyTrigram

FORMAT = 1
SHORTEST = 3  # shorter contexts are the trigram's


class PhraseMemory:
    """The training text as ids, indexed by the words each position starts."""

    def __init__(self, text: np.ndarray, vocab_size: int, start_id: int, pad_id: int,
                 longest: int = 6) -> None:
        """``text``: every sentence as ``<s>`` then its word ids, one after another."""
        if longest < SHORTEST:
            raise ValueError(f"longest must be at least {SHORTEST}, got {longest}")
        text = np.asarray(text)
        if text.ndim != 1 or (len(text) and (text.min() < 0 or text.max() >= vocab_size)):
            raise ValueError("the memory's text must be one row of ids of the vocabulary")
        if len(text) and text[0] != start_id:
            raise ValueError("the memory's text must begin with a sentence start")
        self.vocab_size, self.start_id, self.pad_id = vocab_size, start_id, pad_id
        self.longest = longest
        dtype = np.uint16 if vocab_size < np.iinfo(np.uint16).max else np.int32
        self.text = text.astype(dtype)
        # The sorted index is built on first use (or by rebuilding()'s worker thread).
        self._order: np.ndarray | None = None
        self._sorted: list[np.ndarray] = []
        self._lock = threading.Lock()

    def index(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """The text's positions sorted by their first ``longest`` words, and those words
        in that order, column by column: (N,) and ``longest`` × (N,). Built once."""
        with self._lock:
            if self._order is None:
                end = np.iinfo(self.text.dtype).max  # past the end of the text: above every id
                columns = [np.concatenate([self.text[k:],
                                           np.full(min(k, len(self.text)), end, self.text.dtype)])
                           for k in range(self.longest)]
                order = np.lexsort(columns[::-1]).astype(np.int64)  # column 0 sorts first
                self._sorted = [column[order] for column in columns]
                self._order = order
            return self._order, self._sorted

    @classmethod
    def from_windows(cls, windows: WindowDataset, vocab_size: int, start_id: int, pad_id: int,
                     longest: int = 6) -> PhraseMemory:
        """The text behind a split's windows, which ``ime process`` writes word after word
        (ValueError if they were reordered: the text could not be rebuilt)."""
        last, targets = windows.inputs[:, -1], windows.targets
        inside = last[1:] != start_id
        if len(targets) and (last[0] != start_id
                             or not torch.equal(last[1:][inside], targets[:-1][inside])):
            raise ValueError("the windows are not in text order; cannot rebuild the text")
        sentences = rebuild_sentences(windows, start_id)
        text = np.fromiter((w for sentence in sentences for w in sentence), dtype=np.int64)
        return cls(text, vocab_size, start_id, pad_id, longest)

    def trigram_windows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 2) last two context ids and (N,) next ids, as the split's windows give them."""
        text = torch.from_numpy(self.text.astype(np.int64))
        keep = torch.nonzero(text != self.start_id)[:, 0]
        keep = keep[keep > 0]
        v = text[keep - 1]
        u = torch.where(v == self.start_id, torch.full_like(v, self.pad_id),
                        text[(keep - 2).clamp(min=0)])
        return torch.stack([u, v], dim=1), text[keep]

    def follow(self, context: list[int]) -> tuple[dict[int, int], int]:
        """Next-word counts after the longest run of ``context``'s last words seen in
        the text (3 to ``longest``; padding dropped), and the run's length (0: none)."""
        words = [w for w in context[-self.longest:] if w != self.pad_id]
        order, columns = self.index()
        for length in range(len(words), SHORTEST - 1, -1):
            low, high = 0, len(order)
            for column, word in enumerate(words[-length:]):
                values = columns[column][low:high]
                # The query in the columns' own type: a Python int would make numpy
                # convert the whole column first (milliseconds a key press).
                key = self.text.dtype.type(word)
                low, high = (low + int(np.searchsorted(values, key, "left")),
                             low + int(np.searchsorted(values, key, "right")))
                if low == high:
                    break
            if low == high:
                continue
            after = order[low:high] + length
            after = after[after < len(self.text)]
            nexts = self.text[after]
            nexts = nexts[nexts != self.start_id]  # the run ended its sentence
            if len(nexts):
                found, counts = np.unique(nexts, return_counts=True)
                return dict(zip(found.tolist(), counts.tolist(), strict=True)), length
        return {}, 0

    def next_words(self, context: list[int]) -> tuple[list[int], torch.Tensor, int]:
        """:meth:`follow` as the next words' ids, their relative counts (float32) and the
        run's length: the sparse form mixed in at every key press."""
        counts, length = self.follow(context)
        total = max(sum(counts.values()), 1)
        return list(counts), torch.tensor(list(counts.values()), dtype=torch.float32) / total, length

    def probs(self, contexts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, context) ids -> (batch, V) relative counts (zero rows where nothing
        matched) and (batch,) the length matched."""
        probs = torch.zeros(len(contexts), self.vocab_size)
        matched = torch.zeros(len(contexts), dtype=torch.long)
        for row, context in enumerate(contexts.tolist()):
            words, shares, length = self.next_words(context)
            if length:
                probs[row, words] = shares
                matched[row] = length
        return probs, matched

    def pack(self) -> dict[str, Any]:
        """What a checkpoint stores: the text's ids compressed, and how to read them."""
        return {"format": FORMAT, "dtype": str(self.text.dtype), "words": len(self.text),
                "longest": self.longest, "lzma": lzma.compress(self.text.tobytes(), preset=9)}

    @classmethod
    def unpack(cls, stored: dict[str, Any], vocab_size: int, start_id: int,
               pad_id: int) -> PhraseMemory:
        """Rebuild a memory from ``pack()``'s output (ValueError when it is damaged)."""
        if stored.get("format") != FORMAT:
            raise ValueError(f"phrase memory format {stored.get('format')!r} is not {FORMAT}")
        try:
            raw = lzma.decompress(stored["lzma"])
        except lzma.LZMAError as exc:
            raise ValueError(f"phrase memory does not decompress: {exc}") from None
        text = np.frombuffer(raw, dtype=np.dtype(stored["dtype"]))
        if len(text) != stored["words"]:
            raise ValueError("phrase memory has the wrong length")
        return cls(text.astype(np.int64), vocab_size, start_id, pad_id, int(stored["longest"]))


class TrigramWithMemory:
    """The trigram with the phrase memory mixed into it where a run of 3+ words matched:
    the same ``probs(contexts)`` as the trigram's, given the last ``longest`` words."""

    def __init__(self, trigram: KneserNeyTrigram | Future[KneserNeyTrigram],
                 memory: PhraseMemory, weight: float) -> None:
        """``trigram``: built, or being built (:meth:`rebuilding`)."""
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"the memory's weight must be in [0, 1], got {weight}")
        self._trigram, self.memory, self.weight = trigram, memory, weight
        self.vocab_size = memory.vocab_size
        self.min_count = 1  # the memory holds the whole text, so the whole trigram

    @classmethod
    def rebuilding(cls, memory: PhraseMemory, weight: float) -> TrigramWithMemory:
        """The memory's index and the whole trigram rebuilt from its text on a worker
        thread, so a model can load (and a window open) meanwhile; the first use waits."""
        def build() -> KneserNeyTrigram:
            memory.index()
            return KneserNeyTrigram(memory.vocab_size, *memory.trigram_windows())

        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="trigram")
        future = pool.submit(build)
        pool.shutdown(wait=False)  # the one task still runs to its end
        return cls(future, memory, weight)

    @property
    def trigram(self) -> KneserNeyTrigram:
        """The trigram, waiting for it if it is still being built."""
        if isinstance(self._trigram, Future):
            self._trigram = self._trigram.result()
        return self._trigram

    def entries(self) -> int:
        """The trigram's stored entries (the memory is counted in words: ``memory.text``)."""
        return int(self.trigram.entries())

    def probs(self, contexts: torch.Tensor) -> torch.Tensor:
        """(batch, context) ids, ``<pad>`` on the left -> (batch, V) probabilities."""
        return self.probs_by_weight(contexts, (self.weight,))[self.weight]

    def probs_by_weight(self, contexts: torch.Tensor, weights: tuple[float, ...]
                        ) -> dict[float, torch.Tensor]:
        """:meth:`probs` at each memory weight ν of ``weights`` (the export's grid), from
        one trigram and one memory lookup per row."""
        trigram = self.trigram.probs(contexts)  # (batch, V), a new tensor: changed in place
        matched = []
        if any(weights) and contexts.shape[1] >= SHORTEST:
            # Only matched rows change, and only their next words get added mass: a key
            # press whose context ran out of the text costs the lookup alone.
            for row, context in enumerate(contexts.tolist()):
                words, shares, length = self.memory.next_words(context)
                if length:
                    matched.append((row, words, shares))
        result = {}
        for position, weight in enumerate(weights):
            last = position == len(weights) - 1
            probs = trigram if last else trigram.clone()
            for row, words, shares in matched if weight else ():
                probs[row] *= 1 - weight
                probs[row, words] += weight * shares
            result[weight] = probs
        return result


# What a shipped model mixes into its network (checkpoint.load_ngram).
CountModel = KneserNeyTrigram | TrigramWithMemory


def plain_trigram(ngram: CountModel) -> KneserNeyTrigram:
    """The trigram alone, without the memory (the diagnostics study the trigram's mixing)."""
    return ngram.trigram if isinstance(ngram, TrigramWithMemory) else ngram
