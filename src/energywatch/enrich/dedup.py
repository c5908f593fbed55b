"""Near-duplicate grouping: MinHash over word shingles, LSH band keys kept in the store.

The band keys are stored with each document (`lsh_bands`), so candidates are found with an
ordinary terms query in either backend: no in-memory LSH index that each worker would have to
rebuild, and many Airflow workers share one view of which story a document belongs to.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from energywatch.analysis import normalize, tokenize
from energywatch.models import Document

if TYPE_CHECKING:
    import numpy as np

NUM_PERM = 128
BANDS, ROWS = 32, 4            # 32 × 4 = 128; pairs above ~0.42 Jaccard usually share a band
SHINGLE = 3                     # word 3-grams
SAME_STORY = 0.5                # estimated Jaccard at or above which two texts tell one story
MIN_TOKENS = 25                 # shorter texts (a feed summary) are too short to compare by shingles
_SEED = 1


@dataclass(frozen=True)
class Signature:
    """What grouping needs of a text: an exact-content hash and LSH band keys (empty when too short)."""

    content_hash: str
    bands: tuple[str, ...]


@cache
def permutations() -> np.ndarray:
    """datasketch 2.0's "affine32" permutations, which the stored band keys were made with (minhash.py)."""
    from energywatch.enrich import minhash as mh

    return mh.permutations(NUM_PERM, _SEED)


def _tokens(title: str, text: str) -> list[str]:
    return tokenize(normalize(f"{title}\n{text}"))


def _minhash(tokens: list[str]) -> np.ndarray:
    # numpy (and OpenBLAS's threads, ~0.1 s of CPU) only where signatures are made or compared: the
    # process that stores documents imports this module but seldom compares
    from energywatch.enrich import minhash as mh

    if len(tokens) >= SHINGLE:  # map/zip rather than a comprehension: a third less time per article
        shingles = set(map(" ".join, zip(*(tokens[i:] for i in range(SHINGLE)))))
    else:
        shingles = {" ".join(tokens)}
    # crc32: stable across processes (band keys are stored) and much cheaper than the default sha1
    return mh.minhash(map(str.encode, shingles), permutations(), zlib.crc32)


def signature(title: str, text: str) -> Signature:
    """Content hash of the normalised text and its MinHash LSH band keys."""
    return signature_from_tokens(tokenize(normalize(title)), tokenize(normalize(text)))


def signature_from_tokens(title_tokens: list[str], body: list[str]) -> Signature:
    """The same, from tokens already normalised (enrichment has them at hand)."""
    tokens = title_tokens + body
    # the body alone: a re-post under another headline is still the same article
    content_hash = hashlib.blake2b(" ".join(body or tokens).encode("utf-8"), digest_size=16).hexdigest()
    if len(tokens) < MIN_TOKENS:
        return Signature(content_hash, ())
    values = _minhash(tokens)
    bands = []
    for band in range(BANDS):
        chunk = values[band * ROWS:(band + 1) * ROWS].tobytes()
        bands.append(f"{band}:{hashlib.blake2b(chunk, digest_size=8).hexdigest()}")
    return Signature(content_hash, tuple(bands))


def similarity(a: Document, b: Document) -> float:
    """Estimated Jaccard similarity of two documents' shingle sets."""
    from energywatch.enrich.minhash import jaccard

    return jaccard(_minhash(_tokens(a.title, a.text)), _minhash(_tokens(b.title, b.text)))


@dataclass(frozen=True)
class Grouping:
    """Where a document belongs: its story, and the document it exactly repeats (if any)."""

    story_id: str
    duplicate_of: str | None
    similarity: float | None = None


# a candidate this similar is taken at once: the ones after it share fewer band keys
SURE = 0.9


def group(document: Document, exact: Document | None, candidates: Iterable[Document]) -> Grouping:
    """Decide a document's story from an exact-content match and LSH candidates (itself excluded).

    Candidates come best first (most band keys shared): the document's own signature is computed
    once, and the comparison stops at the first candidate that is surely the same story."""
    if exact is not None and exact.id != document.id:
        return Grouping(story_id=exact.story_id or exact.id, duplicate_of=exact.id, similarity=1.0)
    from energywatch.enrich.minhash import jaccard

    own = None
    best: tuple[float, Document] | None = None
    for candidate in candidates:
        if candidate.id == document.id:
            continue
        if own is None:
            own = _minhash(_tokens(document.title, document.text))
        score = jaccard(own, _minhash(_tokens(candidate.title, candidate.text)))
        if score >= SAME_STORY and (best is None or score > best[0]):
            best = (score, candidate)
            if score >= SURE:
                break
    if best is None:
        return Grouping(story_id=document.id, duplicate_of=None)
    return Grouping(story_id=best[1].story_id or best[1].id, duplicate_of=None, similarity=round(best[0], 3))


def shares_band(a: Sequence[str], b: Sequence[str]) -> bool:
    """Whether two band-key lists have a key in common."""
    return not set(a).isdisjoint(b)
