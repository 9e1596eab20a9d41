/* The contract between the planner and every kernel.
 *
 * A compiled plan is an array of eq_node. Each node points at its kernel function, at a plain
 * parameter struct (see params.h) filled once at prepare time, and at the eq_tensor descriptors
 * of its inputs and outputs, whose data pointers point into the activation arena or into
 * constant (weight) memory. invoke walks the array in C with the GIL released; kernels never
 * allocate, never see the flatbuffer and never re-check what prepare already checked.
 */
#ifndef EDGEQ_KERNEL_H
#define EDGEQ_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EQ_MAX_DIMS 8

/* Element types: the TFLite TensorType codes, so no translation table is needed. */
enum eq_dtype {
  EQ_FLOAT32 = 0,
  EQ_FLOAT16 = 1,
  EQ_INT32 = 2,
  EQ_UINT8 = 3,
  EQ_INT64 = 4,
  EQ_BOOL = 6,
  EQ_INT16 = 7,
  EQ_INT8 = 9,
  EQ_FLOAT64 = 10,
  EQ_UINT32 = 15,
  EQ_UINT16 = 16,
};

typedef struct eq_tensor {
  void *data;
  int32_t dtype;              /* enum eq_dtype */
  int32_t ndim;
  int32_t dims[EQ_MAX_DIMS];  /* row-major, innermost last */
  int64_t count;              /* product of dims */
} eq_tensor;

struct eq_ctx;
struct eq_node;

/* Every kernel of every op and ISA has this signature, so any variant can sit behind the same
 * pointer. Returns 0 on success; on failure calls eq_fail() and returns its result. */
typedef int (*eq_kernel_fn)(const struct eq_node *node, struct eq_ctx *ctx);

typedef struct eq_node {
  eq_kernel_fn run;
  const void *params;              /* op-specific struct from params.h, or NULL */
  const eq_tensor *const *inputs;  /* an absent optional input is NULL */
  eq_tensor *const *outputs;
  int32_t n_inputs;
  int32_t n_outputs;
  void *scratch;                   /* planned per-node scratch, in the arena */
  int64_t scratch_bytes;
  int32_t op_index;                /* index of the operator in the model, for messages */
  int32_t reserved;
} eq_node;

/* Per-invoke state shared by the nodes of one plan. */
typedef struct eq_ctx {
  uint32_t isa;           /* feature bits the plan was built for (cpu.h) */
  int32_t num_threads;
  void *pool;             /* eq_pool (threadpool.h), NULL when single-threaded */
  int32_t failed_node;    /* set by the runner when a kernel fails */
  char message[256];      /* filled by eq_fail */
} eq_ctx;

/* Record why a kernel failed; returns -1 so that kernels can `return eq_fail(...)`. */
int eq_fail(eq_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Run nodes[0..n) in order; stops at the first failing kernel (ctx->failed_node). */
int eq_run_plan(const eq_node *nodes, int32_t n, eq_ctx *ctx);

/* Kernel lookup, filled per family by kernel tables (dispatch.c). */
typedef struct eq_kernel_entry {
  const char *name;
  eq_kernel_fn fn;
} eq_kernel_entry;

static inline size_t eq_dtype_size(int32_t dtype) {
  switch (dtype) {
    case EQ_FLOAT32: case EQ_INT32: case EQ_UINT32: return 4;
    case EQ_FLOAT16: case EQ_INT16: case EQ_UINT16: return 2;
    case EQ_INT64: case EQ_FLOAT64: return 8;
    case EQ_UINT8: case EQ_INT8: case EQ_BOOL: return 1;
    default: return 0;
  }
}

#ifdef __cplusplus
}
#endif
#endif
