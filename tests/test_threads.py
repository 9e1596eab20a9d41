"""The thread pool: results independent of the thread count, and plans with pools that come and
go (interpreters created and dropped) neither hang nor leak threads."""
import threading

import numpy as np

import edgeq
from edgeq.tflite.schema import BuiltinOp
from edgeq.tflite.writer import ModelBuilder


def conv_model(h=37, w=29, cin=8, cout=16):
    rng = np.random.default_rng(1)
    b = ModelBuilder()
    x = b.add_tensor("x", [2, h, w, cin], np.float32)
    f = b.add_tensor("f", [cout, 3, 3, cin], np.float32,
                     data=rng.standard_normal((cout, 3, 3, cin)).astype(np.float32))
    y = b.add_tensor("y", [], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, f, -1], [y],
                   options={"padding": 0, "stride_h": 1, "stride_w": 1})
    d = b.add_tensor("dw", [1, 3, 3, cout], np.float32,
                     data=rng.standard_normal((1, 3, 3, cout)).astype(np.float32))
    z = b.add_tensor("z", [], np.float32)
    b.add_operator(BuiltinOp.DEPTHWISE_CONV_2D, [y, d, -1], [z],
                   options={"padding": 1, "stride_h": 2, "stride_w": 2, "depth_multiplier": 1})
    b.set_inputs([x])
    b.set_outputs([z])
    return b.build()


def run(model, threads, x):
    it = edgeq.Interpreter(model_content=model, num_threads=threads)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_thread_count_never_changes_results():
    model = conv_model()
    x = np.random.default_rng(2).standard_normal((2, 37, 29, 8)).astype(np.float32)
    one = run(model, 1, x)
    for threads in (2, 3, 5):
        np.testing.assert_array_equal(run(model, threads, x), one)


def test_pools_come_and_go():
    model = conv_model(9, 7, 4, 4)
    x = np.ones((2, 9, 7, 4), np.float32)
    before = threading.active_count()
    expected = run(model, 1, x)
    for _ in range(300):  # each plan's first job races its freshly started workers
        np.testing.assert_array_equal(run(model, 3, x), expected)
    # Worker threads are native (not Python threads); this checks nothing Python-side leaks,
    # and the loop above would hang if a pool failed to wake or to stop.
    assert threading.active_count() == before


def test_default_thread_count_is_the_boards():
    from edgeq.board import detect_board

    it = edgeq.Interpreter(model_content=conv_model(5, 5, 2, 2))
    assert it.num_threads == detect_board().default_threads
    assert edgeq.Interpreter(model_content=conv_model(5, 5, 2, 2), num_threads=-1).num_threads \
        == it.num_threads


