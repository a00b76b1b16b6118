"""Tests for the phrase memory (the longest training context's next words) and its mixing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from input_method.checkpoint import export_checkpoint, load_model, load_ngram
from input_method.config import ExportConfig
from input_method.dataset import WindowDataset, context_size_of
from input_method.errors import CheckpointError
from input_method.memory import PhraseMemory, TrigramWithMemory, plain_trigram
from input_method.mixture import (
    build_memory,
    build_ngram,
    fit,
    memory_payload,
    ngram_context,
    ngram_context_ids,
)
from input_method.ngram import KneserNeyTrigram
from input_method.vocab import Vocab

PAD, START, V = 0, 2, 12
# Two sentences: <s> 3 4 5 6 and <s> 3 4 5 7 8, then <s> 9 4 5 6.
TEXT = [START, 3, 4, 5, 6, START, 3, 4, 5, 7, 8, START, 9, 4, 5, 6]


def memory(longest: int = 6) -> PhraseMemory:
    return PhraseMemory(np.array(TEXT), V, START, PAD, longest)


def test_follow_counts_what_came_after_the_longest_run():
    """After 3 4 5 the text went on with 6 once and 7 once; with <s> in front too, the
    run is 4 words long and gives the same two."""
    assert memory().follow([3, 4, 5]) == ({6: 1, 7: 1}, 3)
    assert memory().follow([PAD, PAD, START, 3, 4, 5]) == ({6: 1, 7: 1}, 4)


def test_follow_takes_the_longest_run_not_the_most_common():
    """9 4 5 was followed by 6 only; 4 5 alone is the trigram's business (too short)."""
    assert memory().follow([START, 9, 4, 5]) == ({6: 1}, 4)
    assert memory().follow([8, 9, 4, 5]) == ({6: 1}, 3)  # 8 9 4 5 crosses a sentence start
    assert memory().follow([4, 5]) == ({}, 0)


def test_follow_skips_a_sentence_end_and_unseen_runs():
    """3 4 5 6 ended its sentence: nothing followed inside it, so a shorter run answers;
    a run never seen matches nothing."""
    assert memory().follow([3, 4, 5, 6]) == ({}, 0)  # 4 5 6 also ended; 5 6 is too short
    assert memory().follow([7, 8, 3]) == ({}, 0)
    assert memory(longest=3).follow([START, 3, 4, 5]) == ({6: 1, 7: 1}, 3)


def test_probs_are_relative_counts_and_zero_where_nothing_matched():
    """Each matched row sums to one; an unmatched row is all zeros."""
    probs, matched = memory().probs(torch.tensor([[START, 3, 4, 5], [PAD, PAD, 10, 11]]))
    assert matched.tolist() == [4, 0]
    assert probs[0, 6] == probs[0, 7] == 0.5 and probs[0].sum() == 1
    assert probs[1].abs().sum() == 0


def test_bad_text_is_refused():
    """Ids outside the vocabulary, a text not starting a sentence, too short a run."""
    with pytest.raises(ValueError):
        PhraseMemory(np.array([START, V]), V, START, PAD)
    with pytest.raises(ValueError):
        PhraseMemory(np.array([3, 4]), V, START, PAD)
    with pytest.raises(ValueError):
        PhraseMemory(np.array(TEXT), V, START, PAD, longest=2)


def test_pack_round_trips_and_damage_is_a_value_error():
    """unpack(pack()) answers the same; corrupted bytes raise ValueError."""
    packed = memory().pack()
    again = PhraseMemory.unpack(packed, V, START, PAD)
    assert np.array_equal(again.text, memory().text)
    assert again.follow([START, 3, 4, 5]) == memory().follow([START, 3, 4, 5])
    with pytest.raises(ValueError):
        PhraseMemory.unpack({**packed, "lzma": b"not lzma"}, V, START, PAD)
    with pytest.raises(ValueError):
        PhraseMemory.unpack({**packed, "words": 3}, V, START, PAD)


def test_mixing_moves_weight_only_where_a_run_matched():
    """Inside the trigram's share, ν of the mass goes to the memory where it matched;
    elsewhere the trigram's distribution is returned unchanged."""
    trigram_inputs, targets = memory().trigram_windows()
    trigram = KneserNeyTrigram(V, trigram_inputs, targets)
    mixed = TrigramWithMemory(trigram, memory(), 0.4)
    contexts = torch.tensor([[START, 3, 4, 5], [PAD, PAD, 10, 11]])
    plain, counts = trigram.probs(contexts), memory().probs(contexts)[0]
    result = mixed.probs(contexts)
    assert torch.allclose(result[0], 0.6 * plain[0] + 0.4 * counts[0])
    assert torch.equal(result[1], plain[1])
    assert torch.allclose(result.sum(1), torch.ones(2))


def test_every_memory_weight_from_one_lookup_is_the_mixture_at_that_weight():
    """The export's grid over ν (one trigram and memory lookup for all weights) gives
    each weight exactly what the engine mixes at it."""
    trigram_inputs, targets = memory().trigram_windows()
    trigram = KneserNeyTrigram(V, trigram_inputs, targets)
    contexts = torch.tensor([[START, 3, 4, 5], [PAD, PAD, 10, 11], [3, 4, 5, 6]])
    weights = (0.0, 0.2, 0.5)
    grid = TrigramWithMemory(trigram, memory(), 0.0).probs_by_weight(contexts, weights)
    assert set(grid) == set(weights)
    for nu in weights:
        assert torch.equal(grid[nu], TrigramWithMemory(trigram, memory(), nu).probs(contexts))
    assert not torch.equal(grid[0.0], grid[0.5])


