"""Tests for the network."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from input_method.config import CELLS, ModelConfig
from input_method.model import NextWordModel, align_left, window_logits


@pytest.mark.parametrize("cell", CELLS)
def test_forward_shapes_for_every_cell(cell):
    """(batch, seq) ids give (batch, seq, vocab) logits, or (batch, vocab) for the last only."""
    model = NextWordModel(ModelConfig(vocab_size=50, cell=cell, embedding_dim=8, hidden_size=12,
                                      num_layers=2, dropout=0.3)).eval()
    x = torch.randint(0, 50, (4, 6))
    logits, _ = model(x)
    assert logits.shape == (4, 6, 50)
    last, _ = model(x, last_only=True)
    assert last.shape == (4, 50)
    assert torch.allclose(last, logits[:, -1])


def test_state_carries_across_calls():
    """Feeding a sequence in two parts with the state equals feeding it at once."""
    model = NextWordModel(ModelConfig(vocab_size=30, embedding_dim=8, hidden_size=8)).eval()
    x = torch.randint(0, 30, (2, 7))
    whole, _ = model(x)
    first, state = model(x[:, :4])
    second, _ = model(x[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], 1), whole, atol=1e-6)


def test_tied_weights_share_one_matrix():
    """With tie_weights the decoder uses the embedding matrix."""
    model = NextWordModel(ModelConfig(vocab_size=30, embedding_dim=8, hidden_size=16,
                                      tie_weights=True))
    assert model.decoder.weight is model.embedding.weight
    assert model(torch.zeros(1, 3, dtype=torch.long))[0].shape == (1, 3, 30)


def test_bad_cell_is_rejected():
    """An unknown cell name is a ValueError."""
    with pytest.raises(ValueError, match="cell"):
        NextWordModel(ModelConfig(vocab_size=10, cell="transformer"))


@pytest.mark.parametrize("cell", CELLS)
def test_weight_drop_masks_the_recurrence_in_training_only(cell):
    """weight_drop changes training outputs, not evaluation ones, and the recurrent weights still learn."""
    config = ModelConfig(vocab_size=30, cell=cell, embedding_dim=8, hidden_size=12, dropout=0.0)
    plain = NextWordModel(config)
    dropped = NextWordModel(replace(config, weight_drop=0.5))
    dropped.load_state_dict(plain.state_dict())
    x = torch.randint(1, 30, (3, 5))
    assert torch.allclose(plain.eval()(x)[0], dropped.eval()(x)[0])
    torch.manual_seed(0)
    out, _ = dropped.train()(x)
    assert not torch.allclose(out, plain.train()(x)[0])
    out.sum().backward()
    grad = dropped.rnn.weight_hh_l0.grad
    assert grad is not None and (grad == 0).any() and (grad != 0).any()  # masked entries get none


def test_embedding_dropout_drops_whole_word_types():
    """With embedding_dropout every occurrence of a dropped word loses its vector alike."""
    model = NextWordModel(ModelConfig(vocab_size=30, embedding_dim=8, hidden_size=8,
                                      embedding_dropout=0.5)).train()
    ids = torch.tensor([[5, 5, 5, 5, 7, 7, 7, 7] * 8])
    torch.manual_seed(1)
    vectors = model._embed(ids)[0]  # (seq, embedding_dim)
    zero = (vectors == 0).all(1)
    assert zero.any() and not zero.all()
    assert (zero == zero[0]).logical_or(ids[0] != 5).all()  # word 5: all dropped or all kept
    assert torch.equal(model.eval()._embed(ids), model.embedding(ids))


@pytest.mark.parametrize("name", ["weight_drop", "embedding_dropout", "dropout"])
def test_dropout_rates_outside_zero_to_one_are_rejected(name):
    """A rate of 1 or more (or below 0) is a ValueError naming the field."""
    with pytest.raises(ValueError, match=name):
        NextWordModel(ModelConfig(vocab_size=10, **{name: 1.0}))


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_left_padded_windows_score_like_their_unpadded_words(softmax):
    """window_logits on [pad pad <s> w] equals the model run on [<s> w] alone."""
    config = ModelConfig(vocab_size=40, embedding_dim=8, hidden_size=8, softmax=softmax,
                         adaptive_cutoffs=(10, 20))
    model = NextWordModel(config).eval()
    windows = torch.tensor([[0, 0, 2, 7], [2, 5, 6, 7]])
    logits = window_logits(model, windows, pad_id=0)
    short, _ = model(torch.tensor([[2, 7]]), last_only=True)
    full, _ = model(torch.tensor([[2, 5, 6, 7]]), last_only=True)
    assert torch.allclose(logits[0], short[0], atol=1e-5)
    assert torch.allclose(logits[1], full[0], atol=1e-5)
    assert torch.allclose(torch.logsumexp(logits, -1), torch.zeros(2), atol=1e-4) or softmax == "full"


def test_align_left_moves_padding_to_the_right():
    """[pad pad a b] becomes [a b pad pad] with length 2."""
    aligned, lengths = align_left(torch.tensor([[0, 0, 3, 4], [1, 2, 3, 4]]), 0)
    assert aligned.tolist() == [[3, 4, 0, 0], [1, 2, 3, 4]] and lengths.tolist() == [2, 4]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_adaptive_softmax_loss_and_logits_work_under_autocast(dtype):
    """Training on CUDA runs under bfloat16 autocast; the adaptive softmax must still give
    its float32 loss and log-probabilities (CPU autocast stands in for the GPU here: before
    the fix both raised "index_copy_(): ... same dtype")."""
    model = NextWordModel(ModelConfig(vocab_size=300, embedding_dim=16, hidden_size=16,
                                      adaptive_cutoffs=(50, 150)))
    inputs, targets = torch.randint(3, 300, (4, 5)), torch.randint(3, 300, (20,))
    expected = model.loss(model.features(inputs)[0].reshape(-1, 16), targets)
    with torch.autocast("cpu", dtype=dtype):
        features, _ = model.features(inputs)
        loss = model.loss(features.reshape(-1, 16), targets)
        log_probs = model.logits(features)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(loss.item() - expected.item()) < 0.05  # only the recurrent part ran in low precision
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(4, 5), atol=1e-4)


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_target_log_probs_are_the_full_distributions_entries(softmax):
    """target_log_probs picks each row's target from the whole log-distribution."""
    config = ModelConfig(vocab_size=20, cell="gru", embedding_dim=8, hidden_size=12,
                         dropout=0.0, softmax=softmax, adaptive_cutoffs=(5, 10))
    model = NextWordModel(config).eval()
    features = torch.randn(6, 12)
    targets = torch.tensor([0, 3, 7, 12, 19, 4])
    with torch.no_grad():
        full = torch.log_softmax(model.logits(features).float(), dim=-1)
        picked = model.target_log_probs(features, targets)
    assert torch.allclose(picked, full[torch.arange(6), targets], atol=1e-5)
