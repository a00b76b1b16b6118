"""The network, and only the network: Embedding -> RNN | LSTM | GRU -> output layer.

The output layer is a full ``Linear`` softmax or an adaptive softmax
(``nn.AdaptiveLogSoftmaxWithLoss``: frequent words in a small head, rare ones
in low-dimensional tail clusters; the probabilities stay exact). ``forward``
returns logits and the recurrent state; for the adaptive softmax the logits
are its log-probabilities, which are valid logits (softmax leaves them as they
are). Softmax, top-k and metrics live with the callers.

Inputs are never padded on the left: a context is its real ids, and a batch
of shorter contexts is padded on the right, where a one-directional RNN
cannot see it. ``align_left`` turns left-padded windows into that form.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F  # noqa: N812

from input_method.config import CELLS, SOFTMAXES, ModelConfig

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class NextWordModel(nn.Module):
    """A recurrent language model over word ids."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; choose from {', '.join(CELLS)}")
        if config.softmax not in SOFTMAXES:
            raise ValueError(f"unknown softmax {config.softmax!r}; choose from {', '.join(SOFTMAXES)}")
        if config.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the vocabulary")
        for name in ("dropout", "weight_drop", "embedding_dropout"):
            if not 0.0 <= getattr(config, name) < 1.0:
                raise ValueError(f"ModelConfig.{name} must be in [0, 1)")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = _RNN_CLASSES[config.cell](
            config.embedding_dim, config.hidden_size, num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0, batch_first=True)
        cutoffs = [c for c in config.adaptive_cutoffs if c < config.vocab_size - 1]
        self.adaptive: nn.AdaptiveLogSoftmaxWithLoss | None = None
        self.projection: nn.Linear | None = None
        self.decoder: nn.Linear | None = None
        if config.softmax == "adaptive" and cutoffs:
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(
                config.hidden_size, config.vocab_size, cutoffs=cutoffs, div_value=4.0)
        else:
            # Tied weights need the output features in embedding space: project down first.
            if config.tie_weights:
                self.projection = nn.Linear(config.hidden_size, config.embedding_dim)
            out_features = config.embedding_dim if config.tie_weights else config.hidden_size
            self.decoder = nn.Linear(out_features, config.vocab_size)
            if config.tie_weights:
                self.decoder.weight = self.embedding.weight
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()  # <pad> carries no signal
        if self.decoder is not None:
            nn.init.zeros_(self.decoder.bias)
            if not self.config.tie_weights:
                nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def features(self, input_ids: torch.Tensor,
                 state: State | None = None) -> tuple[torch.Tensor, State]:
        """Hidden features before the output layer. input_ids: (batch, seq)."""
        embedded = self.dropout(self._embed(input_ids))  # (batch, seq, embedding_dim)
        output, state = self._recur(embedded, state)  # (batch, seq, hidden_size)
        output = self.dropout(output)
        if self.projection is not None:
            output = self.projection(output)  # (batch, seq, embedding_dim)
        return output, state

    def _embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Embedding lookup; in training, whole word types dropped (embedding_dropout)."""
        rate = self.config.embedding_dropout
        if not (self.training and rate > 0):
            return self.embedding(input_ids)
        weight = self.embedding.weight  # (vocab, embedding_dim)
        keep = weight.new_empty((weight.shape[0], 1)).bernoulli_(1 - rate) / (1 - rate)
        return F.embedding(input_ids, weight * keep, padding_idx=0)

    def _recur(self, embedded: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The RNN; in training, its hidden-to-hidden weights dropped (weight_drop).

        The dropped matrices are passed in for this call only (``functional_call``),
        so the parameters themselves stay untouched and receive the gradients.
        """
        rate = self.config.weight_drop
        if not (self.training and rate > 0):
            return self.rnn(embedded, state)
        dropped = {name: F.dropout(weight, rate, training=True)
                   for name, weight in self.rnn.named_parameters() if name.startswith("weight_hh")}
        return functional_call(self.rnn, dropped, (embedded, state))

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Output layer: (..., features) -> (..., vocab) logits."""
        if self.adaptive is not None:
            flat = features.reshape(-1, features.shape[-1]).float()  # (N, hidden)
            with torch.autocast(features.device.type, enabled=False):  # as in loss()
                return self.adaptive.log_prob(flat).view(*features.shape[:-1], -1)
        assert self.decoder is not None
        return self.decoder(features)

    def forward(self, input_ids: torch.Tensor, state: State | None = None,
                last_only: bool = False) -> tuple[torch.Tensor, State]:
        """Logits for the next word at every position, or only the last.

        input_ids: (batch, seq) -> logits (batch, seq, vocab), or (batch, vocab)
        with ``last_only`` (the output layer is the costly part).
        """
        output, state = self.features(input_ids, state)
        if last_only:
            output = output[:, -1]  # (batch, features)
        return self.logits(output), state

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of ``targets`` (N,) given ``features`` (N, hidden).

        The adaptive softmax computes its loss without materialising the full
        vocabulary; that is why this is a model method and not plain F.cross_entropy.
        """
        if self.adaptive is not None:
            # In float32 even under autocast (training on CUDA runs in bfloat16): the
            # adaptive softmax copies float32 log-probabilities into a buffer of the
            # input's dtype, which autocast makes fail.
            with torch.autocast(features.device.type, enabled=False):
                return self.adaptive(features.float(), targets).loss
        return F.cross_entropy(self.logits(features), targets)

    def target_log_probs(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """log P(target) for each row: ``features`` (N, hidden), ``targets`` (N,) -> (N,).

        With the adaptive softmax only the targets' clusters are computed, not
        the whole vocabulary (what the user model needs after each sentence).
        """
        if self.adaptive is not None:
            return self.adaptive(features.float(), targets).output
        log_probs = torch.log_softmax(self.logits(features).float(), dim=-1)
        return log_probs.gather(1, targets[:, None])[:, 0]

    def num_parameters(self) -> int:
        """Trainable parameters, tied ones counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def align_left(windows: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each window's real ids to the front; return them and their lengths.

    Windows are padded on the left (the jsonl format); the model wants the
    padding on the right, after the last real id::

        [pad pad <s> 我]  ->  [<s> 我 pad pad], length 2

    windows: (batch, context) -> ((batch, context), (batch,))
    """
    pads = (windows == pad_id).sum(1)  # (batch,) left pads per window
    width = windows.shape[1]
    index = (torch.arange(width, device=windows.device)[None, :] + pads[:, None]) % width
    return windows.gather(1, index), width - pads


def window_features(model: NextWordModel, windows: torch.Tensor, pad_id: int) -> torch.Tensor:
    """The network's state after each left-padded window: (batch, context) -> (batch, hidden)."""
    aligned, lengths = align_left(windows, pad_id)
    features, _ = model.features(aligned)  # (batch, context, hidden)
    return features[torch.arange(len(lengths), device=features.device), lengths - 1]


def window_logits(model: NextWordModel, windows: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Next-word logits for left-padded windows: (batch, context) -> (batch, vocab)."""
    return model.logits(window_features(model, windows, pad_id))
