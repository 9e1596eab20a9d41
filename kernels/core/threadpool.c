/* Thread pool behind eq_parallel_for.
 *
 * One job at a time per pool (a plan runs its nodes in order; each plan owns its pool, so two
 * interpreters on two threads never share one). A job is [0, n) cut into `chunks` chunks. The
 * whole dispatch state is one 64-bit word, `state` = generation << 32 | chunks not yet claimed:
 *
 *   - the caller writes the job's description, zeroes `done`, then publishes the job by storing
 *     a new state (next generation, all chunks unclaimed);
 *   - every thread, the caller included, claims chunk after chunk by a compare-and-swap that
 *     decrements the unclaimed count; a compare-and-swap that succeeds proves the job it claims
 *     from is the current one, and that job cannot finish before the claimed chunk does, so the
 *     description read after a claim is that job's (the claim is the per-job token);
 *   - a worker that finds nothing left to claim adds the number of chunks it ran to `done`; the
 *     caller returns when `done` reaches the number of chunks it did not run itself. It waits
 *     only for chunks that were claimed and are running, never for a worker that took nothing:
 *     when a worker is late (asleep, or descheduled on a busy machine) the caller simply claims
 *     every chunk itself, and the late worker later finds none left.
 *
 * Workers spin on `state` for a short while (an invoke issues a job per node, microseconds
 * apart), then sleep on a condition variable; the caller takes the lock to wake them only when
 * one is asleep, so a busy pool costs no system call per job and an idle one costs nothing.
 * Plain pthreads and C11 atomics (works with bionic on Android); nothing is allocated per job. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "edgeq/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "edgeq/kernel.h"

/* How long an idle worker polls before it sleeps: longer than the gap between two parallel nodes
 * of one invoke (the small nodes between them run on the caller), short enough that a pool left
 * idle stops using its core at once. Measured in time, not iterations: a pause instruction
 * lasts ~100 cycles on x86 and ~1 on many ARM cores. */
#define SPIN_NS 100000
#define POLLS_PER_CLOCK_READ 32
/* Chunks per thread: small enough to balance uneven tasks and a late worker, large enough that
 * claiming stays cheap. */
#define CHUNKS_PER_THREAD 8

#define STATE_GENERATION ((uint64_t)1 << 32)
#define STATE_UNCLAIMED(s) ((uint32_t)(s))

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

struct eq_pool {
  int32_t workers;
  pthread_t *threads;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  atomic_int stop;
  atomic_int sleepers; /* workers inside (or about to enter) pthread_cond_wait */
  /* The current job; written by the caller only while no chunk of the previous job is claimed
   * or running, read by a thread only after it claimed a chunk of this job. */
  eq_task_fn fn;
  void *arg;
  int64_t n, chunk;
  uint32_t chunks;
  /* Written by every thread on every claim / finish: each on its own cache line. */
  _Alignas(64) atomic_uint_least64_t state;
  _Alignas(64) atomic_uint done;
  char pad[64 - sizeof(atomic_uint)];
};

/* Claims one chunk of the current job: returns how many chunks were unclaimed before the claim
 * (the chunk's index is chunks - that), or 0 when there is none left; *seen receives the last
 * state read. */
static uint32_t claim(eq_pool *p, uint64_t *seen) {
  uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  for (;;) {
    const uint32_t left = STATE_UNCLAIMED(s);
    if (left == 0) {
      *seen = s;
      return 0;
    }
    if (atomic_compare_exchange_weak_explicit(&p->state, &s, s - 1, memory_order_acquire,
                                              memory_order_acquire))
      return left;
  }
}

/* Runs chunks of the current job until none is left unclaimed; returns how many it ran, and the
 * last state read in *seen. */
