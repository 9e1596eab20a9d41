/* f32 MEAN, AVX2: the reference's walk (the collapsed input in row-major order, an odometer
 * over the outer dims). A kept innermost dim is summed 8 slots at a time, each output adding
 * its inputs in the reference's order (bit-identical: MEAN over H, W of NHWC, as in
 * squeeze-and-excite blocks); a reduced innermost row (a layer norm's mean over the last axis)
 * is summed in 2 x 8 lanes and then across them, a reassociation of the reference's sum. */
#include <immintrin.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/reduce.h"

/* a[j] += rows[0][j] + rows[1][j] + ... + rows[n - 1][j] in that order (each row `inner` long),
 * 64 slots at a time held in registers: adding each row into memory waited on a store and a
 * reload per row (tiny_bert's MEAN of [64, 128] over the 64: 1.1 us). */
static void column_sums(const float *in, int32_t inner, int32_t n, float *a) {
  int32_t j = 0;
  for (; j + 64 <= inner; j += 64) {
    __m256 acc[8];
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_loadu_ps(a + j + 8 * k);
    for (int32_t r = 0; r < n; ++r) {
      const float *x = in + (int64_t)r * inner + j;
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(x + 8 * k));
    }
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(a + j + 8 * k, acc[k]);
  }
  for (; j + 8 <= inner; j += 8) {
    __m256 acc = _mm256_loadu_ps(a + j);
    for (int32_t r = 0; r < n; ++r)
      acc = _mm256_add_ps(acc, _mm256_loadu_ps(in + (int64_t)r * inner + j));
    _mm256_storeu_ps(a + j, acc);
  }
  for (; j < inner; ++j) {
    float v = a[j];
    for (int32_t r = 0; r < n; ++r) v += in[(int64_t)r * inner + j];
    a[j] = v;
  }
}

static void walk_sum(const eq_reduce_params *p, const float *in, int64_t in_count, float *acc) {
  const int32_t nd = p->ndim;
  const int32_t inner = p->dims[nd - 1];
  if (in_count == 0 || inner == 0) return;
  const int64_t rows = in_count / inner;
  const int inner_reduced = p->out_strides[nd - 1] == 0;
  int32_t idx[EQ_MAX_DIMS] = {0};
  int64_t o = 0;
  for (int64_t r = 0; r < rows; ++r, in += inner) {
    float *a = acc + o;
    if (inner_reduced) {
      int32_t j = 0;
      float v = 0.0f;
      if (inner >= 16) {
        /* two chains of adds, so that a row waits on half as many dependent adds */
        __m256 lanes = _mm256_loadu_ps(in), lanes1 = _mm256_loadu_ps(in + 8);
        for (j = 16; j + 16 <= inner; j += 16) {
          lanes = _mm256_add_ps(lanes, _mm256_loadu_ps(in + j));
          lanes1 = _mm256_add_ps(lanes1, _mm256_loadu_ps(in + j + 8));
        }
        lanes = _mm256_add_ps(lanes, lanes1);
        for (; j + 8 <= inner; j += 8) lanes = _mm256_add_ps(lanes, _mm256_loadu_ps(in + j));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(lanes), _mm256_extractf128_ps(lanes, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        v = _mm_cvtss_f32(_mm_add_ss(h, _mm_shuffle_ps(h, h, 1)));
      }
      for (; j < inner; ++j) v += in[j];
      *a += v;
    } else if (nd >= 2 && p->out_strides[nd - 2] == 0 && idx[nd - 2] == 0) {
      /* a run of rows reduced into the same output row: all of them at once, the odometer
       * then stepping from the run's last row */
      const int32_t run = p->dims[nd - 2];
      column_sums(in, inner, run, a);
      in += (int64_t)(run - 1) * inner;
      r += run - 1;
      idx[nd - 2] = run - 1;
    } else {
      int32_t j = 0;
      for (; j + 8 <= inner; j += 8)
        _mm256_storeu_ps(a + j, _mm256_add_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(in + j)));
      for (; j < inner; ++j) a[j] += in[j];
    }
    for (int32_t d = nd - 2; d >= 0; --d) {
      if (++idx[d] < p->dims[d]) {
        o += p->out_strides[d];
        break;
      }
      idx[d] = 0;
      o -= (int64_t)(p->dims[d] - 1) * p->out_strides[d];
    }
  }
}

int eq_f32_mean__avx2(const eq_node *node, eq_ctx *ctx) {
  (void)ctx;
  const eq_reduce_params *p = (const eq_reduce_params *)node->params;
  const eq_tensor *x = node->inputs[0];
  eq_tensor *y = node->outputs[0];
  float *out = (float *)y->data;
  const int64_t n = y->count > 0 ? x->count / y->count : 0;
  for (int64_t i = 0; i < y->count; ++i) out[i] = 0.0f;
  walk_sum(p, (const float *)x->data, x->count, out);
  for (int64_t i = 0; i < y->count; ++i) out[i] = n > 0 ? out[i] / (float)n : NAN;
  return 0;
}
