"""Tests for the ime command, end to end on the tiny corpus."""

from __future__ import annotations

import pytest
import torch

from input_method.cli import main
from tests.conftest import write_tiny_corpus


@pytest.mark.parametrize("command", ["process", "train", "evaluate", "predict"])
def test_every_subcommand_has_help(command, capsys):
    """`ime COMMAND --help` prints usage and exits 0."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: ime" in capsys.readouterr().out


def test_process_train_evaluate_predict_end_to_end(tmp_path, capsys, monkeypatch):
    """The four stages run from the CLI in seconds and the model answers a prefix (the
    model trained to see only the last two words of the data's three); a second run
    fine-tunes it (--init-from)."""
    monkeypatch.chdir(tmp_path)
    write_tiny_corpus(tmp_path / "corpus.txt")
    assert main(["process", "--input", "corpus.txt", "--context-size", "3", "--min-freq", "1",
                 "--workers", "1", "--train-fraction", "0.7", "--valid-fraction", "0.15"]) == 0
    assert main(["train", "--run-name", "e2e", "--epochs", "3", "--batch-size", "16",
                 "--embedding-dim", "16", "--hidden-size", "16", "--device", "cpu",
                 "--context-limit", "2"]) == 0
    assert (tmp_path / "models" / "e2e" / "best.pt").is_file()
    assert main(["train", "--run-name", "tuned", "--init-from", "models/e2e", "--epochs", "1",
                 "--batch-size", "16", "--device", "cpu", "--learning-rate", "1e-3"]) == 0
    assert (tmp_path / "models" / "tuned" / "best.pt").is_file()
    from input_method.predict import Predictor

    assert Predictor.load(tmp_path / "models" / "e2e").context_size == 2  # --context-limit
    assert main(["evaluate", "--model", "models/e2e"]) == 0
    assert "KN trigram" in capsys.readouterr().out
    assert main(["predict", "--model", "models/e2e", "--top-k", "3", "我今天"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("我今天 → ") and out.count("(") == 3
    # Shipping it with the trigram (its weight chosen on validation) keeps it usable.
    assert main(["export", "--model", "models/e2e", "--output", "models/shipped",
                 "--ngram-min-count", "1", "--quantization", "int4-groups"]) == 0
    assert "exported models/e2e" in capsys.readouterr().out
    shipped = torch.load(tmp_path / "models" / "shipped" / "best.pt", weights_only=True)
    assert shipped["quantization"] == "int4-groups" and "ngram" in shipped
    assert main(["predict", "--model", "models/shipped", "--top-k", "3", "我今天"]) == 0
    assert capsys.readouterr().out.count("(") == 3


def test_char_unit_end_to_end_suggests_single_characters(tmp_path, capsys, monkeypatch):
    """`ime process --unit char`: the model learns characters, and predict (stateless and
    incremental) cuts the prefix the same way and suggests single Chinese characters."""
    import json

    from input_method.predict import Predictor
    from input_method.vocab import Vocab

    monkeypatch.chdir(tmp_path)
    write_tiny_corpus(tmp_path / "corpus.txt")
    assert main(["process", "--input", "corpus.txt", "--context-size", "4", "--min-freq", "1",
                 "--workers", "1", "--train-fraction", "0.7", "--valid-fraction", "0.15",
                 "--unit", "char"]) == 0
    vocab = Vocab.load(tmp_path / "data/processed/vocab.json")
    assert "今天" not in vocab and "今" in vocab
    assert main(["train", "--run-name", "chars", "--epochs", "2", "--batch-size", "16",
                 "--embedding-dim", "16", "--hidden-size", "16", "--device", "cpu"]) == 0
    predictor = Predictor.load(tmp_path / "models" / "chars")
    assert predictor.tokenize("我今天")[1:] == ["我", "今", "天"]
    suggestions = predictor.predict("我今天", 5)
    assert all(len(word) == 1 for word, _ in suggestions if "\u4e00" <= word <= "\u9fff")
    assert predictor.session().predict("我今天", 5) == suggestions
    assert main(["evaluate", "--model", "models/chars"]) == 0
    assert json.loads((tmp_path / "models/chars/eval.json").read_text())["unit"] == "char"


def test_interactive_predict_loop_quits(tiny_model_dir, capsys, monkeypatch):
    """Without a prefix, `ime predict` reads lines until 'quit'."""
    answers = iter(["我今天", "quit"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(answers))
    assert main(["predict", "--model", str(tiny_model_dir)]) == 0
    assert "我今天 → " in capsys.readouterr().out


def test_missing_model_is_one_line_on_stderr(tmp_path, capsys):
    """An expected error exits 1 with a single line saying what to do."""
    assert main(["predict", "--model", str(tmp_path / "none"), "我"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ime train" in err[0]


def test_learn_counts_adapts_and_forgets_from_the_cli(tiny_model_dir, tmp_path, capsys):
    """`ime learn FILES` writes the history and adapted weights; `--forget` removes both."""
    texts = tmp_path / "mine.txt"
    texts.write_text("我喜欢物流。\n我今天去北京。\n", encoding="utf-8")
    history = tmp_path / "user" / "history.json"
    args = ["--model", str(tiny_model_dir), "--history", str(history)]
    assert main(["learn", str(texts), *args]) == 0
    out = capsys.readouterr().out
    assert "learned" in out and "adapted the network" in out
    assert history.is_file() and history.with_name("history.adapted.pt").is_file()
    assert main(["learn", "--forget", *args]) == 0
    assert not history.exists() and not history.with_name("history.adapted.pt").exists()
    assert main(["learn", str(tmp_path / "missing.txt"), *args]) == 1
    assert "no such file" in capsys.readouterr().err


def test_export_flags_reach_the_export_config(monkeypatch, tmp_path):
    """`ime export --neighbours --no-first-word` asks fit() for the neighbour memory
    without the first word's own κ and T; without the flag validation decides."""
    from input_method import checkpoint, mixture

    seen = []

    def exported(*args):
        (tmp_path / "best.pt").write_bytes(b"x")
        return tmp_path / "best.pt"

    monkeypatch.setattr(mixture, "fit", lambda model, config: seen.append(config))
    monkeypatch.setattr(checkpoint, "export_checkpoint", exported)
    base = ["export", "--model", "m", "--output", "o", "--ngram-min-count", "1",
            "--phrase-memory", "--neighbours"]
    assert main([*base, "--no-first-word"]) == 0 and main(base) == 0
    assert [(c.neighbours, c.first_word) for c in seen] == [(True, False), (True, True)]
