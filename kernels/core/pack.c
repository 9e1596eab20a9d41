/* Weight packing (edgeq/pack.h). Each block of NR channels is written front to back, reading
 * the NR source rows it interleaves: their bytes stay in cache while the block fills. */
#include "edgeq/pack.h"

#include <string.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/qd8.h"

size_t eq_pack_f32_gemm_size(int64_t n, int64_t k) {
  const int64_t blocks = (n + EQ_F32_GEMM_NR - 1) / EQ_F32_GEMM_NR;
  return (size_t)blocks * (size_t)(k + 1) * EQ_F32_GEMM_NR;
}

void eq_pack_f32_gemm(const float *w, const float *bias, int64_t n, int64_t k, float *out) {
  enum { NR = EQ_F32_GEMM_NR };
  for (int64_t c0 = 0; c0 < n; c0 += NR) {
    const int64_t nc = n - c0 < NR ? n - c0 : NR;
    float *block = out + (c0 / NR) * (k + 1) * NR;
    for (int64_t j = 0; j < NR; ++j) block[j] = (j < nc && bias) ? bias[c0 + j] : 0.0f;
    const float *rows = w + c0 * k;
    if (nc == NR) {
      /* Eight k at a time: a NR x 8 tile read from NR rows, written as 8 rows of NR. */
      int64_t kk = 0;
      for (; kk + 8 <= k; kk += 8) {
        float *dst = block + (1 + kk) * NR;
        for (int64_t j = 0; j < NR; ++j) {
          const float *src = rows + j * k + kk;
          for (int i = 0; i < 8; ++i) dst[i * NR + j] = src[i];
        }
      }
      for (; kk < k; ++kk) {
        float *dst = block + (1 + kk) * NR;
        for (int64_t j = 0; j < NR; ++j) dst[j] = rows[j * k + kk];
      }
    } else {
      for (int64_t kk = 0; kk < k; ++kk) {
        float *dst = block + (1 + kk) * NR;
        for (int64_t j = 0; j < nc; ++j) dst[j] = rows[j * k + kk];
        for (int64_t j = nc; j < NR; ++j) dst[j] = 0.0f;
      }
    }
  }
}

size_t eq_pack_qd8_gemm_size(int64_t n, int64_t k, int32_t kr) {
  const int64_t kc = (k + kr - 1) / kr * kr;
  const int64_t blocks = (n + EQ_QD8_NR - 1) / EQ_QD8_NR;
  return (size_t)blocks * EQ_QD8_BLOCK_BYTES(kc);
}

void eq_pack_qd8_gemm(const int8_t *w, const float *scales, const float *bias, int64_t n,
                      int64_t k, int32_t kr, uint8_t *out) {
  enum { NR = EQ_QD8_NR };
  const int64_t kc = (k + kr - 1) / kr * kr;
  const int64_t groups = kc / kr;
  for (int64_t c0 = 0; c0 < n; c0 += NR) {
    const int64_t nc = n - c0 < NR ? n - c0 : NR;
    uint8_t *block = out + (size_t)(c0 / NR) * EQ_QD8_BLOCK_BYTES(kc);
    uint8_t *tiles = block + 4 * NR;
    int32_t sums[NR];
    float tail[2][NR];
    for (int64_t j = 0; j < NR; ++j) {
      int64_t sum = 0;
      if (j < nc) {
        const int8_t *row = w + (c0 + j) * k;
        for (int64_t kk = 0; kk < k; ++kk) sum += row[kk];
      }
      sums[j] = (int32_t)(uint32_t)sum; /* wraps as numpy's int32 sum would past 2^31 */
      tail[0][j] = j < nc ? scales[c0 + j] : 0.0f;
      tail[1][j] = j < nc && bias ? bias[c0 + j] : 0.0f;
    }
    memcpy(block, sums, sizeof sums);
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * kr;
      const int64_t len = k - k0 < kr ? k - k0 : kr;
      uint8_t *dst = tiles + (size_t)g * NR * kr;
      for (int64_t j = 0; j < NR; ++j, dst += kr) {
        if (j < nc && len == kr) {
          memcpy(dst, w + (c0 + j) * k + k0, (size_t)kr);
        } else {
          memset(dst, 0, (size_t)kr);
          if (j < nc) memcpy(dst, w + (c0 + j) * k + k0, (size_t)len);
        }
      }
    }
    memcpy(tiles + (size_t)kc * NR, tail, sizeof tail);
  }
}
