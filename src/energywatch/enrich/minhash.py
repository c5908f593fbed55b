"""MinHash signatures, bit for bit as datasketch 2.0 computes them with `scheme="affine32"`.

datasketch's package imports its LSH classes, and with them SciPy (113 MB, ~0.3 s of CPU per
process: every Airflow task and every fork server paid it) for the one class we use. Band keys are
stored with each document, so a replacement must give the very same values or every story grouped
before an upgrade would stop matching; tests/enrich/test_minhash.py compares both on real text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

_U32 = np.uint32
# MurmurHash3's 32-bit finalizer, applied once to each input hash before the affine permutations
_FMIX = (_U32(16), _U32(0x85EBCA6B), _U32(13), _U32(0xC2B2AE35), _U32(16))


def permutations(num_perm: int, seed: int) -> np.ndarray:
    """The (a, b) parameters of the affine permutations h → a·h + b mod 2³², as datasketch draws them."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=_U32) * _U32(2) + _U32(1)  # odd: a bijection
    b = gen.randint(0, 1 << 32, num_perm, dtype=_U32)
    return np.array([a, b])


def _fmix(hv: np.ndarray) -> np.ndarray:
    s1, m1, s2, m2, s3 = _FMIX
    hv = hv ^ (hv >> s1)
    hv = hv * m1
    hv = hv ^ (hv >> s2)
    hv = hv * m2
    return hv ^ (hv >> s3)


def minhash(values: Iterable[bytes], perms: np.ndarray, hashfunc: Callable[[bytes], int]) -> np.ndarray:
    """The signature of a set of byte strings: the minimum of each permutation over their hashes."""
    a, b = perms
    signature = np.full(a.shape[0], np.iinfo(_U32).max, dtype=_U32)
    hashes = np.fromiter(map(hashfunc, values), dtype=_U32).reshape(-1, 1)
    if hashes.size:
        # uint32 arithmetic wraps: that wraparound is the modulo 2^32 of the permutation
        signature = np.minimum(signature, (_fmix(hashes) * a + b).min(axis=0))
    return signature


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the two sets behind two signatures."""
    return float(np.count_nonzero(a == b)) / float(len(a))
