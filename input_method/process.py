"""Stage 1: raw corpus -> deduplicated, split, segmented, windowed training data.

    corpus files ──read/clean──> texts ──dedup──> unique texts ──seeded split──>
    train / valid / test texts ──jieba──> sentences of words
    ──vocab from train only──> ids ──windows──> {split}.jsonl

Outputs in ``output_dir``: ``{train,valid,test}.jsonl`` (windows),
``{train,valid,test}.tokens.txt`` (one segmented sentence per line, words
separated by spaces, for baselines and replay), ``vocab.json``, ``stats.json``.

Deduplication happens before the split: the bundled corpus is one third
duplicate lines, and a duplicate on both sides of the split would let the
test set leak into training.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
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
from input_method.windows import sentence_windows, write_windows

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")


def dedup(texts: list[str]) -> list[str]:
    """Drop exact duplicates, keeping the first occurrence and the order."""
    return list(dict.fromkeys(texts))


def split_texts(texts: list[str], config: ProcessConfig) -> dict[str, list[str]]:
    """Shuffle with the config's seed and cut into train/valid/test by fraction."""
    fractions = (config.train_fraction, config.valid_fraction)
    if not (0 < config.train_fraction < 1 and 0 <= config.valid_fraction < 1
            and sum(fractions) < 1):
        raise CorpusError(f"bad split fractions train={fractions[0]} valid={fractions[1]}: "
                          "each in (0, 1) with room left for the test split")
    order = list(range(len(texts)))
    random.Random(config.seed).shuffle(order)
    n_train = round(len(texts) * config.train_fraction)
    n_valid = round(len(texts) * config.valid_fraction)
    cut = {"train": order[:n_train], "valid": order[n_train:n_train + n_valid],
           "test": order[n_train + n_valid:]}
    splits = {name: [texts[i] for i in sorted(idx)] for name, idx in cut.items()}
    for name, items in splits.items():
        if not items:
            raise CorpusError(
                f"the {name} split would be empty ({len(texts)} unique texts); "
                "give more text or change --train-fraction/--valid-fraction")
    return splits


def process(config: ProcessConfig) -> dict[str, Any]:
    """Run the whole stage and return the statistics written to ``stats.json``."""
    started = time.perf_counter()
    out = Path(config.output_dir)
    read_stats = ReadStats()
    texts = list(tqdm(read_corpus(config.inputs, config.input_format, config.encoding, read_stats),
                      desc="read", unit=" texts", leave=False))
    if not texts:
        raise CorpusError("the corpus has no text: every input was empty or unreadable")
    unique = dedup(texts) if config.dedup else texts
    log.info("read %d texts, %d after removing exact duplicates", len(texts), len(unique))
    splits = split_texts(unique, config)

    # Segment all splits in one pool so worker start-up is paid once.
    order = [(name, text) for name in SPLITS for text in splits[name]]
    sentences: dict[str, list[list[str]]] = {name: [] for name in SPLITS}
    segmented = segment_texts((t for _, t in order), config.user_dict, config.workers)
    chars = sum(len(t) for t in unique)
    with tqdm(total=chars, desc="segment", unit=" chars", unit_scale=True) as bar:
        for (name, text), text_sentences in zip(order, segmented, strict=True):
            sentences[name].extend(text_sentences)
            bar.update(len(text))

    counts = Counter(token for sentence in sentences["train"] for token in sentence)
    vocab = Vocab.build(counts, config.min_freq, config.max_vocab_size)
    out.mkdir(parents=True, exist_ok=True)
    vocab.save(out / "vocab.json")

    split_stats: dict[str, Any] = {}
    for name in SPLITS:
        split_stats[name] = _write_split(out, name, splits[name], sentences[name], vocab, config)

    stats = {
        "config": asdict(config),
        "lines_read": read_stats.lines,
        "texts_read": len(texts),
        "empty_lines_dropped": read_stats.empty,
        "broken_lines_skipped": read_stats.broken,
        "duplicates_dropped": len(texts) - len(unique),
        "unique_texts": len(unique),
        "characters": chars,
        "vocab_size": len(vocab),
        "vocab_fingerprint": vocab.fingerprint(),
        "train_types": len(counts),
        "splits": split_stats,
        "seconds": round(time.perf_counter() - started, 2),
        "chars_per_second": round(chars / max(time.perf_counter() - started, 1e-9)),
    }
    atomic_write_text(out / "stats.json", json.dumps(stats, ensure_ascii=False, indent=2))
    return stats


def _write_split(out: Path, name: str, texts: list[str], sentences: list[list[str]],
                 vocab: Vocab, config: ProcessConfig) -> dict[str, Any]:
    with atomic_open(out / f"{name}.tokens.txt") as handle:
        for sentence in sentences:
            handle.write(" ".join(sentence) + "\n")
    encoded = [[vocab.start_id, *vocab.encode(s)] for s in sentences]
    windows = (w for ids in encoded for w in sentence_windows(ids, config.context_size, vocab.pad_id))
    count = write_windows(out / f"{name}.jsonl", windows)
    tokens = sum(len(s) for s in sentences)
    unknown = sum(ids[1:].count(vocab.unk_id) for ids in encoded)
    return {"texts": len(texts), "sentences": len(sentences), "tokens": tokens,
            "windows": count, "oov_rate": round(unknown / max(tokens, 1), 4)}
