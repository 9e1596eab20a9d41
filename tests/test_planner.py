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


def _first_fit_in_python(sizes, lifetimes):
    """The planner as it was written in Python before kernels/core/arena.c: largest first,
    each at the lowest offset clear of every placed block whose lifetime overlaps its own."""
    order = sorted(sizes, key=lambda k: (-sizes[k], lifetimes[k][0]))
    placed, offsets, total = [], {}, 0
    for key in order:
        size = -(-max(sizes[key], 1) // ALIGN) * ALIGN
        first, last = lifetimes[key]
        offset = 0
        for o, e in sorted((offsets[p], offsets[p] + s) for p, s in placed
                           if overlaps(lifetimes[p], (first, last))):
            if offset + size <= o:
                break
            offset = max(offset, e)
        offsets[key] = offset
        placed.append((key, size))
        total = max(total, offset + size)
    return offsets, total


def test_compiled_planner_is_never_above_the_python_first_fit():
    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 60))
        sizes = {k: int(rng.integers(0, 9000)) for k in range(n)}
        firsts = {k: int(rng.integers(-1, 40)) for k in range(n)}
        lifetimes = {k: (firsts[k], firsts[k] + int(rng.integers(0, 10))) for k in range(n)}
        want_offsets, want_total = _first_fit_in_python(sizes, lifetimes)
        offsets, total = plan_arena(sizes, lifetimes)
        assert total <= want_total, trial
        if total == want_total:  # a tie keeps the first-fit layout, offset for offset
            assert offsets == want_offsets, trial


def test_best_fit_takes_the_smallest_gap():
    from edgeq.runtime.executor import plan_arena_layout

    # Placed in this order: A [0, 128) and C [192, 256) die at step 0, B and D live on, so step 2
    # sees gaps of 128 and 64 bytes. E (64) goes to the smaller one under best fit, which
    # leaves the 128-byte gap for F; first fit puts E at 0 and F on top.
    sizes = [128, 64, 64, 64, 64, 128]
    firsts = [0, 0, 0, 0, 2, 2]
    lasts = [0, 2, 0, 2, 2, 2]
    order = list(range(6))
    first, first_total = plan_arena_layout(sizes, firsts, lasts, order, False)
    best, best_total = plan_arena_layout(sizes, firsts, lasts, order, True)
    assert first == [0, 128, 192, 256, 0, 320] and first_total == 448
    assert best == [0, 128, 192, 256, 192, 0] and best_total == 320


def test_layout_refuses_bad_order():
    import pytest

    from edgeq.runtime.executor import plan_arena_layout

    with pytest.raises(ValueError, match="order names block 3 of 2"):
        plan_arena_layout([64, 64], [0, 0], [1, 1], [0, 3], False)
    with pytest.raises(ValueError, match="differ in length"):
        plan_arena_layout([64, 64], [0], [1, 1], [0, 1], True)


# Arena bytes of shared models under the Python first-fit planner (main at 0c6d240, fp32 and
# fp16 storage): the compiled planner must not need more.
_ARENA_BEFORE = {
    "mobilenet_v2.fp32.tflite": (6670272, 4003776),
    "palm_detection_lite.tflite": (4134528, 2610816),
    "selfie_segmentation.tflite": (4325376, 3932160),
    "hand_landmark_lite.tflite": (4846208, 2968192),
}


def test_shared_model_arenas_are_no_larger_than_before():
    import pytest

    import edgeq
    from harness import shared_model

    for name, before in _ARENA_BEFORE.items():
        path = shared_model(name)
        if not path.exists():
            pytest.skip(f"{path} is absent")
        for precision, limit in zip(("fp32", "fp16"), before):
            it = edgeq.Interpreter(model_path=str(path), precision=precision)
            it.allocate_tensors()
            assert it._get_plan().arena_bytes <= limit, (name, precision)
