/* Reference elementwise kernels: binary ops with broadcasting. Scalar, readable: the spec. */
#include <math.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/elementwise.h"

static inline float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* Walks the broadcast index space: OP(a, b) for every output element. */
#define DEFINE_BINARY(NAME, T, EXPR, CLAMP)                                                  \
  static int NAME(const eq_node *node, eq_ctx *ctx) {                                        \
    (void)ctx;                                                                               \
    const eq_binary_params *p = (const eq_binary_params *)node->params;                      \
    const T *A = (const T *)node->inputs[0]->data;                                           \
    const T *B = (const T *)node->inputs[1]->data;                                           \
    T *out = (T *)node->outputs[0]->data;                                                    \
    const int32_t *d = p->out_dims, *sa = p->a_strides, *sb = p->b_strides;                  \
    for (int32_t i0 = 0; i0 < d[0]; ++i0)                                                    \
    for (int32_t i1 = 0; i1 < d[1]; ++i1)                                                    \
    for (int32_t i2 = 0; i2 < d[2]; ++i2)                                                    \
    for (int32_t i3 = 0; i3 < d[3]; ++i3)                                                    \
    for (int32_t i4 = 0; i4 < d[4]; ++i4) {                                                  \
      const T *a = A + (int64_t)i0 * sa[0] + (int64_t)i1 * sa[1] + (int64_t)i2 * sa[2] +    \
                   (int64_t)i3 * sa[3] + (int64_t)i4 * sa[4];                                \
      const T *b = B + (int64_t)i0 * sb[0] + (int64_t)i1 * sb[1] + (int64_t)i2 * sb[2] +    \
                   (int64_t)i3 * sb[3] + (int64_t)i4 * sb[4];                                \
      for (int32_t i5 = 0; i5 < d[5]; ++i5) {                                                \
        const T x = a[(int64_t)i5 * sa[5]], y = b[(int64_t)i5 * sb[5]];                      \
        T r = (EXPR);                                                                        \
        *out++ = CLAMP;                                                                      \
      }                                                                                      \
    }                                                                                        \
    return 0;                                                                                \
  }

#define FCLAMP clampf(r, p->act_min, p->act_max)
#define NOCLAMP r

DEFINE_BINARY(add_f32, float, x + y, FCLAMP)
DEFINE_BINARY(add_i32, int32_t, (int32_t)((uint32_t)x + (uint32_t)y), NOCLAMP)
DEFINE_BINARY(add_i64, int64_t, (int64_t)((uint64_t)x + (uint64_t)y), NOCLAMP)

const eq_kernel_info eq_ref_elementwise_kernels[] = {
    {"add_f32", add_f32, sizeof(eq_binary_params)},
    {"add_i32", add_i32, sizeof(eq_binary_params)},
    {"add_i64", add_i64, sizeof(eq_binary_params)},
    {NULL, NULL, 0},
};
