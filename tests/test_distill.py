"""Tests for distillation: the loss's two parts, the teachers' checks, a student learning from them."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from input_method.checkpoint import load_model
from input_method.cli import main
from input_method.config import ModelConfig
from input_method.dataset import WindowDataset
from input_method.distill import TeacherEnsemble, distillation_loss
from input_method.errors import TrainingError
from input_method.model import NextWordModel, window_logits
from input_method.train import batch_loss, train
from input_method.vocab import Vocab
from tests.conftest import TINY_MODEL, tiny_train_config


@pytest.mark.parametrize("softmax", ["full", "adaptive"])
def test_weight_zero_is_the_plain_loss_and_weight_one_the_teachers_cross_entropy(softmax):
    """At weight 0 the loss is the model's own cross-entropy; at weight 1 it is the cross-entropy
    against the teachers' distribution, recomputed here from the model's log-probabilities."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=50, embedding_dim=8, hidden_size=12, softmax=softmax,
                         adaptive_cutoffs=(10, 30))
    model = NextWordModel(config).eval()
    features = torch.randn(6, 12)
    targets = torch.randint(3, 50, (6,))
    teacher = torch.softmax(torch.randn(6, 50), dim=-1)
    plain = distillation_loss(model, features, targets, teacher, 0.0)
    assert torch.allclose(plain, model.loss(features, targets), atol=1e-5)
    log_probs = torch.log_softmax(model.logits(features), dim=-1)
    soft = distillation_loss(model, features, targets, teacher, 1.0)
    assert torch.allclose(soft, -(teacher * log_probs).sum(-1).mean(), atol=1e-5)
    half = distillation_loss(model, features, targets, teacher, 0.5)
    assert torch.allclose(half, (plain + soft) / 2, atol=1e-5)


def test_the_ensemble_averages_its_teachers_probabilities():
    """Two teachers' soft targets are the mean of their own softmax outputs, at the scored
    positions of sentence pieces and after left-padded windows alike."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=30, embedding_dim=8, hidden_size=12, softmax="full")
    models = [NextWordModel(config), NextWordModel(config)]
    ensemble = TeacherEnsemble(models)
    inputs = torch.randint(3, 30, (4, 5))
    scored = torch.ones(4, 5, dtype=torch.bool)
    scored[0, 3:] = False
    expected = sum(torch.softmax(m(inputs)[0][scored], -1) for m in models) / 2
    assert torch.allclose(ensemble.probs_at(inputs, scored), expected, atol=1e-6)
    windows = torch.cat([torch.zeros(4, 2, dtype=torch.long), inputs[:, :3]], dim=1)
    expected = sum(torch.softmax(window_logits(m, windows, 0), -1) for m in models) / 2
    assert torch.allclose(ensemble.probs_last(windows, 0), expected, atol=1e-6)
    assert not any(p.requires_grad for m in models for p in m.parameters())


def test_a_teacher_on_another_vocabulary_is_refused(tiny_model_dir, tmp_path):
    """Teachers must share the student's vocabulary: ids would mean other words."""
    _, vocab, _ = load_model(tiny_model_dir)
    other = Vocab([*vocab.itos, "新词"])
    with pytest.raises(TrainingError, match="another vocabulary"):
        TeacherEnsemble.load([tiny_model_dir], other, torch.device("cpu"))


def test_a_distilled_student_moves_towards_its_teacher(tmp_path, processed_dir, tiny_model_dir):
    """Trained the same steps from the same seed, a student that learns only from the teacher's
    distribution ends closer to it (KL on the training windows) than one trained on the words."""
    config = replace(tiny_train_config(tmp_path, processed_dir), epochs=3)
    student = replace(TINY_MODEL, hidden_size=16)
    train(replace(config, run_name="plain"), student)
    train(replace(config, run_name="distilled", teachers=(str(tiny_model_dir),),
                  distill_weight=1.0), student)
    teacher, vocab, _ = load_model(tiny_model_dir)
    windows = WindowDataset.from_split(processed_dir, "train", 3).inputs
    with torch.no_grad():
        target = torch.log_softmax(window_logits(teacher, windows, vocab.pad_id), -1)
        divergence = {}
        for run in ("plain", "distilled"):
            model, _, _ = load_model(tmp_path / "models" / run / "last.pt")
            log_probs = torch.log_softmax(window_logits(model, windows, vocab.pad_id), -1)
            divergence[run] = float((target.exp() * (target - log_probs)).sum(-1).mean())
    assert divergence["distilled"] < divergence["plain"]


def test_train_cli_takes_teachers_and_checks_the_weight(tmp_path, processed_dir, tiny_model_dir,
                                                         capsys):
    """`ime train --teacher M --distill-weight W` trains; a weight outside [0, 1] is one line."""
    common = ["train", "--data-dir", str(processed_dir), "--models-root", str(tmp_path / "m"),
              "--logs-root", str(tmp_path / "l"), "--device", "cpu", "--max-steps", "2",
              "--epochs", "1", "--teacher", str(tiny_model_dir)]
    assert main([*common, "--run-name", "ok", "--distill-weight", "0.7"]) == 0
    _, _, payload = load_model(tmp_path / "m" / "ok")
    assert list(payload["train_config"]["teachers"]) == [str(tiny_model_dir)]
    assert payload["train_config"]["distill_weight"] == 0.7
    capsys.readouterr()
    assert main([*common, "--run-name", "bad", "--distill-weight", "1.5"]) != 0
    assert "--distill-weight" in capsys.readouterr().err
    assert not (tmp_path / "m" / "bad").exists()  # refused before anything was written


def test_batch_loss_distils_with_either_objective():
    """batch_loss with teachers equals distillation_loss on the positions each objective
    scores: every real word of sentence pieces, or the last word of left-padded windows."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, embedding_dim=8, hidden_size=12, softmax="full",
                         dropout=0.0)
    student, teacher = NextWordModel(config).eval(), NextWordModel(config)
    ensemble = TeacherEnsemble([teacher])
    pieces = torch.randint(3, 40, (3, 5))
    targets = torch.randint(3, 40, (3, 5))
    targets[0, 3:] = 0  # padding: not scored
    loss, count = batch_loss(student, pieces, targets, "all", 0, ensemble, 0.4)
    scored = targets != 0
    features = student.features(pieces)[0][scored]
    expected = distillation_loss(student, features, targets[scored],
                                 ensemble.probs_at(pieces, scored), 0.4)
    assert count == int(scored.sum()) and torch.allclose(loss, expected, atol=1e-6)

    windows = torch.cat([torch.zeros(3, 2, dtype=torch.long), pieces[:, :3]], dim=1)
    last = torch.randint(3, 40, (3,))
    loss, count = batch_loss(student, windows, last, "last", 0, ensemble, 0.4)
    soft = torch.softmax(window_logits(teacher, windows, 0), -1)
    log_probs = torch.log_softmax(window_logits(student, windows, 0), -1)
    hand = 0.6 * torch.nn.functional.nll_loss(log_probs, last) \
        - 0.4 * (soft * log_probs).sum(-1).mean()
    assert count == 3 and torch.allclose(loss, hand, atol=1e-5)
