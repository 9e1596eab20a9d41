/* Arena placement (edgeq/arena.h). The placed blocks are kept sorted by offset, so one walk
 * over them finds every gap between the ones a new block's lifetime overlaps: O(n^2) over a
 * graph's tensors, microseconds for the models in reach. */
#include "edgeq/arena.h"

#include <string.h>

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
