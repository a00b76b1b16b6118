"""Measurements behind the closing notes, reproducible from the command line.

    python scripts/feature_checks.py fuzz --model models/default --count 100000
    python scripts/feature_checks.py pinyin --model models/default --data-dir data/processed
    python scripts/feature_checks.py domain --model models/news --texts 500

``fuzz``    random prefixes (any Unicode, long ones too) through predict and a
            session: counts, exceptions, slowest call.
``pinyin``  200 random test-split words: how often the true word is in the top 5
            with its initials typed, against without.
``domain``  a model trained on the newspaper half, scored on product reviews (a
            domain it never saw): hit@5 on words with a Han character and the
            share of their characters covered by top-5 hits; then again after
            ``learn()`` on other reviews (the count model), after ``adapt()``
            (the network fine-tuned on them too), and after ``forget()``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from input_method import Predictor
from input_method.corpus import bundled_corpus, clean_text, read_texts
from input_method.pinyin import readings_of
from input_method.segment import HAN


def fuzz(model: str, count: int, seed: int) -> dict:
    """Random prefixes through predict and a session; exceptions are counted, not raised."""
    rng = random.Random(seed)
    predictor = Predictor.load(model, threads=1)
    session = predictor.session()
    pools = ["我今天去北京，", "abcXYZ 123", "😀🚀\u200b\u202e", "\x00\x07\t\r\n", "。！？…；",
             "們說體會裡", "ＡＢＣ１２３", "\ud800\udfff", "ㄅㄆㄇ", "한국어", "русский"]
    errors, slowest, started = 0, 0.0, time.perf_counter()
    for i in range(count):
        kind = i % 4
        if kind == 0:
            text = "".join(chr(rng.randrange(0x0, 0x10FFFF)) for _ in range(rng.randrange(0, 40)))
        elif kind == 1:
            text = "".join(rng.choice(pools) for _ in range(rng.randrange(0, 12)))
        elif kind == 2:
            text = "".join(rng.choice(pools) for _ in range(rng.randrange(0, 3))) * rng.randrange(1, 20000)
        else:
            text = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(rng.randrange(0, 30)))
        begin = time.perf_counter()
        try:
            (session if i % 2 else predictor).predict(text, 5)
        except Exception:  # noqa: BLE001 - the point is to count them
            errors += 1
        slowest = max(slowest, time.perf_counter() - begin)
    return {"prefixes": count, "exceptions": errors, "slowest_ms": round(slowest * 1000, 2),
            "seconds": round(time.perf_counter() - started, 1)}


def pinyin(model: str, data_dir: str, count: int, seed: int) -> dict:
    """Top-5 hit rate of random test words with and without their initials typed."""
    predictor = Predictor.load(model, threads=1)
    sentences = [line.split() for line in
                 (Path(data_dir) / "test.tokens.txt").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    cases = []
    while len(cases) < count:
        words = rng.choice(sentences)
        if not words:
            continue
        i = rng.randrange(len(words))
        readings = readings_of(words[i])
        if readings is None or words[i] not in predictor.vocab:
            continue
        cases.append(("".join(words[:i]), words[i], "".join(r[0][0] for r in readings)))
    plain = sum(word in [w for w, _ in predictor.predict(prefix, 5)] for prefix, word, _ in cases)
    typed = sum(word in [w for w, _ in predictor.predict(prefix, 5, pinyin=initials)]
                for prefix, word, initials in cases)
    return {"words": count, "hit@5_without_pinyin": plain / count,
            "hit@5_with_initials": typed / count, "ratio": typed / max(plain, 1)}


# The baseline the quality issue quotes: always suggest the five commonest words.
CONSTANT_TOP5 = ["的", "了", "是", "在", "和"]


def _score(predictor: Predictor, texts: list[str], constant: bool = False) -> dict:
    """Replay texts word by word: hit@5 and character coverage on words with a Han character.

    ``constant``: score the fixed list ``CONSTANT_TOP5`` instead of the model's top 5.
    """
    hits = words = chars = chars_hit = 0
    for text in texts:
        for sentence in predictor.segmenter.sentences(clean_text(text)):
            session = predictor.session()
            for i, word in enumerate(sentence):
                if not HAN.search(word):
                    continue
                top = CONSTANT_TOP5 if constant else [
                    w for w, _ in session.predict("".join(sentence[:i]), 5)]
                words += 1
                chars += len(word)
                if word in top:
                    hits += 1
                    chars_hit += len(word)
    return {"words": words, "hit@5": hits / max(words, 1), "char_coverage": chars_hit / max(chars, 1)}


def domain(model: str, texts: int, seed: int, history: str) -> dict:
    """Reviews scored by a newspaper model, before and after learning other reviews."""
    reviews = []
    for path, fmt in bundled_corpus()[1:]:
        reviews.extend(read_texts(path, fmt))
    reviews = list(dict.fromkeys(reviews))
    random.Random(seed).shuffle(reviews)
    learn, test = reviews[:texts], reviews[texts:2 * texts]
    Path(history).unlink(missing_ok=True)
    predictor = Predictor.load(model, history=history, threads=1)
    constant = _score(predictor, test, constant=True)
    before = _score(predictor, test)
    for text in learn:
        predictor.learn(text)
    after = _score(predictor, test)
    adapt_stats = predictor.adapt()  # fine-tune the network on the learned sentences too
    adapted = _score(predictor, test)
    predictor.forget()
    restored = _score(predictor, test)
    return {"learned_texts": len(learn), "test_texts": len(test), "constant_list": constant,
            "before": before, "after_counts": after, "after_counts_and_adapt": adapted,
            "adapt": adapt_stats, "after_forget": restored,
            "hit@5_gain_points_counts": round(100 * (after["hit@5"] - before["hit@5"]), 2),
            "hit@5_gain_points": round(100 * (adapted["hit@5"] - before["hit@5"]), 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=["fuzz", "pinyin", "domain"])
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--history", default="/tmp/ime-domain-history.json")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.check == "fuzz":
        result = fuzz(args.model, args.count, args.seed)
    elif args.check == "pinyin":
        result = pinyin(args.model, args.data_dir, min(args.count, 200), args.seed)
    else:
        result = domain(args.model, args.texts, args.seed, args.history)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
