/* Index walks shared by the reference kernels and their ISA variants, so every variant visits
 * the same elements in the same order as the spec. */
#ifndef EDGEQ_WALK_H
#define EDGEQ_WALK_H
#include <stdint.h>

#include "edgeq/params/reduce.h"

/* The in-bounds part [*lo, *hi) of a pooling window of `filter` taps starting at `origin`
 * (which may be negative with SAME padding) over an axis of `size` elements, as offsets into
 * the window. */
static inline void eq_window_span(int64_t origin, int32_t filter, int32_t size, int32_t *lo,
                                  int32_t *hi) {
  const int64_t l = origin < 0 ? -origin : 0;
  int64_t h = size - origin < filter ? size - origin : filter;
  if (h < l) h = l;
  *lo = (int32_t)(l < filter ? l : filter);
  *hi = (int32_t)(h < filter ? h : filter);
}

/* Reductions walk the collapsed input one innermost row at a time; an odometer idx over the
 * outer dims tracks the output offset o of the row, so no index is ever divided. Returns the
 * next row's offset. */
static inline int64_t eq_reduce_next_row(const eq_reduce_params *p, int32_t *idx, int64_t o) {
  for (int32_t d = p->ndim - 2; d >= 0; --d) {
    if (++idx[d] < p->dims[d]) return o + p->out_strides[d];
    idx[d] = 0;
    o -= (int64_t)(p->dims[d] - 1) * p->out_strides[d];
  }
  return o;
}

#endif