def test_the_trigram_rebuilt_from_the_text_is_the_one_from_the_windows(processed_dir):
    """The memory's text gives exactly the trigram the training windows give, so a model
    can ship the text alone."""
    vocab = Vocab.load(processed_dir / "vocab.json")
    rebuilt = KneserNeyTrigram(len(vocab), *build_memory(processed_dir, vocab).trigram_windows())
    direct = build_ngram(processed_dir, vocab, min_count=1)
    windows = WindowDataset.from_split(processed_dir, "valid", context_size_of(processed_dir),
                                       len(vocab))
    contexts = ngram_context(windows.inputs, vocab.pad_id)
    assert torch.equal(rebuilt.probs(contexts), direct.probs(contexts))
    assert rebuilt.entries() == direct.entries()


def test_reordered_windows_are_refused(processed_dir):
    """Shuffled windows no longer spell the text: a clear error, not a wrong memory."""
    vocab = Vocab.load(processed_dir / "vocab.json")
    train = WindowDataset.from_split(processed_dir, "train", context_size_of(processed_dir),
                                     len(vocab))
    order = torch.randperm(len(train.targets), generator=torch.Generator().manual_seed(0))
    train.inputs, train.targets = train.inputs[order], train.targets[order]
    with pytest.raises(ValueError, match="text order"):
        PhraseMemory.from_windows(train, len(vocab), vocab.start_id, vocab.pad_id)


def test_export_with_phrase_memory_loads_the_same_trigram_and_the_memory(
        tiny_model_dir, processed_dir, tmp_path):
    """fit() with phrase_memory ships the text and ν; loading rebuilds the same trigram
    and mixes the memory in at that weight; it needs the whole trigram."""
    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.0, 0.5))
    payload = fit(tiny_model_dir, config)
    assert payload is not None and "memory" in payload and "tables" not in payload
    assert payload["memory_weight"] in (0.0, 0.5)
    assert set(payload["validation"]["by_memory_weight"]) == {"0.0", "0.5"}
    export_checkpoint(tiny_model_dir, tmp_path / "m", payload)
    _, vocab, stored = load_model(tmp_path / "m")
    ngram, weight = load_ngram(stored)
    assert isinstance(ngram, TrigramWithMemory) and weight == 0.3
    assert ngram.weight == payload["memory_weight"]
    direct = build_ngram(processed_dir, vocab, min_count=1)
    context = torch.tensor([ngram_context_ids([vocab.start_id], vocab.pad_id)])
    assert torch.equal(ngram.trigram.probs(context), direct.probs(context))
    with pytest.raises(CheckpointError, match="ngram-min-count 1"):
        fit(tiny_model_dir, ExportConfig(ngram_min_count=2, data_dir=str(processed_dir),
                                         phrase_memory=True))
    with pytest.raises(ValueError):
        memory_payload(build_ngram(processed_dir, vocab, min_count=2),
                       build_memory(processed_dir, vocab), 0.3, 0.3, {})


def test_ngram_context_pads_on_the_left_like_the_windows():
    """The count part sees the last six ids, <pad> filling a shorter context."""
    assert ngram_context_ids([2], 0) == [0, 0, 0, 0, 0, 2]
    assert ngram_context_ids(list(range(3, 11)), 0) == [5, 6, 7, 8, 9, 10]
    assert ngram_context(torch.tensor([[7]]), 0).tolist() == [[0, 0, 0, 0, 0, 7]]
    assert ngram_context(torch.arange(1, 9)[None], 0).tolist() == [[3, 4, 5, 6, 7, 8]]


def test_plain_trigram_leaves_the_memory_out():
    """The diagnostics' view: the trigram itself, with or without a memory around it."""
    trigram = KneserNeyTrigram(V, *memory().trigram_windows())
    assert plain_trigram(TrigramWithMemory(trigram, memory(), 0.3)) is trigram
    assert plain_trigram(trigram) is trigram


def test_a_trigram_rebuilt_in_the_background_answers_the_same():
    """rebuilding() hands back at once; its first use waits and gives the trigram built
    in the foreground, and the memory mixed in the same way."""
    trigram = KneserNeyTrigram(V, *memory().trigram_windows())
    now = TrigramWithMemory(trigram, memory(), 0.4)
    later = TrigramWithMemory.rebuilding(memory(), 0.4)
    contexts = torch.tensor([[START, 3, 4, 5], [PAD, PAD, 10, 11], [PAD, PAD, START, 9]])
    assert later.vocab_size == V and later.min_count == 1
    assert torch.equal(later.probs(contexts), now.probs(contexts))
    assert later.trigram.entries() == trigram.entries()


def test_the_engine_loads_a_phrase_memory_model_and_mixes_it(tiny_model_dir, processed_dir,
                                                             tmp_path):
    """Predictor.load on a model exported with the memory: suggestions come, and the
    count part it mixes is the trigram with the memory (rebuilt in the background)."""
    from input_method.predict import Predictor

    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.3,), phrase_memory=True, memory_weights=(0.5,))
    export_checkpoint(tiny_model_dir, tmp_path / "m", fit(tiny_model_dir, config))
    predictor = Predictor.load(tmp_path / "m")
    assert isinstance(predictor.ngram, TrigramWithMemory) and predictor.ngram.weight == 0.5
    suggestions = predictor.predict("今天", 3)
    assert 0 < len(suggestions) <= 3
    vocab = predictor.vocab
    direct = build_ngram(processed_dir, vocab, min_count=1)
    context = torch.tensor([ngram_context_ids([vocab.start_id], vocab.pad_id)])
    assert torch.equal(predictor.ngram.trigram.probs(context), direct.probs(context))
