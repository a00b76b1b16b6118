"""Tests for the trigram a shipped model mixes in (building it, choosing its weight)."""

from __future__ import annotations

import json

import pytest
import torch

from input_method.checkpoint import load_model
from input_method.config import ExportConfig
from input_method.errors import CheckpointError
from input_method.mixture import build_ngram, choose_weight, fit, last_two, ranking_key
from input_method.vocab import Vocab


def test_last_two_pads_short_contexts_like_the_windows():
    """A context shorter than two ids is padded on the left, as windows are."""
    assert last_two(torch.tensor([[7]]), 0).tolist() == [[0, 7]]
    assert last_two(torch.tensor([[0, 2, 5, 9]]), 0).tolist() == [[5, 9]]


def test_ranking_key_weighs_the_first_word_and_the_five_alike():
    """A setting that gains more hit@1 than it loses hit@5 ranks higher; equal sums
    go to the lower loss."""
    flat = {"hit@1": 0.210, "hit@5": 0.380, "loss": 5.0}
    sharp = {"hit@1": 0.214, "hit@5": 0.379, "loss": 5.1}
    assert ranking_key(sharp) > ranking_key(flat)
    assert ranking_key(flat) > ranking_key({"hit@1": 0.210, "hit@5": 0.380, "loss": 5.2})
    assert ranking_key(flat) > ranking_key({"hit@1": 0.220, "hit@5": 0.360, "loss": 4.0})


def test_choose_weight_takes_the_best_validation_ranking(tiny_model_dir, processed_dir):
    """The chosen weight has the highest validation hit@1 + hit@5, the lowest perplexity
    among those tied, and the weights' figures differ."""
    model, vocab, payload = load_model(tiny_model_dir)
    ngram = build_ngram(processed_dir, vocab, min_count=1)
    weights = (0.0, 0.2, 0.5, 0.9)
    best, table = choose_weight(model, vocab, ngram, processed_dir,
                                int(payload["context_size"]), 0, weights)
    assert set(table) == {str(w) for w in weights}
    sums = {w: round(row["hit@1"] + row["hit@5"], 4) for w, row in table.items()}
    tied = [table[w]["perplexity"] for w, total in sums.items() if total == max(sums.values())]
    assert sums[str(best)] == max(sums.values()) and table[str(best)]["perplexity"] == min(tied)
    assert table["0.0"] != table["0.9"]
    for row in table.values():
        assert 0 <= row["hit@1"] <= row["hit@5"] <= 1


def test_fit_ships_nothing_unless_asked(tiny_model_dir):
    """ngram_min_count 0 (the default) means no trigram, without reading any data."""
    assert fit(tiny_model_dir, ExportConfig(data_dir="/nonexistent")) is None


def test_fit_returns_the_tables_with_the_weight_validation_chose(tiny_model_dir, processed_dir):
    """With a minimum count, the payload carries the tables, the grid's weight with the
    best validation hit@1 + hit@5, and the figures it was chosen by."""
    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.2, 0.5))
    payload = fit(tiny_model_dir, config)
    assert payload is not None and payload["entries"] > 0 and payload["min_count"] == 1
    table = payload["validation"]["by_weight"]
    assert payload["weight"] == max(config.ngram_weights, key=lambda w: (
        round(table[str(w)]["hit@1"] + table[str(w)]["hit@5"], 4), -table[str(w)]["perplexity"]))
    assert json.dumps(payload["validation"])  # plain figures, stored in the checkpoint


def test_fit_ships_nothing_when_the_network_alone_wins(tiny_model_dir, processed_dir):
    """When weight 0 is chosen (here the only candidate), no trigram is shipped."""
    config = ExportConfig(ngram_min_count=1, data_dir=str(processed_dir), tune_windows=0,
                          ngram_weights=(0.0,))
    assert fit(tiny_model_dir, config) is None


def test_build_ngram_refuses_data_of_another_vocabulary(processed_dir):
    """A trigram over another vocabulary's ids would be garbage: refused with a clear error."""
    other = Vocab(["<pad>", "<unk>", "<s>", "别的", "词"])
    with pytest.raises(CheckpointError, match="another vocabulary"):
        build_ngram(processed_dir, other, min_count=1)


def test_each_weights_figures_do_not_depend_on_the_rest_of_the_grid(tiny_model_dir,
                                                                    processed_dir):
    """Scoring one weight must not disturb the next: the figures for 0.5 are the same
    whether weight 0 (the network alone) was scored before it or not."""
    model, vocab, payload = load_model(tiny_model_dir)
    ngram = build_ngram(processed_dir, vocab, min_count=1)
    context = int(payload["context_size"])
    _, alone = choose_weight(model, vocab, ngram, processed_dir, context, 0, (0.5,))
    _, after = choose_weight(model, vocab, ngram, processed_dir, context, 0, (0.0, 0.5))
    assert after["0.5"] == alone["0.5"]
