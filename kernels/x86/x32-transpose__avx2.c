/* TRANSPOSE of 32-bit elements, AVX2, for the permutations that swap the two innermost dims
 * after prepare's collapsing (in_strides ending in [1, S]: attention heads' [64, 32] -> [32, 64]
 * in tiny_bert): each 2-D plane is moved in 8 x 8 blocks, loaded as 8 input rows and stored as 8
 * output rows after an in-register transpose, the edges element by element. Every other layout
 * goes to the reference strided copy. Elements are only moved, so results are identical. */
#include <immintrin.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/movement.h"

int eq_ref_strided_copy_x32(const eq_node *node, eq_ctx *ctx);

/* out[r * out_stride + c] = in[c * in_stride + r] for r, c < 8. */
static inline void block8x8(const float *in, int64_t in_stride, float *out, int64_t out_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * in_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(out + i * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(out + (i + 4) * out_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

/* The plane out[rows][cols] with out[a][b] = in[a + b * stride]. */
static void plane(const float *in, int64_t stride, float *out, int32_t rows, int32_t cols) {
  int32_t a = 0;
  for (; a + 8 <= rows; a += 8) {
    int32_t b = 0;
    for (; b + 8 <= cols; b += 8) block8x8(in + a + b * stride, stride, out + a * cols + b, cols);
    for (; b < cols; ++b)
      for (int32_t i = 0; i < 8; ++i) out[(a + i) * cols + b] = in[a + i + b * stride];
  }
  for (; a < rows; ++a)
    for (int32_t b = 0; b < cols; ++b) out[a * cols + b] = in[a + b * stride];
}

int eq_transpose_x32__avx2(const eq_node *node, eq_ctx *ctx) {
  const eq_strided_copy_params *p = (const eq_strided_copy_params *)node->params;
  const int32_t last = p->ndim - 1;
  if (last < 1 || p->in_strides[last - 1] != 1 || p->in_strides[last] <= 0)
    return eq_ref_strided_copy_x32(node, ctx);
  eq_tensor *out_t = node->outputs[0];
  if (out_t->count == 0) return 0;
  const float *src = (const float *)node->inputs[0]->data + p->in_offset;
  float *dst = (float *)out_t->data;
  const int32_t rows = p->dims[last - 1], cols = p->dims[last];
  const int64_t plane_size = (int64_t)rows * cols;
  /* an odometer over the dims before the plane */
  int32_t idx[EQ_MOVE_DIMS] = {0};
  int64_t pos = 0;
  for (;;) {
    plane(src + pos, p->in_strides[last], dst, rows, cols);
    dst += plane_size;
    int32_t k = last - 2;
    for (; k >= 0; --k) {
      pos += p->in_strides[k];
      if (++idx[k] < p->dims[k]) break;
      pos -= (int64_t)p->in_strides[k] * p->dims[k];
      idx[k] = 0;
    }
    if (k < 0) return 0;
  }
}