def fast_path_model(h=40, w=37, cin=13, cout=37):
    """Every optimized float path: 1x1 GEMM, indirect GEMM 3x3 stride 2, depthwise 5x5 (row
    interior and border pixels), FULLY_CONNECTED on the flattened result; each layer large
    enough to be split across threads."""
    rng = np.random.default_rng(3)
    b = ModelBuilder()

    def const(name, shape):
        return b.add_tensor(name, list(shape), np.float32,
                            data=rng.standard_normal(shape).astype(np.float32))

    x = b.add_tensor("x", [1, h, w, cin], np.float32)
    y1 = b.add_tensor("y1", [], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [x, const("f1", (cout, 1, 1, cin)), const("b1", (cout,))],
                   [y1], options={"padding": 0, "stride_h": 1, "stride_w": 1,
                                  "fused_activation_function": 3})
    y2 = b.add_tensor("y2", [], np.float32)
    b.add_operator(BuiltinOp.CONV_2D, [y1, const("f2", (cout, 3, 3, cout)), -1], [y2],
                   options={"padding": 0, "stride_h": 2, "stride_w": 2})
    y3 = b.add_tensor("y3", [], np.float32)
    b.add_operator(BuiltinOp.DEPTHWISE_CONV_2D, [y2, const("dw", (1, 5, 5, cout)),
                                                 const("b3", (cout,))], [y3],
                   options={"padding": 0, "stride_h": 1, "stride_w": 1, "depth_multiplier": 1})
    flat = ((h + 1) // 2) * ((w + 1) // 2) * cout
    y4 = b.add_tensor("y4", [], np.float32)
    b.add_operator(BuiltinOp.FULLY_CONNECTED, [y3, const("fc", (41, flat)), const("b4", (41,))],
                   [y4], options={})
    b.set_inputs([x])
    b.set_outputs([y4])
    return b.build(), (1, h, w, cin)


def test_fast_kernels_give_the_same_bits_for_any_thread_count():
    model, shape = fast_path_model()
    it = edgeq.Interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    kernels = set(it._get_plan().compiled.kernel_of_node)
    assert {"conv2d_f32_gemm", "conv2d_f32_igemm", "depthwise_conv2d_f32_dw",
            "fully_connected_f32_gemm"} <= kernels
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    one = run(model, 1, x)
    for threads in (2, 3, 4):
        np.testing.assert_array_equal(run(model, threads, x), one)


# (n, grain, busy work per item): tiny jobs (inline or a chunk or two), jobs just above their
# grain, uneven tails, and large ones that every thread takes part in.
STRESS_JOBS = [(1, 1, 0), (2, 1, 0), (3, 1, 0), (5, 4, 0), (17, 16, 0), (33, 1, 0),
               (100, 7, 3), (1000, 1, 0), (4097, 3, 1), (20000, 1, 0), (3000, 1, 40)]


def test_pool_visits_every_item_once_from_two_threads_at_once():
    from edgeq.runtime.executor import pool_stress

    results = {}

    def hammer(name, threads):
        results[name, threads] = pool_stress(threads, STRESS_JOBS, 150)

    # 5 threads: more ranges than chunks in the smallest jobs (empty ranges, every chunk taken
    # from another thread's range)
    for threads in (1, 2, 3, 4, 5):
        workers = [threading.Thread(target=hammer, args=(k, threads)) for k in range(2)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    for (name, threads), (bad, started) in results.items():
        assert started == (threads > 1), (name, threads)
        assert bad == 0, f"{bad} jobs with a wrong split at {threads} threads (caller {name})"


def many_nodes_model(layers=12, h=19, w=23, c=16):
    """A chain of small convolutions (each a few hundred thousand multiply-adds: a pool job per
    node, microseconds apart) and smaller ones that stay on the calling thread."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.add_tensor("x", [1, h, w, c], np.float32)
    y = x
    for i in range(layers):
        k = 3 if i % 3 else 1
        f = b.add_tensor(f"f{i}", [c, k, k, c], np.float32,
                         data=(rng.standard_normal((c, k, k, c)) / (k * 4)).astype(np.float32))
        z = b.add_tensor(f"y{i}", [], np.float32)
        b.add_operator(BuiltinOp.CONV_2D, [y, f, -1], [z],
                       options={"padding": 0, "stride_h": 1, "stride_w": 1,
                                "fused_activation_function": 1 if i % 2 else 0})
        y = z
    b.set_inputs([x])
    b.set_outputs([y])
    return b.build(), (1, h, w, c)


def test_two_interpreters_on_two_threads_give_one_thread_bits():
    cases = [fast_path_model(), many_nodes_model(), (conv_model(), (2, 37, 29, 8)),
             (conv_model(5, 4, 3, 2), (2, 5, 4, 3))]
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal(shape).astype(np.float32) for _, shape in cases]
    expected = [run(model, 1, x) for (model, _), x in zip(cases, inputs)]
    failures = []

    def serve(order, threads):
        its = []
        for model, _ in cases:
            it = edgeq.Interpreter(model_content=model, num_threads=threads)
            it.allocate_tensors()
            its.append(it)
        for rep in range(25):
            for k in order:
                it = its[k]
                it.set_tensor(it.get_input_details()[0]["index"], inputs[k])
                it.invoke()
                got = it.get_tensor(it.get_output_details()[0]["index"])
                if not np.array_equal(got, expected[k]):
                    failures.append((k, threads, rep))

    for threads in (1, 2, 3, 4):
        workers = [threading.Thread(target=serve, args=(order, threads))
                   for order in ([0, 1, 2, 3], [3, 1, 2, 0])]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert failures == []
