"""Word segmentation with jieba, wrapped.

We use a private ``jieba.Tokenizer`` (never the module-level default one, so a
user dictionary loaded here cannot leak into other code), quiet its logging,
drop whitespace tokens, and cut texts into sentences at sentence-final
punctuation so that every sentence starts with the start token.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import jieba

from input_method.config import UNITS
from input_method.errors import CorpusError

# jieba announces every dictionary load on stderr at DEBUG/INFO; keep it quiet.
logging.getLogger("jieba").setLevel(logging.WARNING)

SENTENCE_END = frozenset("。！？!?；;…")
# Closing quotes and brackets right after a sentence end belong to that sentence.
CLOSERS = frozenset("”’」』）)】》\"'")
# A Han character: what makes a token a Chinese word (evaluation) or cuttable (char unit).
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def to_units(tokens: list[str], unit: str) -> list[str]:
    """Words as they are, or (``unit="char"``) each word with Chinese in it cut into characters.

    Numbers, Latin words and punctuation stay whole in both units.
    """
    if unit == "word":
        return tokens
    return [piece for token in tokens for piece in (list(token) if HAN.search(token) else [token])]


class Segmenter:
    """Cuts Chinese text into words (or characters) with its own jieba dictionary."""

    def __init__(self, user_dict: str | None = None, unit: str = "word") -> None:
        if unit not in UNITS:
            raise CorpusError(f"unknown unit {unit!r}; choose from {', '.join(UNITS)}")
        self.unit = unit
        self._tokenizer = jieba.Tokenizer()
        self._tokenizer.initialize()
        if user_dict is not None:
            path = Path(user_dict)
            if not path.is_file():
                raise CorpusError(f"user dictionary not found: {path}")
            self._tokenizer.load_userdict(str(path))

    def tokens(self, text: str) -> list[str]:
        """Words (or characters) of ``text`` in order, whitespace dropped."""
        return to_units([t for t in self._tokenizer.lcut(text, HMM=True) if t.strip()], self.unit)

    def sentences(self, text: str) -> list[list[str]]:
        """Words of ``text``, cut into sentences after 。！？；… (and their closing quotes)."""
        return split_sentences(self.tokens(text))


def _is_end(token: str) -> bool:
    return all(ch in SENTENCE_END for ch in token)


def split_sentences(tokens: list[str]) -> list[list[str]]:
    """Cut a token list into sentences; the last one may lack an end mark."""
    sentences: list[list[str]] = []
    current: list[str] = []
    ended = False
    for token in tokens:
        if ended and token not in CLOSERS:
            sentences.append(current)
            current, ended = [], False
        current.append(token)
        ended = ended or _is_end(token)
    if current:
        sentences.append(current)
    return sentences


def current_sentence(text: str) -> tuple[str, bool]:
    """The text of the sentence being typed, and whether an end mark came before it.

    Cut at the last 。！？；… (and the closing quotes after it), the same cut
    :func:`split_sentences` makes on tokens, but before segmentation, so that
    only the open sentence is handed to jieba on each key press.
    """
    last_end = max(text.rfind(mark) for mark in SENTENCE_END)
    if last_end < 0:
        return text, False
    begin = last_end + 1
    while begin < len(text) and text[begin] in CLOSERS:
        begin += 1
    return text[begin:], True


# --- parallel segmentation -------------------------------------------------
# Each worker process needs one Segmenter, kept in this module-level slot: that
# is how multiprocessing hands per-process state to the mapped function without
# pickling a jieba dictionary per task. With fork the parent builds it once and
# the workers inherit it (copy-on-write), so no worker spends the ~0.7 s of
# loading jieba's dictionary again; with spawn each worker's initializer builds it.
_worker_segmenter: Segmenter | None = None


def _init_worker(user_dict: str | None, unit: str) -> None:
    global _worker_segmenter
    _worker_segmenter = Segmenter(user_dict, unit)


def _segment_chunk(texts: list[str]) -> list[list[list[str]]]:
    assert _worker_segmenter is not None, "worker initializer did not run"
    return [_worker_segmenter.sentences(t) for t in texts]


def default_workers() -> int:
    """One segmentation process per usable CPU core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def segment_texts(texts: Iterable[str], user_dict: str | None = None, workers: int = 0,
                  chunk_size: int = 256, unit: str = "word") -> Iterator[list[list[str]]]:
    """Segment texts into sentences of words, in order, over ``workers`` processes.

    Texts are streamed to the pool in chunks, so memory holds only the chunks
    in flight, not the corpus. ``workers=1`` segments in this process.
    """
    workers = workers or default_workers()
    if workers == 1:
        segmenter = Segmenter(user_dict, unit)
        for text in texts:
            yield segmenter.sentences(text)
        return
    global _worker_segmenter
    fork = os.name == "posix"
    context = multiprocessing.get_context("fork" if fork else "spawn")
    if fork:
        _worker_segmenter = Segmenter(user_dict, unit)
        pool_args: dict = {}
    else:
        pool_args = {"initializer": _init_worker, "initargs": (user_dict, unit)}
    try:
        with context.Pool(workers, **pool_args) as pool:
            for chunk in pool.imap(_segment_chunk, _chunks(texts, chunk_size)):
                yield from chunk
    finally:
        _worker_segmenter = None  # the parent's copy is not needed after the pool


def _chunks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
