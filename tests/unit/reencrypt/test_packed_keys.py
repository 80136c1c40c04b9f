"""The fresh objects of an ``--only-stale`` scan are kept packed: the same sorted
sequence as a list of strings, at less than half the memory."""

from __future__ import annotations

import random
import tracemalloc
from bisect import bisect_right

from secretkit.reencrypt.stale_scan import PackedKeys


def _packed(keys: list[str]) -> PackedKeys:
    packed = PackedKeys()
    for key in keys:
        packed.append(key)
    return packed.finish()


def test_it_behaves_as_the_sorted_list_of_its_keys() -> None:
    rng = random.Random(7)
    keys = [f"ns{rng.randrange(9)}/obj-{rng.randrange(10**6)}-é" for _ in range(2000)]
    for order in (sorted(keys), keys):  # key order, or two prefixes' keys interleaved
        packed = _packed(order)
        assert list(packed) == sorted(keys) and len(packed) == len(keys)
        assert packed[0] == min(keys) and packed[-1] == max(keys)
        for probe in [*rng.sample(keys, 50), "", "ns4/", "zzz"]:
            assert bisect_right(packed, probe) == bisect_right(sorted(keys), probe)
    assert _packed([]) == [] and len(_packed([])) == 0


def test_it_takes_less_than_half_the_memory_of_a_list_of_strings() -> None:
    def keys() -> list[str]:
        return [f"team-{i % 40}/secret-{i:07d}" for i in range(100_000)]

    def measure(build: object) -> int:
        tracemalloc.start()
        held = build() if callable(build) else None
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert held is not None
        return size

    as_list = measure(keys)
    packed = measure(lambda: _packed(keys()))  # the list is gone once packed
    assert packed * 2 < as_list, (packed, as_list)
