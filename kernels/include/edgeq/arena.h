/* The activation arena's layout (edgeq/plan/planner.py): n blocks with byte sizes and
 * lifetimes in node steps, placed in a given order so that no two blocks alive at the same
 * step share a byte. */
#ifndef EDGEQ_ARENA_H
#define EDGEQ_ARENA_H
#include <stddef.h>
#include <stdint.h>

enum eq_arena_fit {
  EQ_ARENA_FIRST_FIT = 0, /* the lowest offset that fits */
  EQ_ARENA_BEST_FIT = 1,  /* the smallest gap that fits, else the top */
};

/* Places blocks order[0], order[1], ... (sizes[i] bytes, already aligned; alive from step
 * first[i] to last[i] inclusive) at offsets[i]; placed[] is room for n indices. Returns the
 * arena's size: the highest end of any block. */
int64_t eq_plan_arena(int32_t n, const int64_t *sizes, const int32_t *first,
                      const int32_t *last, const int32_t *order, int32_t fit, int64_t *offsets,
                      int32_t *placed);

/* Memory that a plan keeps for as long as it lives (its packed constants, its arena), taken
 * from the system in whole pages: zero-filled, 64-byte aligned at least. Where the system has
 * transparent huge pages (Linux) a block of EQ_HUGE_PAGE bytes or more starts on a huge-page
 * boundary and is advised as huge, so that filling it faults once per 2 MiB instead of once
 * per 4 KiB; elsewhere (no THP, other systems) it is plain pages or the C heap. NULL when the
 * memory is not there. Called with the GIL held (the live count is a plain counter). */
enum { EQ_HUGE_PAGE = 2 << 20 };
void *eq_pages_alloc(size_t bytes);
/* Gives back a block of eq_pages_alloc(bytes); NULL is ignored. */
void eq_pages_free(void *block, size_t bytes);
/* Bytes held in blocks not yet given back (the tests' leak check). */
int64_t eq_pages_live(void);

#endif
