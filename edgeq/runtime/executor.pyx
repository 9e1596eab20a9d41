# cython: language_level=3, boundscheck=False, wraparound=False
"""The GIL-free bridge: turns a plan made in Python into C structs and runs it.

Python (edgeq.plan) decides everything once: which kernel each node runs, its parameter bytes,
where every tensor lives. CompiledPlan copies that into C arrays of eq_tensor / eq_node, and
invoke() hands the array to eq_run_plan with the GIL released: no Python per op, no allocation.
"""
from cpython.buffer cimport (PyBUF_ANY_CONTIGUOUS, PyBuffer_FillInfo, PyBuffer_Release,
                             PyObject_GetBuffer)
from cpython.mem cimport PyMem_Calloc, PyMem_Free
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t, uintptr_t
from libc.string cimport memcpy, memset

from edgeq.runtime.kernels cimport (
    EQ_ARENA_BEST_FIT, EQ_ARENA_FIRST_FIT, EQ_MAX_DIMS, eq_cpu_features, eq_ctx, eq_find_kernel,
    eq_kernel_at, eq_kernel_info, eq_node,
    eq_pack_f32_gemm, eq_pack_f32_gemm_size, eq_pack_qd8_gemm, eq_pack_qd8_gemm_size,
    eq_pages_alloc, eq_pages_free, eq_pages_live, eq_parallel_for, eq_plan_arena, eq_pool,
    eq_pool_create, eq_pool_destroy, eq_run_plan, eq_tensor, EQ_HUGE_PAGE,
)

MAX_DIMS = EQ_MAX_DIMS
HUGE_PAGE = EQ_HUGE_PAGE


class KernelFailure(RuntimeError):
    """A kernel reported an error while running; .node is the index of the failing node."""

    def __init__(self, node, message):
        super().__init__(message)
        self.node = node


def cpu_features():
    """eq_isa_feature bits of this CPU (kernels/include/edgeq/cpu.h)."""
    return eq_cpu_features()


def find_kernel(str name, uint32_t allowed):
    """(params_size, isa) of the kernel `name` that runs with the `allowed` features, or None."""
    cdef bytes key = name.encode()
    cdef const eq_kernel_info *info = eq_find_kernel(key, allowed)
    if info == NULL:
        return None
    return info.params_size, info.isa


def kernel_address(str name, uint32_t allowed):
    """Address of the function of kernel `name` for the `allowed` features, or 0: a plan-time
    choice that a wrapping kernel (the fp16 twins, edgeq/plan/precision.py) calls through."""
    cdef bytes key = name.encode()
    cdef const eq_kernel_info *info = eq_find_kernel(key, allowed)
    if info == NULL:
        return 0
    return <uintptr_t>info.fn


def kernel_table():
    """(name, isa) of every kernel compiled into this build, in lookup order."""
    rows = []
    cdef int i = 0
    cdef const eq_kernel_info *info = eq_kernel_at(0)
    while info != NULL:
        rows.append((info.name.decode(), info.isa))
        i += 1
        info = eq_kernel_at(i)
    return rows


def data_address(obj):
    """Address of the first byte of a contiguous buffer (a numpy array): what arr.ctypes.data
    gives, without building a ctypes object each time."""
    cdef Py_buffer view
    PyObject_GetBuffer(obj, &view, PyBUF_ANY_CONTIGUOUS)
    cdef uintptr_t address = <uintptr_t>view.buf
    PyBuffer_Release(&view)
    return address


