"""Our MinHash gives datasketch's values bit for bit: stored band keys keep their meaning."""

from __future__ import annotations

import gzip
import zlib

import numpy as np
import pytest
from datasketch import MinHash

from conftest import shared_path
from energywatch.analysis import normalize, tokenize
from energywatch.enrich import dedup
from energywatch.enrich import minhash as mh


def _shingles(text: str) -> list[bytes]:
    tokens = tokenize(normalize(text))
    return [" ".join(tokens[i:i + 3]).encode() for i in range(max(1, len(tokens) - 2))]


def _reference(shingles: list[bytes], num_perm: int = 128, seed: int = 1) -> np.ndarray:
    sketch = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32, scheme="affine32")
    sketch.update_batch(shingles)
    return sketch.hashvalues


def test_permutations_are_datasketchs() -> None:
    for seed in (1, 7, 12345):
        assert np.array_equal(mh.permutations(128, seed), MinHash(num_perm=128, seed=seed,
                                                                  scheme="affine32").permutations)


def test_signatures_and_similarity_equal_datasketch_on_real_text() -> None:
    seeds = sorted(shared_path("seeds").glob("*"))
    pages = sorted(shared_path("corpus", "aeb", "html").glob("*.gz"))[:150]
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in seeds]
    texts += [gzip.decompress(p.read_bytes()).decode("utf-8", errors="replace") for p in pages]
    assert len(texts) > 100
    previous = None
    for text in texts:
        shingles = _shingles(text)
        ours = mh.minhash(shingles, dedup.permutations(), zlib.crc32)
        reference = _reference(shingles)
        assert ours.dtype == reference.dtype and np.array_equal(ours, reference)
        if previous is not None:
            theirs = MinHash(num_perm=128, seed=1, scheme="affine32", hashvalues=reference)
            other = MinHash(num_perm=128, seed=1, scheme="affine32", hashvalues=previous[1])
            assert mh.jaccard(ours, previous[0]) == theirs.jaccard(other)
        previous = (ours, reference)


@pytest.mark.parametrize("values", [[], [b"one"], [b"x"] * 5])
def test_empty_and_tiny_sets(values: list[bytes]) -> None:
    assert np.array_equal(mh.minhash(values, dedup.permutations(), zlib.crc32), _reference(values))
