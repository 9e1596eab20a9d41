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


def _fake_graph(n_tensors, inputs, outputs, variables=()):
    from types import SimpleNamespace
    tensors = [SimpleNamespace(is_variable=t in variables) for t in range(n_tensors)]
    return SimpleNamespace(inputs=list(inputs), outputs=list(outputs), tensors=tensors)


def _fake_node(kernel, inputs, outputs):
    from types import SimpleNamespace
    return SimpleNamespace(call=SimpleNamespace(kernel=kernel, inputs=inputs, outputs=outputs))


def test_dying_reshape_chain_shares_its_input_bytes():
    from edgeq.plan.planner import _alias_dying_copies
    # 0 -relu-> 1 -reshape-> 2 -reshape-> 3 -relu-> 4: 2 and 3 reuse 1's bytes
    nodes = [_fake_node("relu_f32", [0], [1]), _fake_node("copy_x", [1, 5], [2]),
             _fake_node("copy_x", [2], [3]), _fake_node("relu_f32", [3], [4])]
    lifetimes = {0: (-1, 4), 1: (0, 1), 2: (1, 2), 3: (2, 3), 4: (-1, 4)}
    alias = _alias_dying_copies(_fake_graph(6, [0], [4]), nodes, lifetimes)
    assert alias == {2: 1, 3: 1}
    assert lifetimes == {0: (-1, 4), 1: (0, 3), 4: (-1, 4)}


def test_reshape_keeps_own_bytes_when_input_lives_on_or_is_pinned():
    from edgeq.plan.planner import _alias_dying_copies
    # 1 is read again at step 2, so the reshape at step 1 must not overwrite it in place
    # (it would not, being a pure copy, but 2's lifetime would then have to be merged wrongly)
    nodes = [_fake_node("relu_f32", [0], [1]), _fake_node("copy_x", [1], [2]),
             _fake_node("add_f32", [1, 2], [3]), _fake_node("copy_x", [3], [4])]
    lifetimes = {0: (-1, 4), 1: (0, 2), 2: (1, 2), 3: (2, 3), 4: (-1, 4)}
    before = dict(lifetimes)
    # 4 is a graph output: the last reshape keeps its own bytes too
    assert _alias_dying_copies(_fake_graph(5, [0], [4]), nodes, lifetimes) == {}
    assert lifetimes == before
    # a graph input is never aliased either
    nodes = [_fake_node("copy_x", [0], [1]), _fake_node("relu_f32", [1], [2])]
    lifetimes = {0: (-1, 2), 1: (0, 1), 2: (-1, 2)}
    assert _alias_dying_copies(_fake_graph(3, [0], [2]), nodes, lifetimes) == {}
