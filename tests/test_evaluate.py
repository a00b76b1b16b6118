"""Tests for evaluation beside the Kneser-Ney baseline."""

from __future__ import annotations

import json

import torch

from input_method.config import SPECIAL_TOKENS, EvalConfig
from input_method.evaluate import _Scores, evaluate, format_table, han_mask
from input_method.vocab import Vocab


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


def test_the_suggestion_bar_ranks_words_without_punctuation():
    """Scored as the bar offers them, a word behind a comma moves up to first place and
    a comma target can never be hit; ranked as a language model, the opposite."""
    vocab = Vocab([*SPECIAL_TOKENS, "，", "好", "的"])
    scores = _Scores(vocab, han_mask(vocab))
    log_probs = torch.log(torch.tensor([[0.0, 0.0, 0.0, 0.5, 0.3, 0.2]] * 2))
    scores.add(log_probs, torch.tensor([3, 4]), torch.tensor([1, 1]))  # targets ，then 好
    summary = scores.summary()
    assert summary["hit@1"] == 0.5 and summary["keystroke_savings"] == 1.0  # both in the top 5
    assert summary["han_targets"]["hit@1"] == 0.0
    bar = summary["suggestion_bar"]
    assert bar["hit@1"] == 0.5 and bar["keystroke_savings"] == 0.5  # 好 first, ，never offered
    assert bar["han_targets"]["hit@1"] == 1.0 and "perplexity" not in bar


def test_eval_json_holds_the_bar_figures_and_the_table_shows_them(tiny_model_dir,
                                                                  processed_dir):
    """Both scorers carry suggestion-bar figures; on Chinese-word targets they are never
    below the language-model ranking's (leaving punctuation out only lifts words)."""
    results = evaluate(EvalConfig(model_dir=str(tiny_model_dir), data_dir=str(processed_dir),
                                  device="cpu"))
    for scorer in ("model", "kneser_ney_trigram"):
        words, bar = results[scorer]["han_targets"], results[scorer]["suggestion_bar"]
        assert bar["windows"] == results[scorer]["windows"]
        for k in ("hit@1", "hit@5", "mrr"):
            assert bar["han_targets"][k] >= words[k]
    table = format_table(results)
    assert "bar hit@5" in table and "bar / trigram" in table


def test_the_ratio_line_does_not_round_a_near_miss_up_to_the_goal():
    """hit@1 0.2197 against 0.1761 is x1.2476: printed as x1.248, not as the x1.25 it misses."""
    figures = {"hit@1": 0.2197, "hit@5": 0.3906, "hit@10": 0.45, "mrr": 0.3,
               "perplexity": 161.2, "keystroke_savings": 0.29}
    scores = {**figures, "han_targets": figures}
    base = {**scores, "hit@1": 0.1761, "hit@5": 0.3373}
    table = format_table({"split": "test", "windows": 10, "model": scores,
                          "kneser_ney_trigram": base})
    assert "model / trigram: hit@1 x1.248, hit@5 x1.158" in table
