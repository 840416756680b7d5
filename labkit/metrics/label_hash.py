"""Prometheus's label-set hash, as ``limit_ratio`` uses it to pick a stable sample of series.

``limit_ratio(r, v)`` keeps a series when its label set's hash, scaled to
[0, 1], falls below ``r`` (or, for a negative ``r``, at or above ``1 + r``).
So which series a learner sees is decided by ``labels.Labels.Hash()`` of the
Prometheus that answers, and reproducing the selection means reproducing that
hash bit for bit.

Prometheus has two label-set representations selected by a Go build tag, and
they hash different bytes. Release binaries and the ``prom/prometheus`` image
(the one linkerd-viz 2.20 runs, v2.55.1) are built with ``-tags stringlabels``
(the project's ``.promu.yml``), where a label set is one string of
``uvarint(len(name)) name uvarint(len(value)) value`` per label, sorted by
name, and ``Hash()`` is xxHash64 (seed 0) of that string. A build without the
tag hashes ``name 0xff value 0xff …`` instead and so picks other series; that
variant is not modelled.
"""
from __future__ import annotations

__all__ = ["encode_labels", "label_set_hash", "ratio_offset", "in_ratio"]

#: float64(math.MaxUint64) in Go: 2**64 after rounding to the nearest double.
_MAX_UINT64 = float(2**64 - 1)


def _uvarint(n: int) -> bytes:
    """Go's ``binary.PutUvarint``: 7 bits per byte, low bits first, high bit set on all but the last."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def encode_labels(pairs) -> bytes:
    """The ``stringlabels`` bytes of a label set: ``pairs`` of (name, value), in any order."""
    out = bytearray()
    for name, value in sorted((n.encode(), v.encode()) for n, v in pairs):
        out += _uvarint(len(name)) + name + _uvarint(len(value)) + value
    return bytes(out)


def label_set_hash(pairs) -> int:
    """``labels.Labels.Hash()`` of a v2.55 release binary: xxHash64 (seed 0) of :func:`encode_labels`.

    ``pairs`` must include ``__name__`` if the series has one (Prometheus hashes
    the whole label set; labels with empty values do not exist in it).
    """
    import xxhash  # imported here: only limit_ratio needs it, and `import labkit` must stay fast

    return xxhash.xxh64_intdigest(encode_labels(pairs))


def ratio_offset(pairs) -> float:
    """The series' place in [0, 1] (``HashRatioSampler.sampleOffset``): hash / float64(MaxUint64)."""
    return float(label_set_hash(pairs)) / _MAX_UINT64


def in_ratio(ratio: float, offset: float) -> bool:
    """``AddRatioSample``: below ``ratio`` when ratio >= 0, else at or above ``1 + ratio``.

    So ``limit_ratio(r, v)`` and ``limit_ratio(r - 1, v)`` split ``v`` into two
    disjoint parts that together are all of it (up to the rounding of
    ``1 + (r - 1)``, which can differ from ``r`` in the last bit).
    """
    return (ratio >= 0 and offset < ratio) or (ratio < 0 and offset >= 1.0 + ratio)
