"""What one key press costs the GUI: words alone, and words with two phrases.

    python scripts/phrase_latency.py [--model models/default]

Types four sentences word by word through one TypingSession, calling what the
GUI's worker calls (``gui.engine.suggest``), and prints p50 / p90 / max in ms.
A benchmark, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

from gui.engine import suggest
from input_method import Predictor
from input_method.neighbours import default_cache_dir

TEXTS = ["我今天去北京参加一个会议，讨论中国经济的发展问题", "这本书的质量很好，物流也很快，下次还会再来买的",
         "人民日报记者报道，新年前夕各地群众纷纷举行活动", "酒店的位置不错，但是房间有点小，服务态度一般"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)
    predictor = Predictor.load(args.model, threads=1, cache_dir=default_cache_dir())
    predictor.wait_until_ready()  # measure the settled engine
    for phrases in (0, 2):
        session, times = predictor.session(), []
        for text in TEXTS:
            prefix = ""
            for word in predictor.tokenize(text)[1:]:
                prefix += word
                started = time.perf_counter()
                suggest(session, prefix, "", 5, phrases)
                times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"phrases={phrases}: p50 {times[len(times) // 2]:.2f} ms, "
              f"p90 {times[int(len(times) * 0.9)]:.2f} ms, max {times[-1]:.2f} ms, "
              f"{len(times)} key presses")
    return 0


if __name__ == "__main__":
    sys.exit(main())
