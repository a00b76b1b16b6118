"""Tests for hit@k, MRR and perplexity."""

from __future__ import annotations

import math

import torch

from input_method.metrics import RankingTotals


def test_ranks_skip_special_tokens_and_unk_targets_miss():
    """Specials are removed before ranking; an <unk> target never counts as a hit."""
    probs = torch.tensor([[0.5, 0.2, 0.1, 0.15, 0.05],  # target 3: rank 1 once specials go
                          [0.0, 0.1, 0.0, 0.3, 0.6],  # target 3: rank 2
                          [0.0, 0.9, 0.0, 0.05, 0.05]])  # target <unk>: a miss
    totals = RankingTotals()
    totals.add(probs.clamp(min=1e-9).log(), torch.tensor([3, 3, 1]), special_ids=[0, 1, 2])
    result = totals.summary()
    assert result["hit@1"] == 1 / 3
    assert result["hit@5"] == 2 / 3
    assert math.isclose(result["mrr"], (1 + 0.5) / 3)
    expected_loss = -(math.log(0.15) + math.log(0.3) + math.log(0.9)) / 3
    assert math.isclose(result["loss"], expected_loss, rel_tol=1e-5)
    assert math.isclose(result["perplexity"], math.exp(expected_loss), rel_tol=1e-5)


def test_keystroke_savings_counts_characters_of_top5_hits():
    """Targets in the top 5 save their characters; misses and <unk> save none."""
    vocab_size = 12
    log_probs = torch.full((3, vocab_size), -10.0)
    log_probs[0, 3] = -0.1  # target 3 ranks first: hit
    log_probs[1, 4:11] = -0.5  # target 11 ranks after 7 others: a miss
    log_probs = torch.log_softmax(log_probs, -1)
    totals = RankingTotals()
    totals.add(log_probs, torch.tensor([3, 11, 1]), special_ids=[0, 1, 2],
               target_chars=torch.tensor([2, 3, 4]))
    assert totals.summary()["keystroke_savings"] == 2 / 9


def test_a_first_word_ranked_apart_leads_and_the_rest_keep_their_order():
    """With ``first`` scores their best suggestable word goes first and every other word
    keeps its order under the distribution: a target below that word moves down one,
    one above it stays, the word itself is rank 1; the loss is the distribution's."""
    log_probs = torch.tensor([[0.0, 0.4, 0.3, 0.2, 0.1]] * 3).log()  # ranking 1 2 3 4
    first = torch.tensor([[0.9, 0.0, 0.0, 0.1, 0.0]] * 3)  # word 0 is special: 3 leads
    totals = RankingTotals()
    totals.add(log_probs, torch.tensor([2, 4, 3]), special_ids=[0], first=first)
    # bar: 3 1 2 4 -> target 2 rank 3 (was 2), target 4 rank 4 (stays), target 3 rank 1
    result = totals.summary()
    assert result["hit@1"] == 1 / 3
    assert math.isclose(result["mrr"], (1 / 3 + 1 / 4 + 1) / 3, rel_tol=1e-6)
    assert math.isclose(result["loss"], -(math.log(0.3) + math.log(0.1) + math.log(0.2)) / 3,
                        rel_tol=1e-5)
