/* Thread pool behind eq_parallel_for.
 *
 * One job at a time per pool (a plan runs its nodes in order; each plan owns its pool, so two
 * interpreters on two threads never share one). A job is [0, n) cut into `chunks` chunks, dealt
 * out in contiguous ranges, one per thread: thread t (the caller is 0) owns chunks
 * [t * chunks / T, (t + 1) * chunks / T). Consecutive nodes split alike (a 1x1 convolution's
 * rows of pixels, then the depthwise convolution's rows that read them), so each thread reads
 * mostly what it wrote itself a node before, still in its own core's cache; a shared counter
 * dealt chunks in claiming order instead, and two threads then traded half of every tensor
 * through L3 (MobileNetV2 on two Zen 4 cores: 1.76x over one thread where XNNPack, which deals
 * ranges the same way, gets 1.92x).
 *
 *   - `state` = generation << 32 announces a job; each range is one 64-bit word, `tag` (the
 *     generation's low 32 bits) << 32 | begin << 16 | end, on its own cache line;
 *   - the caller writes the job's description and the ranges, zeroes `done`, then publishes the
 *     job by storing the new generation in `state`;
 *   - a thread runs chunks from the front of its own range, then takes chunks from the back of
 *     the others' (a late or descheduled thread's chunks are done by the others). Every take is
 *     a compare-and-swap on a range word that still carries the job's tag, which proves the job
 *     is the current one, and that job cannot finish before the chunk taken does, so the
 *     description read after a take is that job's (the take is the per-job token);
 *   - a worker that finds nothing left to take adds the number of chunks it ran to `done`; the
 *     caller returns when `done` reaches the number of chunks it did not run itself. It waits
 *     only for chunks that were taken and are running, never for a worker that took nothing.
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
/* A range word: tag << 32 | begin << 16 | end (chunks <= threads * CHUNKS_PER_THREAD). */
#define RANGE(tag, begin, end) ((uint64_t)(tag) << 32 | (uint64_t)(begin) << 16 | (uint64_t)(end))
#define RANGE_TAG(r) ((uint32_t)((r) >> 32))
#define RANGE_BEGIN(r) ((uint32_t)((r) >> 16) & 0xffffu)
#define RANGE_END(r) ((uint32_t)(r) & 0xffffu)
#define MAX_CHUNKS 0xffffu

/* One thread's range, alone on its cache line. */
typedef struct range_slot {
  _Alignas(64) atomic_uint_least64_t word;
  char pad[64 - sizeof(atomic_uint_least64_t)];
} range_slot;

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
  atomic_int started;  /* workers that have taken their index */
  /* The current job; written by the caller only while no chunk of the previous job is taken
   * or running, read by a thread only after it took a chunk of this job. */
  eq_task_fn fn;
  void *arg;
  int64_t n, chunk;
  range_slot *ranges;  /* workers + 1: the caller's, then each worker's */
  /* Written by the caller per job, read by every thread: on its own cache line. */
  _Alignas(64) atomic_uint_least64_t state;
  _Alignas(64) atomic_uint done;
  char pad[64 - sizeof(atomic_uint)];
};

/* Takes one chunk of job `tag` from range `r`, from its front or its back: returns the chunk's
 * index, or -1 when the range is empty or belongs to another job. */
static int64_t take(range_slot *r, uint32_t tag, int from_back) {
  uint64_t w = atomic_load_explicit(&r->word, memory_order_acquire);
  for (;;) {
    const uint32_t begin = RANGE_BEGIN(w), end = RANGE_END(w);
    if (RANGE_TAG(w) != tag || begin >= end) return -1;
    const uint64_t next = from_back ? w - 1 : w + ((uint64_t)1 << 16);
    if (atomic_compare_exchange_weak_explicit(&r->word, &w, next, memory_order_acquire,
                                              memory_order_acquire))
      return from_back ? (int64_t)end - 1 : (int64_t)begin;
  }
}

static void run_chunk(eq_pool *p, int64_t c) {
  const int64_t begin = c * p->chunk;
  const int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
  p->fn(p->arg, begin, end);
}

/* Thread `self` runs chunks of job `tag`: its own range front to back, then the others' from
 * their backs, until none is left; returns how many it ran. */
static uint32_t run_chunks(eq_pool *p, int32_t self, uint32_t tag) {
  uint32_t ran = 0;
  int64_t c;
  while ((c = take(&p->ranges[self], tag, 0)) >= 0) {
    run_chunk(p, c);
    ++ran;
  }
  const int32_t threads = p->workers + 1;
  for (int32_t k = 1; k < threads; ++k) {
    range_slot *victim = &p->ranges[(self + k) % threads];
    while ((c = take(victim, tag, 1)) >= 0) {
      run_chunk(p, c);
      ++ran;
    }
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
  const int32_t self = atomic_fetch_add(&p->started, 1) + 1;
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
    generation = s >> 32;
    const uint32_t ran = run_chunks(p, self, (uint32_t)generation);
    if (ran) atomic_fetch_add_explicit(&p->done, ran, memory_order_release);
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
  void *ranges = NULL;
  if (posix_memalign(&ranges, 64, sizeof(range_slot) * ((size_t)workers + 1)) != 0) {
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p);
    return NULL;
  }
  p->ranges = (range_slot *)ranges;
  for (int32_t i = 0; i <= workers; ++i) atomic_init(&p->ranges[i].word, 0);
  atomic_init(&p->started, 0);
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
  free(p->ranges);
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
  int64_t per_job = threads * CHUNKS_PER_THREAD;
  if (per_job > MAX_CHUNKS) per_job = MAX_CHUNKS;
  int64_t chunk = (n + per_job - 1) / per_job;
  if (chunk < grain) chunk = grain;
  const uint32_t chunks = (uint32_t)((n + chunk - 1) / chunk); /* <= MAX_CHUNKS */
  p->fn = fn;
  p->arg = arg;
  p->n = n;
  p->chunk = chunk;
  atomic_store_explicit(&p->done, 0u, memory_order_relaxed);
  /* Only this thread changes the generation; no chunk of the last job is left to take. */
  const uint32_t tag = (uint32_t)(atomic_load_explicit(&p->state, memory_order_relaxed) >> 32) + 1;
  for (int64_t t = 0; t < threads; ++t)
    atomic_store_explicit(&p->ranges[t].word,
                          RANGE(tag, t * chunks / threads, (t + 1) * chunks / threads),
                          memory_order_relaxed);
  atomic_store(&p->state, (uint64_t)tag << 32); /* seq_cst (a release of all the above) */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->lock);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
  }
  const uint32_t others = chunks - run_chunks(p, 0, tag);
  /* Every chunk is taken; the ones still running are on workers that took them. Spin, but
   * yield now and then: on a loaded machine such a worker may be waiting for this very core. */
  for (unsigned spin = 1; atomic_load_explicit(&p->done, memory_order_acquire) != others;
       ++spin) {
    if (spin % 256 == 0) sched_yield();
    else cpu_relax();
  }
}
