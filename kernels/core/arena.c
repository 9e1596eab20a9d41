/* Arena placement (edgeq/arena.h). The placed blocks are kept sorted by offset, so one walk
 * over them finds every gap between the ones a new block's lifetime overlaps: O(n^2) over a
 * graph's tensors, microseconds for the models in reach. */
#if defined(__unix__) || defined(__APPLE__)
#define _DEFAULT_SOURCE 1 /* mmap's MAP_ANONYMOUS and madvise under -std=c11 */
#endif
#include "edgeq/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define EQ_HAVE_MMAP 1
#endif

int64_t eq_plan_arena(int32_t n, const int64_t *sizes, const int32_t *first,
                      const int32_t *last, const int32_t *order, int32_t fit, int64_t *offsets,
                      int32_t *placed) {
  int32_t n_placed = 0;
  int64_t total = 0;
  for (int32_t r = 0; r < n; ++r) {
    const int32_t id = order[r];
    const int64_t size = sizes[id];
    int64_t cursor = 0;            /* lowest free byte above the overlapping blocks seen */
    int64_t chosen = -1, chosen_gap = 0;
    for (int32_t p = 0; p < n_placed; ++p) {
      const int32_t other = placed[p];
      if (last[other] < first[id] || last[id] < first[other]) continue;
      const int64_t gap = offsets[other] - cursor;
      if (gap >= size && (chosen < 0 || gap < chosen_gap)) {
        chosen = cursor;
        chosen_gap = gap;
        if (fit == EQ_ARENA_FIRST_FIT) break;
      }
      const int64_t end = offsets[other] + sizes[other];
      if (end > cursor) cursor = end;
    }
    const int64_t offset = chosen >= 0 ? chosen : cursor;
    offsets[id] = offset;
    if (offset + size > total) total = offset + size;
    /* insert into the offset-sorted list (after equal offsets: placement order breaks ties) */
    int32_t at = n_placed;
    while (at > 0 && offsets[placed[at - 1]] > offset) --at;
    memmove(placed + at + 1, placed + at, (size_t)(n_placed - at) * sizeof *placed);
    placed[at] = id;
    ++n_placed;
  }
  return total;
}

static int64_t pages_live;

int64_t eq_pages_live(void) { return pages_live; }

#ifdef EQ_HAVE_MMAP
#ifndef MAP_ANONYMOUS
#define MAP_ANONYMOUS MAP_ANON
#endif

/* A mapping of `bytes`; from EQ_HUGE_PAGE up it is over-mapped by one huge page less a page
 * and trimmed to start on a huge-page boundary (the kernel need not place it so), then advised
 * as huge: a kernel without THP (32-bit ARM, some Android ones) refuses the advice and the
 * block stays in small pages, which is all the advice ever changes. */
void *eq_pages_alloc(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  bytes = (bytes + page - 1) / page * page;
  const int huge = bytes >= (size_t)EQ_HUGE_PAGE && page < (size_t)EQ_HUGE_PAGE;
  const size_t mapped = huge ? bytes + EQ_HUGE_PAGE - page : bytes;
  char *p = mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  char *block = p;
  if (huge) {
    block = (char *)(((uintptr_t)p + EQ_HUGE_PAGE - 1) & ~(uintptr_t)(EQ_HUGE_PAGE - 1));
    if (block > p) munmap(p, (size_t)(block - p));
    const size_t tail = mapped - (size_t)(block - p) - bytes;
    if (tail) munmap(block + bytes, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise(block, bytes, MADV_HUGEPAGE);
#endif
  }
  pages_live += (int64_t)bytes;
  return block;
}

void eq_pages_free(void *block, size_t bytes) {
  if (block == NULL) return;
  if (bytes == 0) bytes = 1;
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  bytes = (bytes + page - 1) / page * page;
  munmap(block, bytes);
  pages_live -= (int64_t)bytes;
}

#else /* no mmap: the C heap, aligned by hand, the original pointer stored before the block */

void *eq_pages_alloc(size_t bytes) {
  enum { ALIGN = 64 };
  char *raw = calloc(1, bytes + ALIGN + sizeof(void *));
  if (raw == NULL) return NULL;
  char *block = (char *)(((uintptr_t)raw + sizeof(void *) + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
  memcpy(block - sizeof(void *), &raw, sizeof raw);
  pages_live += (int64_t)bytes;
  return block;
}

void eq_pages_free(void *block, size_t bytes) {
  if (block == NULL) return;
  void *raw;
  memcpy(&raw, (char *)block - sizeof(void *), sizeof raw);
  free(raw);
  pages_live -= (int64_t)bytes;
}
#endif
