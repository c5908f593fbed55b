"""Peak memory and time of parsing one huge feed: 20,000 entries, with the per-feed entry cap.

    .venv/bin/python benchmarks/feed_memory.py [--entries 20000] [--max-items 500]

Parses the feed in this process, as a worker does, and prints the entries kept and dropped, the peak
resident memory beside the process's peak before, and the time.
"""

from __future__ import annotations

import argparse
import resource
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--max-items", type=int, default=None, help="default: the setting's default")
    args = parser.parse_args()

    from energywatch.config import Settings
    from energywatch.feeds import parse_feed
    from energywatch.models import Feed

    cap = args.max_items or Settings.model_fields["max_items_per_feed"].default
    items = "".join(
        f"<item><title>Story {i} on gas transit</title><link>https://news.example/{i}</link><guid>g{i}</guid>"
        f"<description>Summary {i} of the story about the pipeline and the grid operator.</description>"
        "<pubDate>Mon, 02 Nov 2026 08:00:00 GMT</pubDate></item>" for i in range(args.entries))
    body = (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title>{items}'
            "</channel></rss>").encode()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    feed = Feed(id="big", name="Big", url="https://news.example/feed")
    parsed = parse_feed(feed, body, url=feed.url, max_items=cap)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"feed {len(body) / 1e6:.1f} MB, {args.entries:,} entries: kept {len(parsed.items):,} "
          f"(max_items_per_feed {cap:,}), dropped {sum(parsed.dropped.values()):,}; "
          f"peak {peak:,.0f} MiB (before the feed {before:,.0f} MiB), {seconds:.1f} s")


if __name__ == "__main__":
    main()
