/* f32 ADD / SUB / MUL / PRELU / SQUARED_DIFFERENCE with broadcasting, AArch64 NEON: the reference
 * kernels' walk over the collapsed broadcast dims (same params, same results, bit for bit), with
 * the innermost dim done 8 and then 4 lanes at a time when both operands are contiguous along it
 * or one of them is broadcast (a bias, a per-channel scale). Runs of 4..16 elements against a
 * row repeated for each of them (PRELU's alpha of 8 channels over every pixel) go through one
 * tight loop with the row held in registers.
 *
 * The fused clamp is FMAX then FMIN, as the reference computes it on ARM: a NaN stays NaN and
 * clamp(-0, 0, hi) gives +0 (kernels/ref/elementwise.c). */
#include <arm_neon.h>
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"

static inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  return vminq_f32(vmaxq_f32(v, lo), hi);
}

/* x >= 0 ? x : x * alpha; a NaN x fails the compare and gives x * alpha, a NaN too. */
static inline float32x4_t prelu4(float32x4_t x, float32x4_t alpha) {
  return vbslq_f32(vcgezq_f32(x), x, vmulq_f32(x, alpha));
}

static inline float32x4_t add4(float32x4_t x, float32x4_t y) { return vaddq_f32(x, y); }
static inline float32x4_t sub4(float32x4_t x, float32x4_t y) { return vsubq_f32(x, y); }
static inline float32x4_t mul4(float32x4_t x, float32x4_t y) { return vmulq_f32(x, y); }

static inline float32x4_t squared_difference4(float32x4_t x, float32x4_t y) {
  const float32x4_t d = vsubq_f32(x, y);
  return vmulq_f32(d, d);
}

/* One innermost run of n outputs: a and b advance by sa / sb (0 or 1) per element. OP and
 * CLAMPED are constants after inlining, so each kernel gets its own straight loop. */
static inline __attribute__((always_inline)) void run(
    float32x4_t (*const op)(float32x4_t, float32x4_t), const int clamped, const float *a,
    int32_t sa, const float *b, int32_t sb, float *out, int32_t n, float32x4_t vlo,
    float32x4_t vhi) {
#define OUT(v) (clamped ? clamp4((v), vlo, vhi) : (v))
  int32_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + 8 <= n; i += 8) {
      vst1q_f32(out + i, OUT(op(vld1q_f32(a + i), vld1q_f32(b + i))));
      vst1q_f32(out + i + 4, OUT(op(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4))));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, OUT(op(vld1q_f32(a + i), vld1q_f32(b + i))));
  } else if (sa == 1 && sb == 0) {
    const float32x4_t y = vld1q_dup_f32(b);
    for (; i + 8 <= n; i += 8) {
      vst1q_f32(out + i, OUT(op(vld1q_f32(a + i), y)));
      vst1q_f32(out + i + 4, OUT(op(vld1q_f32(a + i + 4), y)));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, OUT(op(vld1q_f32(a + i), y)));
  } else if (sa == 0 && sb == 1) {
    const float32x4_t x = vld1q_dup_f32(a);
    for (; i + 8 <= n; i += 8) {
      vst1q_f32(out + i, OUT(op(x, vld1q_f32(b + i))));
      vst1q_f32(out + i + 4, OUT(op(x, vld1q_f32(b + i + 4))));
    }
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, OUT(op(x, vld1q_f32(b + i))));
  }
  /* the rest (and strides the vector loops do not take) one lane at a time, same operations */
  for (; i < n; ++i) {
    const float32x4_t x = vld1q_dup_f32(a + (int64_t)i * sa);
    const float32x4_t y = vld1q_dup_f32(b + (int64_t)i * sb);
    out[i] = vgetq_lane_f32(OUT(op(x, y)), 0);
  }
#undef OUT
}

/* `rows` innermost runs of Q * 4 outputs where one operand is a row repeated for every run (a
 * per-channel alpha, scale or bias of a few channels: the per-run overhead of run() would cost
 * more than the arithmetic): the repeated row r in registers, the varying operand v contiguous
 * from run to run. V_FIRST says which of the two is op's first operand. */
static inline __attribute__((always_inline)) void repeated_rows(
    float32x4_t (*const op)(float32x4_t, float32x4_t), const int clamped, const int v_first,
    const int Q, const float *v, const float *r, float *out, int32_t rows, float32x4_t vlo,
    float32x4_t vhi) {
  float32x4_t y[4];
  for (int k = 0; k < Q; ++k) y[k] = vld1q_f32(r + 4 * k);
  for (int32_t row = 0; row < rows; ++row, v += 4 * Q, out += 4 * Q) {
    for (int k = 0; k < Q; ++k) {
      const float32x4_t x = vld1q_f32(v + 4 * k);
      const float32x4_t o = v_first ? op(x, y[k]) : op(y[k], x);
      vst1q_f32(out + 4 * k, clamped ? clamp4(o, vlo, vhi) : o);
    }
  }
}

