"""Tests for evaluation beside the Kneser-Ney baseline."""

from __future__ import annotations

import json

from input_method.config import EvalConfig
from input_method.evaluate import evaluate, format_table


def test_evaluate_writes_eval_json_with_model_and_baseline(tiny_model_dir, processed_dir):
    """eval.json lands beside the model with both scorers on the same windows."""
    results = evaluate(EvalConfig(model_dir=str(tiny_model_dir), data_dir=str(processed_dir),
                                  device="cpu"))
    saved = json.loads((tiny_model_dir / "eval.json").read_text(encoding="utf-8"))
    assert saved["windows"] == results["windows"] > 0
    for scorer in ("model", "kneser_ney_trigram"):
        scores = saved[scorer]
        assert 0 <= scores["hit@1"] <= scores["hit@5"] <= scores["hit@10"] <= 1
        assert scores["perplexity"] > 1 and scores["windows"] == results["windows"]
        assert 0 <= scores["keystroke_savings"] <= scores["hit@5"] * 10
    table = format_table(results)
    assert "KN trigram" in table and "hit@5" in table


def test_evaluate_scores_the_shipped_mixture_and_the_network_alone(tiny_mixed_model_dir,
                                                                   processed_dir):
    """A model with a trigram inside is scored as served (mixed), with the network alone
    beside it, and the table shows both."""
    results = evaluate(EvalConfig(model_dir=str(tiny_mixed_model_dir),
                                  data_dir=str(processed_dir), device="cpu", baseline=False))
    assert results["ngram"]["weight"] == 0.3 and results["ngram"]["entries"] > 0
    mixed, alone = results["model"], results["network_alone"]
    assert mixed["windows"] == alone["windows"] == results["windows"]
    assert mixed["perplexity"] != alone["perplexity"]
    assert "network alone" in format_table(results)
