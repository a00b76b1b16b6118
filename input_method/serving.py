"""The trained network in the form the engine runs it: one text at a time, on a CPU.

A key press runs one recurrent step and one output layer for one row. At that
size the cost is not arithmetic but reading weights from memory (the 30,000-
word output layer alone is 10 MB in float32, rarely still in cache after the
rest of the desktop ran) and per-call overhead. Two changes, measured on the
2-core development machine with ``ime bench`` (keystroke p50, default model):

- the recurrent layers run step by step with ``torch.lstm_cell`` (``gru_cell``,
  ``rnn_tanh_cell``) instead of ``nn.LSTM``, whose per-call set-up dominates a
  one-word step: 3.2 -> 2.3 ms;
- the output layer's weights are int8 with one scale per output row (dynamic
  quantisation: each input row is quantised on the fly): a quarter of the
  memory traffic, 2.3 -> 1.0 ms; on 20,000 test windows hit@1 0.1913 -> 0.1912,
  hit@5 0.3408 -> 0.3407, perplexity 248.1 -> 247.4.

The int8 layer quantises its input with one scale per call, so rows are scored
one at a time: a word's probability then does not depend on which other rows
(beams of a phrase search) were computed beside it, and the incremental session,
the stateless ``predict`` and ``complete`` agree exactly.

    ids (batch, seq) -> embedding -> cell, cell, ... per layer -> features (batch, seq, hidden)
    features (rows, hidden) -> row by row: int8 output layer -> log-probabilities (rows, vocab)
"""

from __future__ import annotations

import copy
import logging
import warnings

import torch
from torch import nn

from input_method.model import NextWordModel, State

log = logging.getLogger(__name__)

_CELLS = {nn.LSTM: torch.lstm_cell, nn.GRU: torch.gru_cell, nn.RNN: torch.rnn_tanh_cell}


def _int8_output_layer(layer: nn.Module) -> nn.Module | None:
    """A copy of ``layer`` with its Linear weights in int8 (per output row), or None.

    None where this torch has no dynamic quantisation (it is deprecated in
    favour of torchao and may go): the engine then serves float32.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices, not errors
            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
            if "fbgemm" not in torch.backends.quantized.supported_engines:
                return None
            return quantize_dynamic(copy.deepcopy(layer), {nn.Linear: per_channel_dynamic_qconfig})
    except (ImportError, AttributeError, RuntimeError) as error:
        log.warning("int8 output layer unavailable (%s); serving float32", error)
        return None


class ServingModel:
    """``features`` and ``logits`` of a :class:`NextWordModel`, for inference on a CPU.

    Same shapes and state layout as the model's own methods, so a caller can
    use either; no gradients, no dropout.
    """

    def __init__(self, model: NextWordModel, int8_output: bool = True) -> None:
        self.model = model.eval()
        rnn = model.rnn
        self._cell = _CELLS[type(rnn)]
        self._is_lstm = isinstance(rnn, nn.LSTM)
        self._layers = [
            tuple(getattr(rnn, f"{name}_l{layer}")
                  for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            for layer in range(rnn.num_layers)
        ]
        self._hidden_size = rnn.hidden_size
        output = model.adaptive if model.adaptive is not None else model.decoder
        assert output is not None
        self._int8 = _int8_output_layer(output) if int8_output else None
        self.int8_output = self._int8 is not None

    def features(self, input_ids: torch.Tensor,
                 state: State | None = None) -> tuple[torch.Tensor, State]:
        """Hidden features before the output layer. input_ids: (batch, seq)."""
        with torch.inference_mode():
            inputs = self.model.embedding(input_ids)  # (batch, seq, embedding_dim)
            batch, steps = input_ids.shape
            if state is None:
                zeros = inputs.new_zeros(len(self._layers), batch, self._hidden_size)
                state = (zeros, zeros) if self._is_lstm else zeros
            final_h, final_c = [], []
            for layer, weights in enumerate(self._layers):
                if self._is_lstm:
                    assert isinstance(state, tuple)
                    h, c = state[0][layer], state[1][layer]  # (batch, hidden)
                else:
                    assert isinstance(state, torch.Tensor)
                    h, c = state[layer], None
                outputs = []
                for step in range(steps):
                    if self._is_lstm:
                        h, c = self._cell(inputs[:, step], (h, c), *weights)
                    else:
                        h = self._cell(inputs[:, step], h, *weights)
                    outputs.append(h)
                inputs = torch.stack(outputs, 1)  # (batch, seq, hidden)
                final_h.append(h)
                final_c.append(c)
            new_state: State = ((torch.stack(final_h), torch.stack(final_c)) if self._is_lstm
                                else torch.stack(final_h))  # (layers, batch, hidden)
            if self.model.projection is not None:
                inputs = self.model.projection(inputs)  # (batch, seq, embedding_dim)
            return inputs, new_state

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Output layer: (..., features) -> (..., vocab), each row on its own."""
        with torch.inference_mode():
            if self._int8 is None:
                return self.model.logits(features)
            flat = features.reshape(-1, features.shape[-1])  # (rows, features)
            score = (self._int8.log_prob if self.model.adaptive is not None else self._int8)
            rows = [score(flat[row:row + 1]) for row in range(len(flat))]  # each (1, vocab)
            return torch.cat(rows).view(*features.shape[:-1], -1)

    def __call__(self, input_ids: torch.Tensor, state: State | None = None,
                 last_only: bool = False) -> tuple[torch.Tensor, State]:
        """Like ``NextWordModel.forward``: logits at every position, or only the last."""
        output, state = self.features(input_ids, state)
        if last_only:
            output = output[:, -1]  # (batch, features)
        return self.logits(output), state
