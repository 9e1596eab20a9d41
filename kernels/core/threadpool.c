/* Thread pool behind eq_parallel_for.
 *
 * One job at a time (a plan runs its nodes in order). Dispatch publishes the job and bumps a
 * generation counter; workers spin briefly on it (an invoke issues a job per node, microseconds
 * apart) and then sleep on a condition variable. Chunks are claimed with an atomic counter, so
 * uneven chunks balance themselves; the caller works too and waits for the last chunk. */
#define _GNU_SOURCE 1
#include "edgeq/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "edgeq/kernel.h"

#define SPIN_ITERATIONS 20000

struct eq_pool {
  int32_t workers;
  pthread_t *threads;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  atomic_uint generation; /* bumped once per job */
  atomic_int stop;
  /* The current job. */
  eq_task_fn fn;
  void *arg;
  int64_t n, chunk;
  atomic_llong next;      /* next chunk start */
  atomic_int active;      /* workers still inside the current job */
};

static void run_chunks(eq_pool *p) {
  for (;;) {
    const int64_t begin = atomic_fetch_add(&p->next, p->chunk);
    if (begin >= p->n) return;
    const int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
    p->fn(p->arg, begin, end);
  }
}

static void *worker_main(void *opaque) {
  eq_pool *p = (eq_pool *)opaque;
  /* Generation 0 is the pool's state at creation, before any job: a worker that starts after
   * the first job was published must still see that job as new. */
  unsigned seen = 0;
  for (;;) {
    unsigned gen = atomic_load_explicit(&p->generation, memory_order_acquire);
    for (int spin = 0; gen == seen && spin < SPIN_ITERATIONS; ++spin)
      gen = atomic_load_explicit(&p->generation, memory_order_acquire);
    if (gen == seen) {
      pthread_mutex_lock(&p->lock);
      while ((gen = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->lock);
      pthread_mutex_unlock(&p->lock);
    }
    if (atomic_load(&p->stop)) return NULL;
    seen = gen;
    run_chunks(p);
    atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
  }
}

eq_pool *eq_pool_create(int32_t workers) {
  if (workers <= 0) return NULL;
  eq_pool *p = (eq_pool *)calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = (pthread_t *)calloc((size_t)workers, sizeof(pthread_t));
  if (!p->threads || pthread_mutex_init(&p->lock, NULL) != 0) {
    free(p->threads);
    free(p);
    return NULL;
  }
  pthread_cond_init(&p->wake, NULL);
  atomic_init(&p->generation, 0u);
  atomic_init(&p->stop, 0);
  atomic_init(&p->next, 0);
  atomic_init(&p->active, 0);
  for (int32_t i = 0; i < workers; ++i) {
    if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) break;
    p->workers = i + 1;
  }
  if (p->workers == 0) {
    eq_pool_destroy(p);
    return NULL;
  }
  return p;
}

void eq_pool_destroy(eq_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->lock);
  atomic_store(&p->stop, 1);
  atomic_fetch_add(&p->generation, 1u);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  for (int32_t i = 0; i < p->workers; ++i) pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->lock);
  free(p->threads);
  free(p);
}

void eq_parallel_for(eq_ctx *ctx, int64_t n, int64_t grain, eq_task_fn fn, void *arg) {
  if (n <= 0) return;
  eq_pool *p = (eq_pool *)ctx->pool;
  if (grain < 1) grain = 1;
  if (p == NULL || n <= grain) {
    fn(arg, 0, n);
    return;
  }
  const int64_t threads = p->workers + 1;
  /* About four chunks per thread balances uneven rows without much claiming traffic. */
  int64_t chunk = (n + threads * 4 - 1) / (threads * 4);
  if (chunk < grain) chunk = grain;
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  atomic_store(&p->next, 0);
  atomic_store(&p->active, p->workers);
  pthread_mutex_lock(&p->lock);
  atomic_fetch_add_explicit(&p->generation, 1u, memory_order_release);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
  run_chunks(p);
  /* The remaining chunks are already running. Spin, but yield now and then: on a loaded machine
   * the worker holding the last chunk may be waiting for this very core. */
  for (unsigned spin = 1; atomic_load_explicit(&p->active, memory_order_acquire) != 0; ++spin) {
    if (spin % 1024 == 0) sched_yield();
  }
}