static uint32_t run_chunks(eq_pool *p, uint64_t *seen) {
  uint32_t ran = 0, left;
  while ((left = claim(p, seen)) != 0) {
    const int64_t begin = (int64_t)(p->chunks - left) * p->chunk;
    const int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
    p->fn(p->arg, begin, end);
    ++ran;
  }
  return ran;
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Polls the state until its generation differs from `generation` or SPIN_NS have passed. */
static uint64_t spin_for_job(eq_pool *p, uint64_t generation) {
  uint64_t s = atomic_load_explicit(&p->state, memory_order_acquire);
  int64_t deadline = 0;
  while (s >> 32 == generation) {
    for (int i = 0; i < POLLS_PER_CLOCK_READ && s >> 32 == generation; ++i) {
      cpu_relax();
      s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
    if (s >> 32 != generation) break;
    /* On a loaded machine this worker may share a core with the caller (or with the worker that
     * holds the job's last chunk): polling must not keep them off it for a whole time slice.
     * With a core of its own, sched_yield returns at once. */
    sched_yield();
    const int64_t t = now_ns();
    if (deadline == 0) deadline = t + SPIN_NS;
    else if (t >= deadline) break;
  }
  return s;
}

static void *worker_main(void *opaque) {
  eq_pool *p = (eq_pool *)opaque;
  /* Generation 0 is the pool's state at creation, before any job: a worker that starts after
   * the first job was published still sees that job as new. */
  uint64_t generation = 0;
  for (;;) {
    uint64_t s = spin_for_job(p, generation);
    if (s >> 32 == generation) {
      pthread_mutex_lock(&p->lock);
      /* seq_cst increment, then seq_cst load of the state: pairs with the caller's store of the
       * state then load of `sleepers`, so either this worker sees the new job or the caller sees
       * a sleeper and wakes it (under the lock this worker holds until it waits). */
      atomic_fetch_add(&p->sleepers, 1);
      while ((s = atomic_load(&p->state)) >> 32 == generation && !atomic_load(&p->stop))
        pthread_cond_wait(&p->wake, &p->lock);
      atomic_fetch_sub(&p->sleepers, 1);
      pthread_mutex_unlock(&p->lock);
    }
    if (atomic_load_explicit(&p->stop, memory_order_acquire)) return NULL;
    /* One add per job, not per chunk: the caller cannot publish another job before it, so the
     * chunks counted all belong to this one. */
    const uint32_t ran = run_chunks(p, &s);
    if (ran) atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
    generation = s >> 32;
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
  if (pthread_cond_init(&p->wake, NULL) != 0) {
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
    return NULL;
  }
  atomic_init(&p->stop, 0);
  atomic_init(&p->sleepers, 0);
  atomic_init(&p->state, 0);
  atomic_init(&p->done, 0u);
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
  /* A new generation with nothing to claim: spinning workers see it too. */
  atomic_fetch_add(&p->state, STATE_GENERATION);
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
  if (grain < 1) grain = 1;
  eq_pool *p = (eq_pool *)ctx->pool;
  /* Small jobs never touch the pool (not even a load of its state). */
  if (p == NULL || n <= grain) {
    fn(arg, 0, n);
    return;
  }
  const int64_t threads = (int64_t)p->workers + 1;
  int64_t chunk = (n + threads * CHUNKS_PER_THREAD - 1) / (threads * CHUNKS_PER_THREAD);
  if (chunk < grain) chunk = grain;
  const uint32_t chunks = (uint32_t)((n + chunk - 1) / chunk); /* <= threads * 8 */
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  p->chunks = chunks;
  atomic_store_explicit(&p->done, 0u, memory_order_relaxed);
  /* Only this thread changes the generation, and no chunk is left unclaimed here. */
  const uint64_t old = atomic_load_explicit(&p->state, memory_order_relaxed);
  atomic_store(&p->state, ((old >> 32) + 1) << 32 | chunks); /* seq_cst: see worker_main */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
  }
  uint64_t seen;
  const uint32_t others = chunks - run_chunks(p, &seen);
  /* Every chunk is claimed; the ones still running are on workers that took them. Spin, but
   * yield now and then: on a loaded machine such a worker may be waiting for this very core. */
  for (unsigned spin = 1; atomic_load_explicit(&p->done, memory_order_acquire) != others;
       ++spin) {
    if (spin % 256 == 0) sched_yield();
    else cpu_relax();
  }
}
