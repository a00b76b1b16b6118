"""Shared fixtures: a tiny corpus, a tiny config, and a tiny trained model.

Qt must run headless: the platform is set before anything imports Qt.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Anything that learns from typing writes its history here, never in the real home.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="ime-tests-")
# A neighbour memory's index is cached here, never in the real home.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="ime-tests-cache-")

import json  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from input_method.config import ModelConfig, ProcessConfig, TrainConfig  # noqa: E402

# A small, varied set of everyday sentences; enough for a vocabulary and a
# split, small enough that processing and training take a second or two.
TINY_TEXTS = [
    "我今天去北京。", "我今天很高兴。", "我们今天去上海。", "他今天不去学校。",
    "我明天去北京开会。", "你今天去哪里？", "我们明天一起去公园吧！", "今天天气很好。",
    "明天天气不好。", "我喜欢北京。", "他喜欢上海的天气。", "我们喜欢一起学习。",
    "这本书很好看，我很喜欢。", "这本书不好看。", "质量还不错，价格也便宜。",
    "质量不好，很失望。", "价格太贵了，不推荐。", "物流很快，包装也很好。",
    "我在北京工作。", "他在上海学习。", "我们在学校学习中文。", "老师今天很忙。",
    "学生们明天考试。", "我想去北京看看。", "你想去哪里玩？", "他不想去学校。",
    "北京是中国的首都。", "上海是中国的大城市。", "中国经济发展很快。", "今年经济增长很快。",
    "我今天买了一本书。", "他昨天买了一个手机。", "手机质量很好，推荐购买。",
    "我们公司今天开会。", "公司明年发展很好。", "我今天在家学习。", "你明天在家吗？",
    "这个手机价格便宜，质量不错。", "我觉得这本书很好。", "我觉得价格有点贵。",
]


def write_tiny_corpus(path: Path, duplicates: bool = True) -> Path:
    """One text per line; with ``duplicates`` every third text appears twice."""
    lines = list(TINY_TEXTS)
    if duplicates:
        lines += TINY_TEXTS[::3]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def tiny_process_config(tmp: Path) -> ProcessConfig:
    """Short windows, every word kept, one process (fast start-up in tests)."""
    return ProcessConfig(inputs=(str(tmp / "corpus.txt"),), output_dir=str(tmp / "processed"),
                         context_size=3, min_freq=1, max_vocab_size=0, workers=1,
                         train_fraction=0.7, valid_fraction=0.15)


TINY_MODEL = ModelConfig(cell="lstm", embedding_dim=16, hidden_size=24, dropout=0.0)  # LSTM: its
# (h, c) state takes the most care in sessions and beams; GRU and RNN are covered per cell


def tiny_train_config(tmp: Path, processed: Path) -> TrainConfig:
    """A few epochs of tiny batches, on CPU, logging under ``tmp``."""
    return TrainConfig(data_dir=str(processed), models_root=str(tmp / "models"),
                       logs_root=str(tmp / "logs"), run_name="tiny", epochs=3, batch_size=16,
                       learning_rate=1e-2, device="cpu", patience=5, checkpoint_every=5,
                       max_valid_windows=0)


@pytest.fixture(scope="session")
def processed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny corpus, processed once per test session."""
    from input_method.process import process

    tmp = tmp_path_factory.mktemp("tiny")
    write_tiny_corpus(tmp / "corpus.txt")
    config = tiny_process_config(tmp)
    process(config)
    return Path(config.output_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, processed_dir: Path) -> Path:
    """A tiny LSTM trained for a few epochs on the tiny corpus."""
    from input_method.train import train

    tmp = tmp_path_factory.mktemp("model")
    config = tiny_train_config(tmp, processed_dir)
    summary = train(replace(config, epochs=8), TINY_MODEL)
    return Path(summary["run_dir"])


@pytest.fixture
def tiny_stats(processed_dir: Path) -> dict:
    """The stats.json of the tiny processed corpus."""
    return json.loads((processed_dir / "stats.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def tiny_mixed_model_dir(tmp_path_factory: pytest.TempPathFactory, processed_dir: Path,
                         tiny_model_dir: Path) -> Path:
    """The tiny model exported with its training split's trigram mixed in at weight 0.3."""
    from input_method.checkpoint import export_checkpoint
    from input_method.mixture import build_ngram, ngram_payload
    from input_method.vocab import Vocab

    ngram = build_ngram(processed_dir, Vocab.load(processed_dir / "vocab.json"), min_count=1)
    target = tmp_path_factory.mktemp("mixed")
    export_checkpoint(tiny_model_dir, target, ngram_payload(ngram, 0.3, {}))
    return target
