/* Weight packing at prepare time: the layouts that the GEMM kernels read, written in one pass
 * over the source weights. Runs once per weight tensor (edgeq/ops/common.py, edgeq/ops/qd8.py
 * call it through the executor); plain portable C, the same bytes on every CPU.
 */
#ifndef EDGEQ_PACK_H
#define EDGEQ_PACK_H
#include <stddef.h>
#include <stdint.h>

/* Floats eq_pack_f32_gemm writes for n output channels of depth k. */
size_t eq_pack_f32_gemm_size(int64_t n, int64_t k);

/* w [n][k] (channel major), bias [n] or NULL (zeros) -> the layout of edgeq/f32_gemm.h:
 * per block of EQ_F32_GEMM_NR channels, NR biases then k rows of NR weights, zeros past n. */
void eq_pack_f32_gemm(const float *w, const float *bias, int64_t n, int64_t k, float *out);

/* Bytes eq_pack_qd8_gemm writes for n channels of depth k, kr consecutive k per channel. */
size_t eq_pack_qd8_gemm_size(int64_t n, int64_t k, int32_t kr);

/* int8 w [n][k], scales [n], bias [n] -> the blob of edgeq/params/qd8.h with kr consecutive k
 * per channel (4: the c4 layout, 8: c8): per block of EQ_QD8_NR channels the int32 weight sums,
 * the kc / kr groups of NR x kr int8, NR scales and NR biases; zeros past n and past k. */
void eq_pack_qd8_gemm(const int8_t *w, const float *scales, const float *bias, int64_t n,
                      int64_t k, int32_t kr, uint8_t *out);

#endif
