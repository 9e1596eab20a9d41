/* The activation arena's layout (edgeq/plan/planner.py): n blocks with byte sizes and
 * lifetimes in node steps, placed in a given order so that no two blocks alive at the same
 * step share a byte. */
#ifndef EDGEQ_ARENA_H
#define EDGEQ_ARENA_H
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

#endif
