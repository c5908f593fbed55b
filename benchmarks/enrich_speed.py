"""Enrichment speed: relevance + entities + near-duplicate signature of a 1,000-word article, one core.

    .venv/bin/python benchmarks/enrich_speed.py [--repeat 50]

Articles are built from the real texts of ../shared/eval/relevance_dev.jsonl (the first 1,000
words of each language's texts, joined). Language detection is excluded, as the target says.
Prints milliseconds per article per language (best of three rounds) and the ratio to the 5 ms budget.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

SHARED = Path(os.environ.get("ENERGYWATCH_SHARED", Path(__file__).resolve().parents[2] / "shared"))
BUDGET_MS = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--words", type=int, default=1000)
    args = parser.parse_args()
    dev = SHARED / "eval" / "relevance_dev.jsonl"
    if not dev.exists():
        sys.exit(f"{dev} is missing: this benchmark needs ../shared (or ENERGYWATCH_SHARED)")
    from energywatch.enrich import enrich

    rows = [json.loads(line) for line in dev.read_text(encoding="utf-8").splitlines() if line.strip()]
    print(f"enrichment of a {args.words}-word article (relevance + entities + MinHash signature), one core")
    for lang in ("en", "ru", "ar", "uk", "tr", "de"):
        words = " ".join(r["text"] for r in rows if r["lang"] == lang).split()[: args.words]
        if len(words) < args.words // 2:
            continue
        article = " ".join(words)
        enrich("warm-up", article, lang)  # compiles the language's matcher once, as a worker does
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for _ in range(args.repeat):
                enrich("", article, lang)
            best = min(best, (time.perf_counter() - started) / args.repeat * 1000)
        print(f"  {lang}: {len(words):5d} words  {best:6.2f} ms  ({best / BUDGET_MS:.2f} of the {BUDGET_MS:.0f} ms budget)")


if __name__ == "__main__":
    main()
