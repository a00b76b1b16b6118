"""The network, and only the network: Embedding -> RNN | LSTM | GRU -> Linear.

``forward`` returns logits and the recurrent state; losses, softmax and top-k
live with their callers (train, evaluate, predict).
"""

from __future__ import annotations

import torch
from torch import nn

from input_method.config import CELLS, ModelConfig

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]

_RNN_CLASSES: dict[str, type[nn.RNNBase]] = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


class NextWordModel(nn.Module):
    """A recurrent language model over word ids."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.cell not in CELLS:
            raise ValueError(f"unknown cell {config.cell!r}; choose from {', '.join(CELLS)}")
        if config.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the vocabulary")
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=0)
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = _RNN_CLASSES[config.cell](
            config.embedding_dim, config.hidden_size, num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0, batch_first=True)
        # Tied weights need the output features in embedding space: project down first.
        self.projection = (nn.Linear(config.hidden_size, config.embedding_dim)
                           if config.tie_weights else None)
        out_features = config.embedding_dim if config.tie_weights else config.hidden_size
        self.decoder = nn.Linear(out_features, config.vocab_size)
        if config.tie_weights:
            self.decoder.weight = self.embedding.weight
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        with torch.no_grad():
            self.embedding.weight[0].zero_()  # <pad> carries no signal
        nn.init.zeros_(self.decoder.bias)
        if not self.config.tie_weights:
            nn.init.uniform_(self.decoder.weight, -0.1, 0.1)

    def features(self, input_ids: torch.Tensor,
                 state: State | None = None) -> tuple[torch.Tensor, State]:
        """Hidden features before the output layer. input_ids: (batch, seq)."""
        embedded = self.dropout(self.embedding(input_ids))  # (batch, seq, embedding_dim)
        output, state = self.rnn(embedded, state)  # (batch, seq, hidden_size)
        output = self.dropout(output)
        if self.projection is not None:
            output = self.projection(output)  # (batch, seq, embedding_dim)
        return output, state

    def forward(self, input_ids: torch.Tensor, state: State | None = None,
                last_only: bool = False) -> tuple[torch.Tensor, State]:
        """Logits for the next word at every position, or only the last.

        input_ids: (batch, seq) -> logits (batch, seq, vocab), or (batch, vocab)
        with ``last_only`` (the output layer is the costly part, so training on
        the last position only skips it for the others).
        """
        output, state = self.features(input_ids, state)
        if last_only:
            output = output[:, -1]  # (batch, features)
        return self.decoder(output), state

    def num_parameters(self) -> int:
        """Trainable parameters, tied ones counted once."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