def plan_arena_layout(list sizes, list firsts, list lasts, list order, bint best_fit):
    """(offsets, total) of blocks placed in `order` (kernels/core/arena.c): sizes in aligned
    bytes, lifetimes [first, last] in steps; best_fit picks the smallest gap that fits, else
    the lowest offset."""
    cdef Py_ssize_t n = len(sizes)
    if not (len(firsts) == len(lasts) == len(order) == n):
        raise ValueError("plan_arena_layout: sizes, lifetimes and order differ in length")
    cdef int64_t *c_sizes = <int64_t *>PyMem_Calloc(max(n, 1), 2 * sizeof(int64_t))
    cdef int32_t *c_ints = <int32_t *>PyMem_Calloc(max(n, 1), 4 * sizeof(int32_t))
    if c_sizes == NULL or c_ints == NULL:
        PyMem_Free(c_sizes)
        PyMem_Free(c_ints)
        raise MemoryError()
    cdef int64_t *c_offsets = c_sizes + n
    cdef int64_t total
    cdef Py_ssize_t i
    try:
        for i in range(n):
            c_sizes[i] = sizes[i]
            c_ints[i] = firsts[i]
            c_ints[n + i] = lasts[i]
            c_ints[2 * n + i] = order[i]
            if not 0 <= order[i] < n:
                raise ValueError(f"plan_arena_layout: order names block {order[i]} of {n}")
        total = eq_plan_arena(<int32_t>n, c_sizes, c_ints, c_ints + n, c_ints + 2 * n,
                              EQ_ARENA_BEST_FIT if best_fit else EQ_ARENA_FIRST_FIT,
                              c_offsets, c_ints + 3 * n)
        return [c_offsets[i] for i in range(n)], total
    finally:
        PyMem_Free(c_sizes)
        PyMem_Free(c_ints)


cdef class PageBlock:
    """`size` zero bytes from eq_pages_alloc (kernels/core/arena.c): whole pages, huge-page
    aligned and advised from HUGE_PAGE bytes up where the system has THP. A writable buffer:
    numpy arrays over it (np.frombuffer) hold it alive, and it goes back to the system when
    the last of them goes."""
    cdef char *data
    cdef readonly size_t size

    def __cinit__(self, size_t size):
        self.data = <char *>eq_pages_alloc(size)
        if self.data == NULL:
            raise MemoryError(f"cannot map {size} bytes")
        self.size = size

    def __dealloc__(self):
        eq_pages_free(self.data, self.size)

    def __getbuffer__(self, Py_buffer *view, int flags):
        PyBuffer_FillInfo(view, self, self.data, <Py_ssize_t>self.size, 0, flags)

    def __len__(self):
        return self.size


def pages_live():
    """Bytes held in PageBlocks (and any other eq_pages_alloc block) not yet given back."""
    return eq_pages_live()


def pack_f32_gemm(const float[::1] w, bias, int64_t n, int64_t k, float[::1] out):
    """Packs flat float32 weights [n * k] and bias ([n] float32, or None) into `out` in the
    layout of edgeq/f32_gemm.h (kernels/core/pack.c)."""
    cdef const float[::1] b
    cdef const float *b_ptr = NULL
    if n < 0 or k < 0 or w.shape[0] != n * k:
        raise ValueError(f"pack_f32_gemm: {w.shape[0]} weights are not {n} x {k}")
    if out.shape[0] != <Py_ssize_t>eq_pack_f32_gemm_size(n, k):
        raise ValueError(f"pack_f32_gemm: out holds {out.shape[0]} floats, the layout needs "
                         f"{eq_pack_f32_gemm_size(n, k)}")
    if bias is not None:
        b = bias
        if b.shape[0] < n:
            raise ValueError(f"pack_f32_gemm: {b.shape[0]} biases for {n} channels")
        b_ptr = &b[0] if n else NULL
    if n:
        eq_pack_f32_gemm(&w[0] if n * k else NULL, b_ptr, n, k, &out[0])


def pack_qd8_gemm(const int8_t[::1] w, const float[::1] scales, const float[::1] bias,
                  int64_t n, int64_t k, int32_t kr, uint8_t[::1] out):
    """Packs flat int8 weights [n * k] with per-channel scales and biases ([n] float32 each)
    into `out`, the blob of edgeq/params/qd8.h with kr consecutive k (kernels/core/pack.c)."""
    if n < 0 or k < 0 or w.shape[0] != n * k:
        raise ValueError(f"pack_qd8_gemm: {w.shape[0]} weights are not {n} x {k}")
    if kr not in (4, 8):
        raise ValueError(f"pack_qd8_gemm: kr {kr} is not 4 or 8")
    if scales.shape[0] < n or bias.shape[0] < n:
        raise ValueError(f"pack_qd8_gemm: {scales.shape[0]} scales and {bias.shape[0]} biases "
                         f"for {n} channels")
    if out.shape[0] != <Py_ssize_t>eq_pack_qd8_gemm_size(n, k, kr):
        raise ValueError(f"pack_qd8_gemm: out holds {out.shape[0]} bytes, the layout needs "
                         f"{eq_pack_qd8_gemm_size(n, k, kr)}")
    if n:
        eq_pack_qd8_gemm(&w[0] if n * k else NULL, &scales[0], &bias[0], n, k, kr, &out[0])


