# C declarations of the kernel contract (kernels/include/edgeq/*.h), for the Cython bridge.
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t

cdef extern from "edgeq/kernel.h" nogil:
    enum: EQ_MAX_DIMS

    ctypedef struct eq_tensor:
        void *data
        int32_t dtype
        int32_t ndim
        int32_t dims[EQ_MAX_DIMS]
        int64_t count

    ctypedef struct eq_ctx:
        uint32_t isa
        int32_t num_threads
        void *pool
        int32_t failed_node
        char message[256]

    ctypedef int (*eq_kernel_fn)(const eq_node *node, eq_ctx *ctx)

    ctypedef struct eq_node:
        eq_kernel_fn run
        const void *params
        const eq_tensor *const *inputs
        eq_tensor *const *outputs
        int32_t n_inputs
        int32_t n_outputs
        void *scratch
        int64_t scratch_bytes
        int32_t op_index
        int32_t reserved

    int eq_run_plan(const eq_node *nodes, int32_t n, eq_ctx *ctx)

cdef extern from "edgeq/dispatch.h" nogil:
    ctypedef struct eq_kernel_info:
        const char *name
        eq_kernel_fn fn
        size_t params_size
        uint32_t isa

    const eq_kernel_info *eq_find_kernel(const char *name, uint32_t allowed)
    const eq_kernel_info *eq_kernel_at(int index)

cdef extern from "edgeq/cpu.h" nogil:
    uint32_t eq_cpu_features()

cdef extern from "edgeq/threadpool.h" nogil:
    ctypedef struct eq_pool:
        pass
    ctypedef void (*eq_task_fn)(void *arg, int64_t begin, int64_t end) noexcept nogil
    eq_pool *eq_pool_create(int32_t workers)
    void eq_pool_destroy(eq_pool *pool)
    void eq_parallel_for(eq_ctx *ctx, int64_t n, int64_t grain, eq_task_fn fn, void *arg)

cdef extern from "edgeq/pack.h" nogil:
    size_t eq_pack_f32_gemm_size(int64_t n, int64_t k)
    void eq_pack_f32_gemm(const float *w, const float *bias, int64_t n, int64_t k, float *out)
    size_t eq_pack_qd8_gemm_size(int64_t n, int64_t k, int32_t kr)
    void eq_pack_qd8_gemm(const int8_t *w, const float *scales, const float *bias, int64_t n,
                          int64_t k, int32_t kr, uint8_t *out)

cdef extern from "edgeq/arena.h" nogil:
    enum: EQ_ARENA_FIRST_FIT
    enum: EQ_ARENA_BEST_FIT
    int64_t eq_plan_arena(int32_t n, const int64_t *sizes, const int32_t *first,
                          const int32_t *last, const int32_t *order, int32_t fit,
                          int64_t *offsets, int32_t *placed)
    enum: EQ_HUGE_PAGE
    void *eq_pages_alloc(size_t bytes)
    void eq_pages_free(void *block, size_t bytes)
    int64_t eq_pages_live()
