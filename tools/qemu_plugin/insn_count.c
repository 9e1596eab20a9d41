/* A qemu-user TCG plugin counting executed guest instructions, with markers.
 *
 *   qemu-aarch64 -plugin insn_count.so,out=FILE  PROGRAM ...
 *
 * Counts every guest instruction executed by every guest thread. The guest marks points of
 * interest with a system call no real program makes: lseek(-1, EQ_MARK_MAGIC + tag, 0) (fails
 * with EBADF, no side effect). At each marker the plugin writes "mark TAG COUNT" to FILE, and
 * "total COUNT" when the program exits, so the cost of a stretch of guest code is the
 * difference of two marks (benchmarks/arm_instructions.py).
 *
 * Counting: at translation time each block registers a callback adding its instruction count
 * to one atomic counter whenever it runs. Atomic, not qemu's inline add, because qemu-user
 * runs guest threads on host threads in parallel and inline adds would lose counts. A block
 * left early (a fault inside it) is still counted whole; for ordinary code that never
 * happens.
 *
 * qemu ships no plugin header in Debian's qemu-user, so the few declarations used are written
 * here from the public plugin API documentation (docs/devel/tcg-plugins.rst and
 * include/qemu/qemu-plugin.h of QEMU 7.2, API version 1; unchanged in later versions).
 * Build: gcc -shared -fPIC -O2 -o insn_count.so insn_count.c
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the plugin API subset (qemu-plugin.h, API version 1) ---- */
#define EQ_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through; its layout is not needed */
struct qemu_plugin_tb;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS,
                            QEMU_PLUGIN_CB_RW_REGS };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index,
                                              int64_t num, uint64_t a1, uint64_t a2,
                                              uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb,
                                          qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id,
                                          qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb,
                                    void *userdata);

EQ_PLUGIN_EXPORT int qemu_plugin_version = 1;
EQ_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                         int argc, char **argv);

/* ---- the counter ---- */
/* aarch64 Linux system call number of lseek (asm-generic/unistd.h), and the marker's offset
 * base: tags are small integers added to it. Keep in step with benchmarks/arm_instructions.py. */
#define EQ_NR_LSEEK_AARCH64 62
#define EQ_MARK_MAGIC UINT64_C(0x6564676571000000) /* "edgeq" */
#define EQ_MARK_TAGS UINT64_C(0x1000000)

static uint64_t executed;
static FILE *out;

static void on_block_run(unsigned int vcpu_index, void *n_insns) {
  (void)vcpu_index;
  __atomic_fetch_add(&executed, (uint64_t)(uintptr_t)n_insns, __ATOMIC_RELAXED);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  qemu_plugin_register_vcpu_tb_exec_cb(tb, on_block_run, QEMU_PLUGIN_CB_NO_REGS,
                                       (void *)(uintptr_t)n);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1,
                       uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6,
                       uint64_t a7, uint64_t a8) {
  (void)id, (void)vcpu_index, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
  /* fd is a C int: only its low 32 bits are meaningful in the register. */
  if (num != EQ_NR_LSEEK_AARCH64 || (int32_t)a1 != -1) return;
  if (a2 < EQ_MARK_MAGIC || a2 >= EQ_MARK_MAGIC + EQ_MARK_TAGS) return;
  fprintf(out, "mark %" PRIu64 " %" PRIu64 "\n", a2 - EQ_MARK_MAGIC,
          __atomic_load_n(&executed, __ATOMIC_RELAXED));
  fflush(out);
}

static void on_program_exit(qemu_plugin_id_t id, void *userdata) {
  (void)id, (void)userdata;
  fprintf(out, "total %" PRIu64 "\n", __atomic_load_n(&executed, __ATOMIC_RELAXED));
  fflush(out);
  if (out != stderr) fclose(out);
}

int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
  (void)info;
  out = stderr;
  for (int i = 0; i < argc; i++) {
    if (strncmp(argv[i], "out=", 4) == 0) {
      out = fopen(argv[i] + 4, "w");
      if (!out) {
        fprintf(stderr, "insn_count: cannot write %s\n", argv[i] + 4);
        return 1;
      }
    } else {
      fprintf(stderr, "insn_count: unknown argument %s (takes out=FILE)\n", argv[i]);
      return 1;
    }
  }
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
  qemu_plugin_register_atexit_cb(id, on_program_exit, NULL);
  return 0;
}
