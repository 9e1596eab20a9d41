/* The per-inference loop: walk the compiled plan, one kernel call per node. */
#include <stdarg.h>
#include <stdio.h>

#include "edgeq/kernel.h"

int eq_fail(eq_ctx *ctx, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  vsnprintf(ctx->message, sizeof ctx->message, fmt, args);
  va_end(args);
  return -1;
}

int eq_run_plan(const eq_node *nodes, int32_t n, eq_ctx *ctx) {
  ctx->failed_node = -1;
  ctx->message[0] = '\0';
  for (int32_t i = 0; i < n; ++i) {
    if (nodes[i].run(&nodes[i], ctx) != 0) {
      ctx->failed_node = i;
      return -1;
    }
  }
  return 0;
}