cdef int _fill_tensor(eq_tensor *t, uintptr_t address, int dtype, shape) except -1:
    if len(shape) > EQ_MAX_DIMS:
        raise ValueError(f"rank {len(shape)} is above the supported {EQ_MAX_DIMS}")
    t.data = <void *>address
    t.dtype = dtype
    t.ndim = len(shape)
    cdef int64_t count = 1
    for i, d in enumerate(shape):
        t.dims[i] = d
        count *= d
    t.count = count
    return 0


cdef struct _stress_job:
    uint32_t *visits
    int64_t n
    int64_t grain
    int32_t spin
    int32_t errors


cdef void _stress_task(void *arg, int64_t begin, int64_t end) noexcept nogil:
    cdef _stress_job *job = <_stress_job *>arg
    cdef int64_t i
    cdef int32_t k
    cdef volatile uint32_t sink = 0
    # A chunk is inside [0, n), and at least a grain long unless it is the last one.
    if begin < 0 or end > job.n or begin >= end or (end - begin < job.grain and end != job.n):
        job.errors += 1  # only read when a chunk was wrong, so a racy count still shows it
        return
    for i in range(begin, end):
        for k in range(job.spin):
            sink += <uint32_t>k
        job.visits[i] += 1


def pool_stress(int threads, list jobs, int rounds):
    """Runs eq_parallel_for on a pool of `threads` threads (threads - 1 workers) with every
    (n, grain, spin) of `jobs`, `rounds` times, the GIL released; returns the number of jobs in
    which an item was not visited exactly once or a chunk was out of range, and whether the pool
    started (tests/test_threads.py)."""
    cdef eq_ctx ctx
    memset(&ctx, 0, sizeof(ctx))
    ctx.num_threads = threads
    cdef int64_t most = max([job[0] for job in jobs] + [1])
    cdef uint32_t *visits = <uint32_t *>PyMem_Calloc(most, sizeof(uint32_t))
    cdef _stress_job *specs = <_stress_job *>PyMem_Calloc(len(jobs), sizeof(_stress_job))
    if visits == NULL or specs == NULL:
        PyMem_Free(visits)
        PyMem_Free(specs)
        raise MemoryError()
    for i, (n, grain, spin) in enumerate(jobs):
        specs[i].visits = visits
        specs[i].n = n
        specs[i].grain = grain
        specs[i].spin = spin
    cdef int n_jobs = len(jobs)
    cdef int bad = 0
    cdef bint started = False
    cdef int r, j
    cdef int64_t i64
    with nogil:
        if threads > 1:
            ctx.pool = eq_pool_create(threads - 1)
            started = ctx.pool != NULL
        for r in range(rounds):
            for j in range(n_jobs):
                memset(visits, 0, specs[j].n * sizeof(uint32_t))
                specs[j].errors = 0
                eq_parallel_for(&ctx, specs[j].n, specs[j].grain, _stress_task, &specs[j])
                for i64 in range(specs[j].n):
                    if visits[i64] != 1:
                        specs[j].errors += 1
                if specs[j].errors:
                    bad += 1
        if ctx.pool != NULL:
            eq_pool_destroy(<eq_pool *>ctx.pool)
    PyMem_Free(visits)
    PyMem_Free(specs)
    return bad, started


# (kernel name, allowed ISA bits) -> address of its eq_kernel_info: the tables are static, and a
# lookup walks all of them comparing names (plans are built per allocate and per constant node).
cdef dict _KERNEL_INFO = {}


