/* A small pthread pool (no OpenMP: Termux has no libgomp). Kernels split their own work with
 * eq_parallel_for; the calling thread takes part, so num_threads = workers + 1. */
#ifndef EDGEQ_THREADPOOL_H
#define EDGEQ_THREADPOOL_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct eq_ctx;
typedef struct eq_pool eq_pool;

/* Runs fn(arg, begin, end) over [0, n) in chunks of at least `grain` items. */
typedef void (*eq_task_fn)(void *arg, int64_t begin, int64_t end);

/* NULL when threads cannot be started (the caller then runs single-threaded). */
eq_pool *eq_pool_create(int32_t workers);
void eq_pool_destroy(eq_pool *pool);

/* Below this much work (multiply-adds, or elements touched) a node runs on the calling thread
 * alone: waking a worker costs more than it saves, and on a busy machine the worker may not get
 * a core for a long while (a keyword-spotting model's layers are a few microseconds each). */
#define EQ_PARALLEL_MIN_WORK (128 * 1024)

/* The grain for eq_parallel_for that keeps a job of `work` over `items` items on one thread
 * when it is small, and lets it split freely (grain 1) otherwise. */
static inline int64_t eq_parallel_grain(int64_t items, int64_t work) {
  return work < EQ_PARALLEL_MIN_WORK ? items : 1;
}

/* Splits [0, n) among the context's threads; runs inline when there is one thread or little
 * work. Returns when every chunk is done. Safe to call from a kernel only (not nested). */
void eq_parallel_for(struct eq_ctx *ctx, int64_t n, int64_t grain, eq_task_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif
