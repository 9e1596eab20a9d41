/* f32 RESIZE_BILINEAR, AArch64 NEON: the reference's coordinates (params/pool.h), 4 channels at
 * a time (the last 1..3 one at a time), output rows split across threads. Each output is
 * a (1-dy)(1-dx) + b dy (1-dx) + c (1-dy) dx + d dy dx with the four corner weights formed once
 * per pixel and the products fused into the sum, so results agree with the reference (which
 * multiplies by the two factors in turn) to float rounding, not bit for bit. */
#include <arm_neon.h>

#include "edgeq/dispatch.h"
#include "edgeq/params/pool.h"

static void resize_rows(void *arg, int64_t begin, int64_t end) {
  const eq_resize_job *j = (const eq_resize_job *)arg;
  const eq_resize_params *p = (const eq_resize_params *)j->node->params;
  const float *in = (const float *)j->node->inputs[0]->data;
  float *out_all = (float *)j->node->outputs[0]->data;
  const int64_t C = p->channels;
  for (int64_t row = begin; row < end; ++row) {
    const float *row0, *row1;
    float dy;
    eq_bilinear_rows(p, j->scale_h, in, row, &row0, &row1, &dy);
    float *out = out_all + row * p->out_w * C;
    for (int32_t ox = 0; ox < p->out_w; ++ox, out += C) {
      float sx;
      int32_t x0, x1;
      eq_bilinear_source(ox, j->scale_w, p->half_pixel_centers, p->in_w, &sx, &x0, &x1);
      const float dx = sx - (float)x0;
      const float w_a = (1 - dy) * (1 - dx), w_b = dy * (1 - dx);
      const float w_c = (1 - dy) * dx, w_d = dy * dx;
      const float *a = row0 + (int64_t)x0 * C, *bb = row1 + (int64_t)x0 * C;
      const float *c = row0 + (int64_t)x1 * C, *d = row1 + (int64_t)x1 * C;
      int64_t k = 0;
      for (; k + 4 <= C; k += 4) {
        float32x4_t v = vmulq_n_f32(vld1q_f32(a + k), w_a);
        v = vfmaq_n_f32(v, vld1q_f32(bb + k), w_b);
        v = vfmaq_n_f32(v, vld1q_f32(c + k), w_c);
        v = vfmaq_n_f32(v, vld1q_f32(d + k), w_d);
        vst1q_f32(out + k, v);
      }
      for (; k < C; ++k) out[k] = a[k] * w_a + bb[k] * w_b + c[k] * w_c + d[k] * w_d;
    }
  }
}

int eq_f32_resize_bilinear__neon(const eq_node *node, eq_ctx *ctx) {
  return eq_resize_bilinear_run(node, ctx, resize_rows);
}