static inline __attribute__((always_inline)) void repeated_rows_q(
    float32x4_t (*const op)(float32x4_t, float32x4_t), const int clamped, const int v_first,
    int32_t q, const float *v, const float *r, float *out, int32_t rows, float32x4_t vlo,
    float32x4_t vhi) {
  switch (q) {
    case 1: repeated_rows(op, clamped, v_first, 1, v, r, out, rows, vlo, vhi); break;
    case 2: repeated_rows(op, clamped, v_first, 2, v, r, out, rows, vlo, vhi); break;
    case 3: repeated_rows(op, clamped, v_first, 3, v, r, out, rows, vlo, vhi); break;
    default: repeated_rows(op, clamped, v_first, 4, v, r, out, rows, vlo, vhi); break;
  }
}

static inline __attribute__((always_inline)) int binary(
    const eq_node *node, float32x4_t (*const op)(float32x4_t, float32x4_t), const int clamped) {
  const eq_binary_params *p = (const eq_binary_params *)node->params;
  const float *A = (const float *)node->inputs[0]->data;
  const float *B = (const float *)node->inputs[1]->data;
  float *out = (float *)node->outputs[0]->data;
  const int32_t *d = p->out_dims, *sa = p->a_strides, *sb = p->b_strides;
  const float32x4_t vlo = vdupq_n_f32(p->act_min), vhi = vdupq_n_f32(p->act_max);
  /* no activation (bounds +-inf): the clamp changes nothing, not even a NaN, and is left out */
  const int clamp = clamped && !(p->act_min == -INFINITY && p->act_max == INFINITY);
  const int32_t n = d[5];
  /* short runs (n = 4, 8, 12 or 16) against a repeated row: one operand steps by the run,
   * the other stays */
  const int short_runs =
      d[4] > 1 && n >= 4 && n <= 16 && n % 4 == 0 && sa[5] == 1 && sb[5] == 1;
  const int a_repeats = short_runs && sa[4] == 0 && sb[4] == n;
  const int b_repeats = short_runs && sb[4] == 0 && sa[4] == n;
  for (int32_t i0 = 0; i0 < d[0]; ++i0)
    for (int32_t i1 = 0; i1 < d[1]; ++i1)
      for (int32_t i2 = 0; i2 < d[2]; ++i2)
        for (int32_t i3 = 0; i3 < d[3]; ++i3) {
          const float *a = A + (int64_t)i0 * sa[0] + (int64_t)i1 * sa[1] + (int64_t)i2 * sa[2] +
                           (int64_t)i3 * sa[3];
          const float *b = B + (int64_t)i0 * sb[0] + (int64_t)i1 * sb[1] + (int64_t)i2 * sb[2] +
                           (int64_t)i3 * sb[3];
          if (b_repeats || a_repeats) {
            const float *v = b_repeats ? a : b, *r = b_repeats ? b : a;
            if (clamp && b_repeats)
              repeated_rows_q(op, 1, 1, n / 4, v, r, out, d[4], vlo, vhi);
            else if (clamp)
              repeated_rows_q(op, 1, 0, n / 4, v, r, out, d[4], vlo, vhi);
            else if (b_repeats)
              repeated_rows_q(op, 0, 1, n / 4, v, r, out, d[4], vlo, vhi);
            else
              repeated_rows_q(op, 0, 0, n / 4, v, r, out, d[4], vlo, vhi);
            out += (int64_t)d[4] * n;
            continue;
          }
          /* the innermost rows (a per-pixel channel row, say) step the operands by strides */
          for (int32_t i4 = 0; i4 < d[4]; ++i4, a += sa[4], b += sb[4], out += n) {
            if (clamp) {
              run(op, 1, a, sa[5], b, sb[5], out, n, vlo, vhi);
            } else {
              run(op, 0, a, sa[5], b, sb[5], out, n, vlo, vhi);
            }
          }
        }
  return 0;
}

/* PRELU and SQUARED_DIFFERENCE have no fused activation: they ignore the bounds. */
#define DEFINE_VBINARY(NAME, VOP, CLAMPED)                                                   \
  int NAME(const eq_node *node, eq_ctx *ctx) {                                               \
    (void)ctx;                                                                               \
    return binary(node, VOP, CLAMPED);                                                       \
  }

DEFINE_VBINARY(eq_f32_vadd__neon, add4, 1)
DEFINE_VBINARY(eq_f32_vsub__neon, sub4, 1)
DEFINE_VBINARY(eq_f32_vmul__neon, mul4, 1)
DEFINE_VBINARY(eq_f32_vprelu__neon, prelu4, 0)
DEFINE_VBINARY(eq_f32_vsquared_difference__neon, squared_difference4, 0)
