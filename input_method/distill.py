"""Knowledge distillation: a student learns from an ensemble of trained teachers.

A small, shippable network is trained on the teachers' averaged next-word
distribution as well as on the words of the text::

    loss = (1 - w) * cross_entropy(student, word)
           + w * cross_entropy(student, mean_t P_teacher_t(. | context))

The soft targets say which other words would also have fitted a context, which
one-hot targets never do; on a small corpus that is a strong regulariser, and it
lets a model that must fit the 10 MB budget learn from teachers that do not
(larger networks, several seeds). Teachers are frozen and only run forward.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import torch
from torch.nn import functional as F  # noqa: N812

from input_method.checkpoint import load_trained_on
from input_method.model import NextWordModel, window_logits
from input_method.vocab import Vocab


class TeacherEnsemble:
    """Frozen trained models whose averaged probabilities are the soft targets."""

    def __init__(self, models: Sequence[NextWordModel]) -> None:
        if not models:
            raise ValueError("a teacher ensemble needs at least one model")
        self.models = list(models)
        for model in self.models:
            model.eval()
            model.requires_grad_(False)

    @classmethod
    def load(cls, paths: Sequence[str | Path], vocab: Vocab,
             device: torch.device) -> TeacherEnsemble:
        """Load teachers (model directories or checkpoints) trained on ``vocab``."""
        return cls([load_trained_on(path, vocab, device, "teacher") for path in paths])

    @torch.no_grad()
    def probs_at(self, inputs: torch.Tensor, scored: torch.Tensor) -> torch.Tensor:
        """Mean next-word distribution at the scored positions of sentence pieces.

        inputs: (batch, width) ids, scored: (batch, width) bool -> (scored, vocab)
        """
        return _mean(torch.softmax(model.logits(model.features(inputs)[0][scored]).float(), -1)
                     for model in self.models)

    @torch.no_grad()
    def probs_last(self, windows: torch.Tensor, pad_id: int) -> torch.Tensor:
        """Mean next-word distribution after left-padded windows: (batch, context) -> (batch, vocab)."""
        return _mean(self.each_last(windows, pad_id))

    @torch.no_grad()
    def each_last(self, windows: torch.Tensor, pad_id: int) -> Iterator[torch.Tensor]:
        """Each teacher's next-word distribution after left-padded windows, in turn."""
        for model in self.models:
            yield torch.softmax(window_logits(model, windows, pad_id).float(), dim=-1)


def _mean(distributions: Iterable[torch.Tensor]) -> torch.Tensor:
    """The average of same-shaped distributions, summed in place (one extra (N, V) buffer)."""
    total, count = None, 0
    for probs in distributions:
        total = probs if total is None else total.add_(probs)
        count += 1
    assert total is not None, "a teacher ensemble has at least one model"
    return total.div_(count)


def distillation_loss(model: NextWordModel, features: torch.Tensor, targets: torch.Tensor,
                      teacher_probs: torch.Tensor, weight: float) -> torch.Tensor:
    """Mix of the cross-entropy on ``targets`` and on the teachers' distribution.

    features: (N, hidden), targets: (N,), teacher_probs: (N, vocab).
    """
    log_probs = torch.log_softmax(model.logits(features).float(), dim=-1)  # (N, vocab)
    hard = F.nll_loss(log_probs, targets)
    soft = -(teacher_probs * log_probs).sum(-1).mean()
    return (1.0 - weight) * hard + weight * soft
