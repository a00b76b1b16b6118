"""Tests for checkpoints: round trip, damage, and safety."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from input_method.checkpoint import (
    INT4_GROUP,
    build_model,
    dequantize_state_dict,
    export_checkpoint,
    load_model,
    load_ngram,
    quantize_state_dict,
    read_checkpoint,
    save_checkpoint,
)
from input_method.config import ModelConfig
from input_method.errors import CheckpointError, ModelNotFoundError
from input_method.model import NextWordModel
from input_method.vocab import Vocab

VOCAB = Vocab(["<pad>", "<unk>", "<s>", "我", "你", "他"])


def _save(path: Path) -> NextWordModel:
    model = NextWordModel(ModelConfig(vocab_size=len(VOCAB), embedding_dim=8, hidden_size=8))
    save_checkpoint(path, model=model, vocab=VOCAB, context_size=3, metrics={"loss": 1.5})
    return model


def test_round_trip_gives_the_same_outputs(tmp_path):
    """Weights, vocabulary, config and metrics come back; outputs are identical."""
    model = _save(tmp_path / "best.pt").eval()
    loaded, vocab, payload = load_model(tmp_path)
    x = torch.tensor([[2, 3, 4]])
    assert torch.equal(model(x)[0], loaded(x)[0])
    assert vocab.itos == VOCAB.itos and payload["metrics"] == {"loss": 1.5}
    assert payload["context_size"] == 3


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path):
    """Half a file gives one clear error, not a torch traceback."""
    _save(tmp_path / "best.pt")
    data = (tmp_path / "best.pt").read_bytes()
    (tmp_path / "best.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_model(tmp_path)


class _Exploit:
    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_malicious_pickle_does_not_run(tmp_path):
    """weights_only loading refuses a pickle that would call a function."""
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.target = str(marker)
    bad = tmp_path / "best.pt"
    torch.save({"format_version": 1, "payload": exploit}, bad, pickle_module=pickle)
    with pytest.raises(CheckpointError):
        read_checkpoint(bad)
    assert not marker.exists()


def test_missing_model_says_how_to_train(tmp_path):
    """A missing directory names the command that trains a model."""
    with pytest.raises(ModelNotFoundError, match="ime train"):
        load_model(tmp_path / "nothing")


def test_vocabulary_that_does_not_match_the_weights_is_rejected(tmp_path):
    """A checkpoint whose vocabulary was swapped for a longer one is refused."""
    _save(tmp_path / "best.pt")
    payload = torch.load(tmp_path / "best.pt", weights_only=True)
    payload["vocab"] = [*VOCAB.itos, "多余"]
    payload["vocab_fingerprint"] = Vocab(payload["vocab"]).fingerprint()
    torch.save(payload, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="expects 6 words"):
        load_model(tmp_path)


def test_weights_of_another_shape_are_rejected(tmp_path):
    """A config that disagrees with the stored weights is a CheckpointError."""
    _save(tmp_path / "best.pt")
    payload = torch.load(tmp_path / "best.pt", weights_only=True)
    payload["model_config"]["hidden_size"] = 16
    torch.save(payload, tmp_path / "best.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path)


def test_export_shrinks_weights_and_keeps_predictions_close(tmp_path):
    """An int8 export loads, is smaller, and its probabilities stay close to the original."""
    model = NextWordModel(ModelConfig(vocab_size=300, embedding_dim=32, hidden_size=32,
                                      softmax="full")).eval()
    big_vocab = Vocab(["<pad>", "<unk>", "<s>", *[f"词{i}" for i in range(297)]])
    save_checkpoint(tmp_path / "run" / "best.pt", model=model, vocab=big_vocab, context_size=3)
    exported = export_checkpoint(tmp_path / "run", tmp_path / "shipped")
    assert exported.stat().st_size < (tmp_path / "run" / "best.pt").stat().st_size / 2
    loaded, vocab, _ = load_model(tmp_path / "shipped")
    x = torch.tensor([[2, 5, 9]])
    original = torch.softmax(model(x)[0], -1)
    shipped = torch.softmax(loaded(x)[0], -1)
    assert vocab.itos == big_vocab.itos
    assert torch.allclose(original, shipped, atol=1e-3)


def test_a_shipped_trigram_round_trips_and_damage_is_a_checkpoint_error(tiny_mixed_model_dir,
                                                                        tmp_path):
    """load_ngram gives back the exported trigram and weight; a damaged one is refused
    with CheckpointError, and a checkpoint without one has none."""
    payload = read_checkpoint(tiny_mixed_model_dir / "best.pt")
    ngram, weight = load_ngram(payload)
    assert ngram is not None and weight == pytest.approx(0.3) and ngram.entries() > 0
    assert load_ngram({k: v for k, v in payload.items() if k != "ngram"}) == (None, 0.0)
    broken = dict(payload, ngram=dict(payload["ngram"], tables={"version": 2}))
    with pytest.raises(CheckpointError, match="n-gram"):
        load_ngram(broken)
    with pytest.raises(CheckpointError, match="weight"):
        load_ngram(dict(payload, ngram=dict(payload["ngram"], weight=1.5)))


def test_an_export_can_be_exported_again(tmp_path):
    """Exporting an exported model (say, to add a trigram to it) works and keeps its
    predictions: int8 weights quantise again to themselves."""
    model = NextWordModel(ModelConfig(vocab_size=300, embedding_dim=32, hidden_size=32)).eval()
    vocab = Vocab(["<pad>", "<unk>", "<s>", *[f"词{i}" for i in range(297)]])
    save_checkpoint(tmp_path / "run" / "best.pt", model=model, vocab=vocab, context_size=3)
    export_checkpoint(tmp_path / "run", tmp_path / "once")
    export_checkpoint(tmp_path / "once", tmp_path / "twice")
    once, _, _ = load_model(tmp_path / "once")
    twice, _, _ = load_model(tmp_path / "twice")
    x = torch.tensor([[2, 5, 9]])
    assert torch.allclose(once(x)[0], twice(x)[0], atol=1e-5)


def test_int4_groups_round_trip_within_half_a_step_and_halve_the_size(tmp_path):
    """int4 codes come back to within half a quantisation step of each weight (columns not
    a multiple of the group included), the export is about half the int8 one, the recurrent
    matrices stay int8, and damaged int4 tables are a CheckpointError."""
    torch.manual_seed(0)
    matrix = torch.randn(100, 45)  # 45 columns: one group and a padded one
    packed = quantize_state_dict({"decoder.weight": matrix}, "int4-groups")["decoder.weight"]
    restored = dequantize_state_dict({"decoder.weight": packed})["decoder.weight"]
    assert restored.shape == matrix.shape
    step = packed["scale"].float().repeat_interleave(INT4_GROUP, dim=1)[:, :45]
    assert ((restored - matrix).abs() <= step / 2 + 1e-6).all()
    assert ((restored / step).round() - restored / step).abs().max() < 1e-4  # on the grid

    model = NextWordModel(ModelConfig(vocab_size=3000, embedding_dim=64, hidden_size=64,
                                      softmax="full")).eval()
    vocab = Vocab(["<pad>", "<unk>", "<s>", *[f"词{i}" for i in range(2997)]])
    save_checkpoint(tmp_path / "run" / "best.pt", model=model, vocab=vocab, context_size=3)
    int8 = export_checkpoint(tmp_path / "run", tmp_path / "int8")
    int4 = export_checkpoint(tmp_path / "run", tmp_path / "int4", quantization="int4-groups")
    assert int4.stat().st_size < 0.65 * int8.stat().st_size
    payload = read_checkpoint(int4)
    assert payload["quantization"] == "int4-groups"
    assert "int8" in payload["state_dict"]["rnn.weight_hh_l0"]
    assert "int4" in payload["state_dict"]["embedding.weight"]
    loaded, _, _ = load_model(tmp_path / "int4")
    x = torch.tensor([[2, 5, 9]])
    assert torch.allclose(torch.softmax(model(x)[0], -1), torch.softmax(loaded(x)[0], -1),
                          atol=2e-3)
    damaged = dict(payload["state_dict"], **{"embedding.weight": {"int4": torch.zeros(3, 3)}})
    with pytest.raises(CheckpointError, match="do not fit"):
        build_model(dict(payload, state_dict=damaged))
    with pytest.raises(ValueError, match="quantization"):
        quantize_state_dict({}, "int2")
