"""The arena planner: tensors alive at the same time never share bytes, and reuse happens."""
import numpy as np

from edgeq.plan.planner import ALIGN, plan_arena


def overlaps(a, b):
    return not (a[1] < b[0] or b[1] < a[0])


def test_random_lifetimes_never_share_live_bytes():
    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 40))
        sizes, lifetimes = {}, {}
        for k in range(n):
            first = int(rng.integers(-1, 30))
            sizes[k] = int(rng.integers(0, 5000))
            lifetimes[k] = (first, first + int(rng.integers(0, 8)))
        offsets, total = plan_arena(sizes, lifetimes)
        for a in range(n):
            assert offsets[a] % ALIGN == 0
            assert offsets[a] + sizes[a] <= total
            for b in range(a + 1, n):
                if overlaps(lifetimes[a], lifetimes[b]) and sizes[a] and sizes[b]:
                    ea, eb = offsets[a] + sizes[a], offsets[b] + sizes[b]
                    assert ea <= offsets[b] or eb <= offsets[a], (trial, a, b)


def test_chain_reuses_memory():
    # A chain x0 -> x1 -> ... : only neighbours are alive together, so two slots suffice.
    sizes = {k: 1000 for k in range(10)}
    lifetimes = {k: (k, k + 1) for k in range(10)}
    _, total = plan_arena(sizes, lifetimes)
    assert total <= 2 * 1024