cdef class CompiledPlan:
    """C arrays for one plan. Built from plain Python descriptions:

    tensors: list of (address, dtype_code, shape) — address of the first element (arena or
             constant memory; the caller keeps that memory alive as long as the plan).
    nodes:   list of (kernel_name, params_bytes or None, input_ids (-1 = absent),
             output_ids, scratch_address, scratch_bytes, op_index).
    """
    cdef eq_tensor *tensors
    cdef int32_t n_tensors
    cdef eq_node *nodes
    cdef int32_t n_nodes
    cdef const eq_tensor **tensor_ptrs
    cdef char *params
    cdef eq_ctx ctx
    cdef readonly list kernel_of_node

    def __cinit__(self, tensors, nodes, uint32_t allowed_isa, int num_threads=1):
        self.n_tensors = len(tensors)
        self.n_nodes = len(nodes)
        self.tensors = <eq_tensor *>PyMem_Calloc(max(self.n_tensors, 1), sizeof(eq_tensor))
        self.nodes = <eq_node *>PyMem_Calloc(max(self.n_nodes, 1), sizeof(eq_node))
        n_ptrs = sum(len(n[2]) + len(n[3]) for n in nodes)
        self.tensor_ptrs = <const eq_tensor **>PyMem_Calloc(max(n_ptrs, 1), sizeof(eq_tensor *))
        # Params of all nodes in one block, each at a 16-byte aligned offset.
        params_total = sum((len(n[1]) + 15) & ~15 for n in nodes if n[1])
        self.params = <char *>PyMem_Calloc(max(params_total, 16) + 16, 1)
        if not (self.tensors and self.nodes and self.tensor_ptrs and self.params):
            raise MemoryError()
        self.ctx.num_threads = num_threads
        self.ctx.isa = allowed_isa
        if num_threads > 1:
            # Without a pool (threads could not start) kernels simply run on the caller.
            self.ctx.pool = eq_pool_create(num_threads - 1)
        self.kernel_of_node = []

        for i, (address, dtype, shape) in enumerate(tensors):
            _fill_tensor(&self.tensors[i], address, dtype, shape)

        cdef char *params_base = <char *>((<uintptr_t>self.params + 15) & ~(<uintptr_t>15))
        cdef size_t params_at = 0
        cdef size_t ptr_at = 0
        cdef eq_node *node
        cdef const eq_kernel_info *info
        cdef bytes pbytes
        cdef bytes key
        for i, (name, pbytes, ins, outs, scratch, scratch_bytes, op_index) in enumerate(nodes):
            found = _KERNEL_INFO.get((name, allowed_isa))
            if found is None:
                key = name.encode()
                info = eq_find_kernel(key, allowed_isa)
                if info == NULL:
                    raise KeyError(f"no kernel named {name!r} for the allowed ISA features")
                _KERNEL_INFO[(name, allowed_isa)] = <uintptr_t>info
            else:
                info = <const eq_kernel_info *><uintptr_t>found
            size = len(pbytes) if pbytes else 0
            if size != info.params_size:
                raise ValueError(f"kernel {name!r} reads {info.params_size} bytes of params, "
                                 f"the planner gave {size}")
            node = &self.nodes[i]
            node.run = info.fn
            if size:
                memcpy(params_base + params_at, <const char *>pbytes, size)
                node.params = params_base + params_at
                params_at += (size + 15) & ~15
            node.inputs = &self.tensor_ptrs[ptr_at]
            node.n_inputs = len(ins)
            for tid in ins:
                self.tensor_ptrs[ptr_at] = &self.tensors[tid] if tid >= 0 else NULL
                ptr_at += 1
            node.outputs = <eq_tensor *const *>&self.tensor_ptrs[ptr_at]
            node.n_outputs = len(outs)
            for tid in outs:
                self.tensor_ptrs[ptr_at] = &self.tensors[tid]
                ptr_at += 1
            node.scratch = <void *><uintptr_t>scratch
            node.scratch_bytes = scratch_bytes
            node.op_index = op_index
            self.kernel_of_node.append(name)

    def __dealloc__(self):
        if self.ctx.pool != NULL:
            eq_pool_destroy(<eq_pool *>self.ctx.pool)
        PyMem_Free(self.tensors)
        PyMem_Free(self.nodes)
        PyMem_Free(self.tensor_ptrs)
        PyMem_Free(self.params)

    def invoke(self):
        """Run every node; the GIL is released for the whole walk."""
        cdef int rc
        with nogil:
            rc = eq_run_plan(self.nodes, self.n_nodes, &self.ctx)
        if rc != 0:
            raise KernelFailure(self.ctx.failed_node, self.ctx.message.decode(errors="replace"))

    def invoke_node(self, int index):
        """Run a single node (used by the per-op profiler and tests)."""
        cdef int rc
        if not 0 <= index < self.n_nodes:
            raise IndexError(index)
        with nogil:
            rc = eq_run_plan(&self.nodes[index], 1, &self.ctx)
        if rc != 0:
            raise KernelFailure(index, self.ctx.message.decode(errors="replace"))

    @property
    def num_nodes(self):
        return self.n_nodes
