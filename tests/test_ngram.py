"""Tests for the Kneser-Ney trigram baseline."""

from __future__ import annotations

import torch

from input_method.ngram import KneserNeyTrigram

V = 8


def _triples() -> tuple[torch.Tensor, torch.Tensor]:
    # Sentences over ids 3..7 with <s>=2 and <pad>=0, as (u, v) -> w triples.
    sentences = [[2, 3, 4, 5], [2, 3, 4, 6], [2, 3, 5, 7], [2, 4, 5, 6], [2, 3, 4, 5]]
    contexts, targets = [], []
    for s in sentences:
        padded = [0, 0, *s]
        for i in range(3, len(padded)):
            contexts.append(padded[i - 2:i])
            targets.append(padded[i])
    return torch.tensor(contexts), torch.tensor(targets)


def _model() -> KneserNeyTrigram:
    return KneserNeyTrigram(V, *_triples())


def test_distributions_sum_to_one_for_seen_and_unseen_contexts():
    """Every context, seen or not, gives a proper distribution over the vocabulary."""
    model = _model()
    contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [6, 1]])
    probs = model.log_probs(contexts).double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(len(contexts), dtype=torch.double), atol=1e-5)
    assert (probs > 0).all()


def test_seen_trigram_beats_unseen_and_matches_the_formula():
    """P(5 | 3 4) follows the interpolated Kneser-Ney formula, computed by hand here."""
    model = _model()
    p = model.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    assert p[5] > p[6] > p[7]
    # c(3 4 5) = 2, c(3 4 6) = 1, c(3 4 .) = 3, two word types follow "3 4".
    d3 = model.d3
    lower = model.log_probs(torch.tensor([[7, 4]])).double().exp()[0]  # "7 4" unseen: P2(.|4)
    expected = (2 - d3) / 3 + d3 * 2 / 3 * lower[5]
    assert abs(p[5].item() - expected.item()) < 1e-5


def test_pruned_trigram_keeps_proper_distributions_and_its_frequent_entries():
    """With min_count=2, trigrams seen once fall back to the bigram level, the frequent
    ones keep their full-model probability, and every distribution still sums to one."""
    full = _model()
    sentences_contexts = torch.tensor([[3, 4], [2, 3], [7, 7], [0, 2], [4, 5]])
    pruned = KneserNeyTrigram(V, *_triples(), min_count=2)
    assert len(pruned.keys3) < len(full.keys3)
    probs = pruned.log_probs(sentences_contexts).double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(len(sentences_contexts), dtype=torch.double),
                          atol=1e-5)
    p_full = full.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    p_pruned = pruned.log_probs(torch.tensor([[3, 4]])).double().exp()[0]
    # c(3 4 5) = 2 is kept: its discounted count over c(3 4 .) is the same in both models.
    assert p_pruned[5] > p_pruned[6]
    assert abs(float(p_full[5] - p_pruned[5])) < 0.1
    # c(3 4 6) = 1 is pruned: its probability is the backoff mass times the lower orders.
    assert p_pruned[6] < p_full[6]
