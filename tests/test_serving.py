"""Tests for the serving form of the network (step-wise cells, int8 output layer)."""

from __future__ import annotations

import pytest
import torch

from input_method.config import CELLS, ModelConfig
from input_method.model import NextWordModel
from input_method.serving import ServingModel

CONFIGS = [
    *(ModelConfig(vocab_size=60, cell=cell, embedding_dim=8, hidden_size=12, num_layers=2,
                  softmax="full") for cell in CELLS),
    ModelConfig(vocab_size=60, embedding_dim=8, hidden_size=12, tie_weights=True, softmax="full"),
    ModelConfig(vocab_size=60, embedding_dim=8, hidden_size=32, softmax="adaptive",
                adaptive_cutoffs=(10, 30)),
]


def _model(config: ModelConfig) -> NextWordModel:
    torch.manual_seed(0)
    return NextWordModel(config).eval()


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.cell}-{c.softmax}-tied{c.tie_weights}")
def test_float_serving_equals_the_model(config):
    """Without int8, features, state and logits equal the training model's, in one call or two."""
    model = _model(config)
    serving = ServingModel(model, int8_output=False)
    x = torch.randint(1, 60, (3, 7))
    with torch.inference_mode():
        expected, expected_state = model(x)
        whole, state = serving(x)
        first, carried = serving(x[:, :4])
        second, _ = serving(x[:, 4:], carried)
    assert torch.allclose(whole, expected, atol=1e-5)
    assert torch.allclose(torch.cat([first, second], 1), expected, atol=1e-5)
    for got, want in zip(state if isinstance(state, tuple) else (state,),
                         expected_state if isinstance(expected_state, tuple) else (expected_state,),
                         strict=True):
        assert torch.allclose(got, want, atol=1e-5)


needs_fbgemm = pytest.mark.skipif("fbgemm" not in torch.backends.quantized.supported_engines,
                                  reason="no fbgemm: the engine serves float32 here")


@needs_fbgemm
@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_int8_output_layer_scores_each_row_on_its_own(softmax):
    """A row's int8 log-probabilities do not depend on the rows scored beside it."""
    config = ModelConfig(vocab_size=60, embedding_dim=8, hidden_size=32, softmax=softmax,
                         adaptive_cutoffs=(10, 30))
    serving = ServingModel(_model(config))
    assert serving.int8_output
    features = torch.randn(5, 32)
    together = serving.logits(features)
    alone = torch.cat([serving.logits(features[i:i + 1]) for i in range(5)])
    assert torch.equal(together, alone)


@needs_fbgemm
def test_int8_output_layer_stays_close_to_float():
    """Quantising the output layer's weights changes probabilities only slightly."""
    config = ModelConfig(vocab_size=60, embedding_dim=8, hidden_size=32, softmax="adaptive",
                         adaptive_cutoffs=(10, 30))
    model = _model(config)
    features = torch.randn(20, 32)
    with torch.inference_mode():
        exact = model.logits(features).exp()
    served = ServingModel(model).logits(features).exp()
    assert torch.allclose(served.sum(-1), torch.ones(20), atol=1e-4)  # still distributions
    assert (served - exact).abs().max() < 0.02
    assert not torch.equal(served, exact)  # it really is another layer
