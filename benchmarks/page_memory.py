"""Peak memory of one worker on the worst page the caps let through: 8 MB of unique words.

    .venv/bin/python benchmarks/page_memory.py [--max-text-chars N] [--mb 8]

A fresh process builds the page (random unique words in paragraphs, as much as max_page_bytes
allows), then runs the pipeline's worker function on it (extraction, language, enrichment) and
prints its peak resident memory, beside the same process's peak before the page was handled.
"""

from __future__ import annotations

import argparse
import random
import resource
import string
import time
from datetime import datetime, timezone


def page(megabytes: float, seed: int = 3) -> bytes:
    """An article page of unique words: nothing for the extractor or the enrichment to share."""
    rng = random.Random(seed)
    paragraphs, size = [], 0
    while size < megabytes * 1024 * 1024:
        words = " ".join("".join(rng.choices(string.ascii_lowercase, k=rng.randint(5, 11))) for _ in range(120))
        paragraph = f"<p>{words}.</p>"
        paragraphs.append(paragraph)
        size += len(paragraph)
    return ("<!doctype html><html lang=en><head><title>Unique words</title></head><body><article><h1>Unique</h1>"
            + "".join(paragraphs) + "</article></body></html>").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=8.0)
    parser.add_argument("--max-text-chars", type=int, default=None, help="default: the setting's default")
    args = parser.parse_args()

    from energywatch.config import Settings
    from energywatch.models import FeedItem
    from energywatch.pipeline import PageJob, build_document

    limit = args.max_text_chars or Settings.model_fields["max_text_chars"].default
    html = page(args.mb)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    item = FeedItem(feed_id="m", source="m", url="https://m.example/a", canonical_url="https://m.example/a",
                    doc_id="m")
    job = PageJob(item=item, html=html, final_url=item.url, charset="utf-8", fetched_at=datetime.now(timezone.utc),
                  fallback_reason=None, min_text_chars=200, languages=(), language_sample_chars=600,
                  max_text_chars=limit)
    t0 = time.perf_counter()
    document, _ = build_document(job)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"page {len(html) / 1e6:.1f} MB, text kept {len(document.text):,} chars (max_text_chars {limit:,}): "
          f"peak {peak:,.0f} MiB (before the page {before:,.0f} MiB), {seconds:.1f} s")


if __name__ == "__main__":
    main()
