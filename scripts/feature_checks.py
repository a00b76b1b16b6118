"""Measurements behind the closing notes, reproducible from the command line.

    python scripts/feature_checks.py fuzz --model models/default --count 100000
    python scripts/feature_checks.py pinyin --model models/default --data-dir data/processed
    python scripts/feature_checks.py domain --model models/news --texts 500
    python scripts/feature_checks.py extract MANUAL/*.html > docs.txt
    python scripts/feature_checks.py engines --text-file docs.txt --libime-helper ./libime_top

``fuzz``    random prefixes (any Unicode, long ones too) through predict and a
            session: counts, exceptions, slowest call.
``pinyin``  200 random test-split words: how often the true word is in the top 5
            with its initials typed, against without.
``domain``  a model trained on the newspaper half, scored on product reviews (a
            domain it never saw): hit@5 on words with a Han character and the
            share of their characters covered by top-5 hits; then again after
            ``learn()`` on other reviews (the count model), after ``adapt()``
            (the network fine-tuned on them too), and after ``forget()``;
            ``--text-file`` replays another domain's texts instead.
``engines`` the constant list 的 了 是 在 和, our engine and fcitx5's libime
            (``--libime-helper``: scripts/libime_top.cpp, built as the README
            says) on the same replay of a text file or the test split's tokens.
``extract`` the Chinese paragraphs of HTML manuals, one per line (a domain
            in neither split: Debian's zh-CN documentation, say).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from input_method import Predictor
from input_method.corpus import bundled_corpus, clean_text, read_texts
from input_method.neighbours import default_cache_dir
from input_method.pinyin import readings_of
from input_method.segment import HAN


def fuzz(model: str, count: int, seed: int) -> dict:
    """Random prefixes through predict and a session; exceptions are counted, not raised."""
    rng = random.Random(seed)
    predictor = Predictor.load(model, threads=1, cache_dir=default_cache_dir())
    predictor.wait_until_ready()  # measure the settled engine
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


def _token_sentences(path: Path) -> list[list[str]]:
    """A ``*.tokens.txt`` file: one segmented sentence per line, words split by spaces."""
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def pinyin(model: str, data_dir: str, count: int, seed: int) -> dict:
    """Top-5 hit rate of random test words with and without their initials typed."""
    predictor = Predictor.load(model, threads=1, cache_dir=default_cache_dir())
    predictor.wait_until_ready()  # measure the settled engine
    sentences = _token_sentences(Path(data_dir) / "test.tokens.txt")
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


def _sentences(predictor: Predictor, texts: list[str]) -> list[list[str]]:
    """Texts cut into sentences of words, as the engine segments them."""
    return [sentence for text in texts for sentence in predictor.segmenter.sentences(clean_text(text))]


# A replay asks ``start()`` for a fresh suggester at each sentence, then the
# suggester for a top 5 before each target, given the sentence's words so far.
Suggester = Callable[[list[str]], list[str]]


def _replay(sentences: list[list[str]], start: Callable[[], Suggester],
            learn: Callable[[list[str]], None] | None = None) -> dict:
    """Replay sentences word by word: hit@5 and character coverage on words with a Han character.

    ``learn``, when given, is told each sentence once it has been typed, as
    the suggestion box hands every finished sentence to its engine.
    """
    hits = words = chars = chars_hit = 0
    # By the target's length in characters (4: four or more): where the misses are.
    by_length: dict[int, list[int]] = {}
    for sentence in sentences:
        suggest = start()
        for i, word in enumerate(sentence):
            if not HAN.search(word):
                continue
            top = suggest(sentence[:i])
            words += 1
            chars += len(word)
            band = by_length.setdefault(min(len(word), 4), [0, 0])
            band[0] += 1
            if word in top:
                hits += 1
                chars_hit += len(word)
                band[1] += 1
        if learn is not None:
            learn(sentence)
    return {"words": words, "hit@5": hits / max(words, 1), "char_coverage": chars_hit / max(chars, 1),
            "by_length": {str(n): {"share": round(count / words, 4), "hit@5": round(hit / count, 4)}
                          for n, (count, hit) in sorted(by_length.items())}}


def _engine(predictor: Predictor) -> Callable[[], Suggester]:
    """Our engine as a typist meets it: one session per sentence, the sentence so far as prefix."""
    def start() -> Suggester:
        session = predictor.session()
        return lambda words: [w for w, _ in session.predict("".join(words), 5)]
    return start


def _constant() -> Suggester:
    return lambda words: CONSTANT_TOP5


def _score(predictor: Predictor, texts: list[str], constant: bool = False) -> dict:
    """The replay of ``texts`` by the engine, or by ``CONSTANT_TOP5`` when ``constant``."""
    return _replay(_sentences(predictor, texts), _constant if constant else _engine(predictor))


def _libime(helper: str, model: str, sentences: list[list[str]],
            online: bool = False) -> Callable[[], Suggester]:
    """fcitx5's libime prediction for every target of the replay, asked in one batch.

    ``helper`` is ``scripts/libime_top.cpp`` built against Debian's libime (see
    the README): one prefix per line in (its words joined by tabs), libime's
    top 5 per line out. The answers are handed out in the replay's order.
    ``online``: each sentence, once typed, goes to libime's user history too
    (a line starting with ``+``), as fcitx5 learns what is committed.
    """
    requests, prefixes = [], 0
    for sentence in sentences:
        for i, word in enumerate(sentence):
            if HAN.search(word):
                requests.append("\t".join(sentence[:i]) + "\n")
                prefixes += 1
        if online:
            requests.append("+\t" + "\t".join(sentence) + "\n")
    lines = subprocess.run([helper, model, "5"], input="".join(requests), capture_output=True,
                           text=True, check=True).stdout.split("\n")[:prefixes]
    if len(lines) != prefixes:
        raise RuntimeError(f"libime helper answered {len(lines)} of {prefixes} prefixes")
    answers = iter([line.split("\t") if line else [] for line in lines])
    return lambda: lambda words: next(answers)


def engines(model: str, text_file: str | None, tokens_file: str | None,
            libime_helper: str | None, libime_model: str | None, online: bool = False,
            network_only: bool = False) -> dict:
    """The constant list, our engine and (when built) libime on the same replay.

    ``text_file``: one text per line, segmented by the engine's jieba;
    ``tokens_file``: one sentence per line, words split by spaces (the test
    split's ``test.tokens.txt``). ``online``: both engines learn each sentence
    once it is typed, from an empty history (kept in memory), as in use.
    ``network_only``: the model's network alone, its trigram and memories left out
    (to compare networks as networks).
    """
    predictor = Predictor.load(model, threads=1, cache_dir=default_cache_dir())
    if network_only:
        predictor.ngram, predictor.ngram_weight, predictor.neighbours = None, 0.0, None
    predictor.wait_until_ready()  # measure the settled engine
    if tokens_file:
        sentences = _token_sentences(Path(tokens_file))
    else:
        sentences = _sentences(predictor, list(read_texts(Path(text_file), "text")))
    learn = (lambda sentence: predictor.learn("".join(sentence))) if online else None
    targets = [word for sentence in sentences for word in sentence if HAN.search(word)]
    result = {"sentences": len(sentences), "online": online,
              # targets outside the network's vocabulary: only learning can suggest them
              "out_of_vocabulary": round(sum(w not in predictor.vocab for w in targets)
                                         / max(len(targets), 1), 4),
              "constant_list": _replay(sentences, _constant),
              "engine": _replay(sentences, _engine(predictor), learn)}
    if libime_helper:
        result["libime"] = _replay(sentences, _libime(libime_helper, libime_model, sentences, online))
    return result


class _Paragraphs(HTMLParser):
    """Collects the text of every <p> element."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._parts: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "p":
            self._parts = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._parts is not None:
            self.paragraphs.append("".join(self._parts))
            self._parts = None

    def handle_data(self, data: str) -> None:
        if self._parts is not None:
            self._parts.append(data)


def extract(paths: list[str]) -> list[str]:
    """Chinese paragraphs of HTML manuals, one line each, deduplicated.

    Wrapped lines are joined without a space between Chinese characters; a
    paragraph is kept when at least half its non-space characters are Han.
    """
    wide = "\u3000-\u9fff\uff00-\uffef"
    kept = []
    for path in sorted(paths):
        parser = _Paragraphs()
        parser.feed(Path(path).read_text(encoding="utf-8", errors="replace"))
        for paragraph in parser.paragraphs:
            text = re.sub(rf"(?<=[{wide}])\s*\n\s*(?=[{wide}])", "", paragraph.strip())
            text = re.sub(r"\s+", " ", text)
            if len(text) >= 10 and len(HAN.findall(text)) >= 0.5 * len(text.replace(" ", "")):
                kept.append(text)
    return list(dict.fromkeys(kept))


def domain(model: str, texts: int, seed: int, history: str, text_file: str | None = None) -> dict:
    """Texts of another domain scored by a model, before and after learning others of them.

    The texts are the bundled reviews, or ``text_file`` (one text per line).
    """
    if text_file:
        pool = list(read_texts(Path(text_file), "text"))
    else:
        pool = []
        for path, fmt in bundled_corpus()[1:]:
            pool.extend(read_texts(path, fmt))
    pool = list(dict.fromkeys(pool))
    random.Random(seed).shuffle(pool)
    learn, test = pool[:texts], pool[texts:2 * texts]
    Path(history).unlink(missing_ok=True)
    predictor = Predictor.load(model, history=history, threads=1, cache_dir=default_cache_dir())
    predictor.wait_until_ready()  # measure the settled engine
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
    parser.add_argument("check", choices=["fuzz", "pinyin", "domain", "engines", "extract"])
    parser.add_argument("paths", nargs="*", help="extract: the HTML files")
    parser.add_argument("--model", default="models/default")
    parser.add_argument("--data-dir", default="data/processed")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--history", default="/tmp/ime-domain-history.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--text-file", help="domain, engines: one text per line")
    parser.add_argument("--tokens-file", help="engines: one segmented sentence per line")
    parser.add_argument("--libime-helper", help="engines: scripts/libime_top.cpp, built")
    parser.add_argument("--libime-model", default="/usr/lib/x86_64-linux-gnu/libime/zh_CN.lm")
    parser.add_argument("--online", action="store_true",
                        help="engines: learn each sentence once typed, as the suggestion box does")
    parser.add_argument("--network-only", action="store_true",
                        help="engines: the network alone, without the model's trigram and memories")
    args = parser.parse_args(argv)
    if args.check == "extract":
        print("\n".join(extract(args.paths)))
        return 0
    if args.check == "engines" and not (args.text_file or args.tokens_file):
        parser.error("engines needs --text-file or --tokens-file")
    if args.check == "fuzz":
        result = fuzz(args.model, args.count, args.seed)
    elif args.check == "pinyin":
        result = pinyin(args.model, args.data_dir, min(args.count, 200), args.seed)
    elif args.check == "engines":
        result = engines(args.model, args.text_file, args.tokens_file,
                         args.libime_helper, args.libime_model, args.online,
                         args.network_only)
    else:
        result = domain(args.model, args.texts, args.seed, args.history, args.text_file)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
