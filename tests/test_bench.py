"""Tests for the benchmark's wiring (not its timings: those are never asserted)."""

from __future__ import annotations

import pytest
import torch

from input_method.bench import int8_quality, latency, preprocessing, training


def test_latency_figures_come_from_real_calls(tiny_model_dir, processed_dir):
    """Keystroke figures count one call per word of the replayed sentences."""
    result = latency(tiny_model_dir, processed_dir, sentences=5)
    lines = (processed_dir / "test.tokens.txt").read_text(encoding="utf-8").splitlines()
    longest = sorted((len(line.split()) for line in lines), reverse=True)
    assert 5 <= result["keystroke_calls"] <= sum(longest[:5])
    assert 0 < result["keystroke_p50_ms"] <= result["keystroke_p99_ms"]
    assert result["model_size_mb"] > 0


def test_training_comparison_scores_the_same_number_of_words(processed_dir):
    """All three recipes train on the same data until the same number of scored words."""
    result = training(processed_dir, targets=100)
    assert result["train_targets_each"] == 100
    assert result["train_tokens_per_s"] > 0 and result["seed_train_tokens_per_s"] > 0
    assert result["default_recipe_train_tokens_per_s"] > 0


def test_preprocessing_compares_one_process_with_all_cores():
    """The speed-up is the ratio of the two timings on the same texts."""
    result = preprocessing(texts=40)
    assert result["preprocess_speedup"] > 0 and result["preprocess_workers"] >= 1


@pytest.mark.skipif("fbgemm" not in torch.backends.quantized.supported_engines,
                    reason="no fbgemm: the engine serves float32 here")
def test_int8_quality_scores_both_output_layers_on_the_same_windows(tiny_model_dir, processed_dir):
    """Float32 and the served int8 layer are scored on the same test windows."""
    result = int8_quality(tiny_model_dir, processed_dir, windows=50)
    assert result["int8_output"] and 0 < result["int8_quality_windows"] <= 50
    for name in ("float32", "int8"):
        assert 0 <= result[f"{name}_test_hit@1"] <= result[f"{name}_test_hit@5"] <= 1
        assert result[f"{name}_test_perplexity"] > 1
