/* Weight packing (edgeq/pack.h). Each block of NR channels is written front to back from the
 * NR source rows it interleaves, whose bytes stay in cache while the block fills. Values move
 * as raw 32-bit words (no float loads: NaN payloads and signed zeros stay as they are). */
#include "edgeq/pack.h"

#include <string.h>

#include "edgeq/f32_gemm.h"
#include "edgeq/params/qd8.h"

size_t eq_pack_f32_gemm_size(int64_t n, int64_t k) {
  const int64_t blocks = (n + EQ_F32_GEMM_NR - 1) / EQ_F32_GEMM_NR;
  return (size_t)blocks * (size_t)(k + 1) * EQ_F32_GEMM_NR;
}

/* One full block: rows [NR][k] -> dst [k][NR], in 4 x 4 tiles (4 loads from each of 4 rows,
 * 4 stores of 4 neighbours). */
static void transpose_full_block(const uint32_t *rows, int64_t k, uint32_t *dst) {
  enum { NR = EQ_F32_GEMM_NR };
  int64_t kk = 0;
  for (; kk + 4 <= k; kk += 4) {
    uint32_t *out = dst + kk * NR;
    for (int j = 0; j < NR; j += 4) {
      const uint32_t *r0 = rows + j * k + kk, *r1 = r0 + k, *r2 = r1 + k, *r3 = r2 + k;
      for (int i = 0; i < 4; ++i) {
        out[i * NR + j] = r0[i];
        out[i * NR + j + 1] = r1[i];
        out[i * NR + j + 2] = r2[i];
        out[i * NR + j + 3] = r3[i];
      }
    }
  }
  for (; kk < k; ++kk) {
    for (int j = 0; j < NR; ++j) dst[kk * NR + j] = rows[j * k + kk];
  }
}

void eq_pack_f32_gemm(const float *w, const float *bias, int64_t n, int64_t k, float *out) {
  enum { NR = EQ_F32_GEMM_NR };
  const uint32_t *words = (const uint32_t *)w;
  const uint32_t *bias_words = (const uint32_t *)bias;
  for (int64_t c0 = 0; c0 < n; c0 += NR) {
    const int64_t nc = n - c0 < NR ? n - c0 : NR;
    uint32_t *block = (uint32_t *)out + (c0 / NR) * (k + 1) * NR;
    for (int64_t j = 0; j < NR; ++j) block[j] = (j < nc && bias) ? bias_words[c0 + j] : 0;
    const uint32_t *rows = words + c0 * k;
    if (nc == NR) {
      transpose_full_block(rows, k, block + NR);
      continue;
    }
    for (int64_t kk = 0; kk < k; ++kk) {
      uint32_t *dst = block + (1 + kk) * NR;
      for (int64_t j = 0; j < nc; ++j) dst[j] = rows[j * k + kk];
      for (int64_t j = nc; j < NR; ++j) dst[j] = 0;
    }
  }
}

size_t eq_pack_qd8_gemm_size(int64_t n, int64_t k, int32_t kr) {
  const int64_t kc = (k + kr - 1) / kr * kr;
  const int64_t blocks = (n + EQ_QD8_NR - 1) / EQ_QD8_NR;
  return (size_t)blocks * EQ_QD8_BLOCK_BYTES(kc);
}

/* The kc / kr groups of one channel's row into its column of the tiles (stride NR * kr). */
static void scatter_row_groups(const int8_t *row, int64_t k, int32_t kr, uint8_t *dst) {
  const size_t stride = (size_t)EQ_QD8_NR * (size_t)kr;
  int64_t k0 = 0;
  if (kr == 4) {
    for (; k0 + 4 <= k; k0 += 4, dst += stride) memcpy(dst, row + k0, 4);
  } else {
    for (; k0 + 8 <= k; k0 += 8, dst += stride) memcpy(dst, row + k0, 8);
  }
  if (k0 < k) {
    memset(dst, 0, (size_t)kr);
    memcpy(dst, row + k0, (size_t)(k - k0));
  }
}

/* Sum of a row of int8, mod 2^32 as numpy's int32 sum gives it. Eight bytes at a time in one
 * 64-bit word: each byte offset by 128 (now 0..255), added pairwise into four 16-bit lanes, which
 * hold 128 words (128 * 510 < 2^16) before they are folded into the total. */
static int32_t row_sum(const int8_t *row, int64_t k) {
  const uint64_t lanes = 0x00FF00FF00FF00FFull, offset = 0x8080808080808080ull;
  int64_t total = 0, kk = 0;
  while (kk + 8 <= k) {
    const int64_t stop = k - kk > 8 * 128 ? kk + 8 * 128 : k;
    uint64_t acc = 0;
    for (; kk + 8 <= stop; kk += 8) {
      uint64_t x;
      memcpy(&x, row + kk, 8);
      x ^= offset;
      acc += (x & lanes) + ((x >> 8) & lanes);
    }
    acc = (acc & 0x0000FFFF0000FFFFull) + ((acc >> 16) & 0x0000FFFF0000FFFFull);
    total += (int64_t)((acc & 0xFFFFFFFFull) + (acc >> 32));
  }
  total -= 128 * kk;
  for (; kk < k; ++kk) total += row[kk];
  return (int32_t)(uint32_t)(uint64_t)total;
}

void eq_pack_qd8_gemm(const int8_t *w, const float *scales, const float *bias, int64_t n,
                      int64_t k, int32_t kr, uint8_t *out) {
  enum { NR = EQ_QD8_NR };
  const int64_t kc = (k + kr - 1) / kr * kr;
  for (int64_t c0 = 0; c0 < n; c0 += NR) {
    const int64_t nc = n - c0 < NR ? n - c0 : NR;
    uint8_t *block = out + (size_t)(c0 / NR) * EQ_QD8_BLOCK_BYTES(kc);
    uint8_t *tiles = block + 4 * NR;
    int32_t sums[NR];
    uint32_t tail[2][NR]; /* scales, biases as raw words */
    if (nc < NR) memset(tiles, 0, (size_t)kc * NR);
    for (int64_t j = 0; j < NR; ++j) {
      sums[j] = 0;
      if (j < nc) {
        const int8_t *row = w + (c0 + j) * k;
        sums[j] = row_sum(row, k);
        scatter_row_groups(row, k, kr, tiles + j * kr);
      }
      tail[0][j] = j < nc ? ((const uint32_t *)scales)[c0 + j] : 0;
      tail[1][j] = j < nc && bias ? ((const uint32_t *)bias)[c0 + j] : 0;
    }
    memcpy(block, sums, sizeof sums);
    memcpy(tiles + (size_t)kc * NR, tail, sizeof tail);
  }
}
