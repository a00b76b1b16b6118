"""Stage 1: raw corpus -> deduplicated, split, segmented, windowed training data.

Two streaming passes, so memory holds the vocabulary counts and the set of
text digests, never the corpus:

    pass 1: corpus files ──read/clean──> text ──digest seen? drop──> split
            ──jieba (all cores, chunks in flight)──> {split}.tokens.txt, word counts of train
    pass 2: vocab from train counts; {split}.tokens.txt ──ids──> windows ──> {split}-NNNNN.jsonl

Outputs in ``output_dir``: ``{train,valid,test}-00000.jsonl``, ... (windows,
in shards of ``shard_size`` cut at sentence ends),
``{train,valid,test}.tokens.txt`` (one segmented sentence per line, words
separated by spaces, for baselines and replay), ``vocab.json``, ``stats.json``.

Deduplication happens before the split: the bundled corpus is one third
duplicate lines, and a duplicate on both sides of the split would let the
test set leak into training. The split is seeded: by default a shuffle cut
at the exact fractions (it holds the unique texts in memory, a few MB for the
bundled corpus); with ``stream`` a hash of each text, so nothing grows with
the corpus but the digests and the word counts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from input_method.atomic import atomic_open, atomic_write_text
from input_method.config import ProcessConfig
from input_method.corpus import ReadStats, read_corpus
from input_method.errors import CorpusError
from input_method.segment import segment_texts
from input_method.vocab import Vocab
from input_method.windows import sentence_windows, write_window_shards

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


def check_fractions(config: ProcessConfig) -> None:
    """Train and valid fractions in (0, 1) that leave room for a test split."""
    fractions = (config.train_fraction, config.valid_fraction)
    if not (0 < config.train_fraction < 1 and 0 <= config.valid_fraction < 1
            and sum(fractions) < 1):
        raise CorpusError(f"bad split fractions train={fractions[0]} valid={fractions[1]}: "
                          "each in (0, 1) with room left for the test split")


def assign_split(text: str, config: ProcessConfig) -> str:
    """The split of ``text``: a seeded hash mapped onto the fractions."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"),
                             key=str(config.seed).encode(), digest_size=8).digest()
    position = int.from_bytes(digest, "big") / 2**64  # uniform in [0, 1)
    if position < config.train_fraction:
        return "train"
    if position < config.train_fraction + config.valid_fraction:
        return "valid"
    return "test"


def shuffled_splits(count: int, config: ProcessConfig) -> list[str]:
    """The split of each of ``count`` texts: a seeded shuffle cut at the exact fractions."""
    order = list(range(count))
    random.Random(config.seed).shuffle(order)
    n_train = round(count * config.train_fraction)
    n_valid = round(count * config.valid_fraction)
    labels = ["test"] * count
    for position, index in enumerate(order[:n_train + n_valid]):
        labels[index] = "train" if position < n_train else "valid"
    return labels


def unique_texts(texts: Iterable[str], counter: Counter[str]) -> Iterator[str]:
    """Drop exact duplicates (by 16-byte digest), counting them under ``"duplicates"``."""
    seen: set[bytes] = set()
    for text in texts:
        digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        if digest in seen:
            counter["duplicates"] += 1
            continue
        seen.add(digest)
        yield text


def process(config: ProcessConfig) -> dict[str, Any]:
    """Run the whole stage and return the statistics written to ``stats.json``."""
    check_fractions(config)
    if config.shard_size < 1:
        raise CorpusError(f"--shard-size must be positive, got {config.shard_size}")
    started = time.perf_counter()
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    read_stats = ReadStats()
    tally: Counter[str] = Counter()
    word_counts: Counter[str] = Counter()
    split_stats = {name: Counter() for name in SPLITS}

    texts: Iterable[str] = read_corpus(config.inputs, config.input_format, config.encoding,
                                       read_stats)
    if config.dedup:
        texts = unique_texts(texts, tally)
    if config.stream:
        def split_of(index: int, text: str) -> str:
            return assign_split(text, config)
    else:  # exact fractions need the number of texts first: hold them (not their words)
        texts = list(texts)
        labels = shuffled_splits(len(texts), config)

        def split_of(index: int, text: str) -> str:
            return labels[index]
    # Labels of the texts handed to the segmentation pool, in order: the pool
    # returns results in the same order, so each result pops its own label.
    in_flight: deque[tuple[str, int]] = deque()

    def labelled(stream: Iterable[str]) -> Iterator[str]:
        for index, text in enumerate(stream):
            in_flight.append((split_of(index, text), len(text)))
            yield text

    with ExitStack() as stack:
        token_files = {name: stack.enter_context(atomic_open(out / f"{name}.tokens.txt"))
                       for name in SPLITS}
        bar = stack.enter_context(tqdm(desc="segment", unit=" chars", unit_scale=True))
        for sentences in segment_texts(labelled(texts), config.user_dict, config.workers,
                                       unit=config.unit):
            name, chars = in_flight.popleft()
            stats = split_stats[name]
            stats["texts"] += 1
            stats["characters"] += chars
            for sentence in sentences:
                token_files[name].write(" ".join(sentence) + "\n")
                stats["sentences"] += 1
                stats["tokens"] += len(sentence)
                if name == "train":
                    word_counts.update(sentence)
            bar.update(chars)
        unique = sum(s["texts"] for s in split_stats.values())
        if unique == 0:
            raise CorpusError("the corpus has no text: every input was empty or unreadable")
        for name in SPLITS:
            if not split_stats[name]["texts"]:
                raise CorpusError(
                    f"the {name} split would be empty ({unique} unique texts); "
                    "give more text or change --train-fraction/--valid-fraction")

    vocab = Vocab.build(word_counts, config.min_freq, config.max_vocab_size)
    vocab.save(out / "vocab.json")
    for name in SPLITS:
        split_stats[name].update(_write_windows(out, name, vocab, config.context_size,
                                                config.shard_size))

    chars = sum(s["characters"] for s in split_stats.values())
    seconds = time.perf_counter() - started
    stats = {
        "config": asdict(config),
        "lines_read": read_stats.lines,
        "texts_read": read_stats.texts,
        "empty_lines_dropped": read_stats.empty,
        "broken_lines_skipped": read_stats.broken,
        "duplicates_dropped": tally["duplicates"],
        "unique_texts": unique,
        "characters": chars,
        "vocab_size": len(vocab),
        "vocab_fingerprint": vocab.fingerprint(),
        "train_types": len(word_counts),
        "splits": {name: {**split_stats[name], "oov_rate": round(
            split_stats[name]["unknown"] / max(split_stats[name]["tokens"], 1), 4)}
            for name in SPLITS},
        "seconds": round(seconds, 2),
        "chars_per_second": round(chars / max(seconds, 1e-9)),
    }
    for split in stats["splits"].values():
        split.pop("unknown", None)
    atomic_write_text(out / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2))
    return stats


def _write_windows(out: Path, name: str, vocab: Vocab, context_size: int,
                   shard_size: int) -> Counter[str]:
    """Pass 2 for one split: its tokens file, encoded, to window shards; counts OOV tokens."""
    counts: Counter[str] = Counter()

    def sentences() -> Iterator[Iterator[tuple[list[int], int]]]:
        with (out / f"{name}.tokens.txt").open(encoding="utf-8") as handle:
            for line in handle:
                ids = [vocab.start_id, *vocab.encode(line.split())]
                counts["unknown"] += ids.count(vocab.unk_id)
                yield sentence_windows(ids, context_size, vocab.pad_id)

    counts["windows"], counts["shards"] = write_window_shards(out, name, sentences(), shard_size)
    return counts
