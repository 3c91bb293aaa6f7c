/* Benchmark harness for an exported hartool library: classifies windows of raw samples and prints, per window,
 * the label and every graph output's bytes in hex (bit-exact comparison across builds), plus on the board the
 * SysTick ticks hartool_classify took. Windows come from stdin (host) or a linked array (HARTOOL_WINDOWS_LINKED). */
#include <stdint.h>
#include <stdio.h>

#include "hartool_graph.h"
#include "hartool_model.h"

#ifdef HARTOOL_WINDOWS_LINKED
extern const float hartool_test_windows[][HARTOOL_WINDOW * HARTOOL_CHANNELS];
extern const int hartool_test_window_count;
#endif
#ifdef HARTOOL_SYSTICK
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
/* Stack high-water mark: 64 KB below main()'s frame is painted, then scanned from the bottom afterwards
 * (far above newlib's heap, which grows up from the end of .bss). */
#define PAINT_WORDS (64u * 1024u / 4u)
static volatile uint32_t *paint_bottom;  /* volatile: the compiler may not drop stores below the stack */
static uint32_t paint(void) {
  volatile uint32_t here;
  const uintptr_t top = (uintptr_t)&here - 256u;
  volatile uint32_t *p = (volatile uint32_t *)(top - PAINT_WORDS * 4u);
  paint_bottom = p;
  while ((uintptr_t)p < top) *p++ = 0xA5A5A5A5u;
  return (uint32_t)(uintptr_t)&here;
}
static uint32_t stack_used(uint32_t top) {
  volatile const uint32_t *p = paint_bottom;
  while (*p == 0xA5A5A5A5u) ++p;
  return top - (uint32_t)(uintptr_t)p;
}
/* instructions per SysTick tick under qemu -icount: a block of 1024 single-instruction NOPs. */
static uint32_t nop_ticks(void) {
  uint32_t t0, t1;
  SYST_CVR = 0;
  t0 = SYST_CVR;
  __asm volatile(".rept 1024\n nop\n .endr");
  t1 = SYST_CVR;
  return (t0 - t1) & 0xFFFFFFu;
}
#endif

#ifdef HARTOOL_PROFILE
/* Per-op SysTick ticks summed over all windows: the graph calls this before each op and after the last. The
 * counter is re-read on the way out so the hook's own instructions are (almost) not charged to an op. */
#define MAX_OPS 256
static uint32_t op_ticks[MAX_OPS];
static int last_op = -1, ops_seen;
static uint32_t last_cvr;
void hartool_profile_mark(int op) {
  const uint32_t now = SYST_CVR;
  if (last_op >= 0 && last_op < MAX_OPS) op_ticks[last_op] += (last_cvr - now) & 0xFFFFFFu;
  if (op + 1 > ops_seen) ops_seen = op + 1;
  last_op = op;
  last_cvr = SYST_CVR;
}
#endif

static const float *next_window(int i, float *buf) {
#ifdef HARTOOL_WINDOWS_LINKED
  (void)buf;
  return i < hartool_test_window_count ? hartool_test_windows[i] : 0;
#else
  (void)i;
  return fread(buf, sizeof(float), HARTOOL_WINDOW * HARTOOL_CHANNELS, stdin) ==
         (size_t)(HARTOOL_WINDOW * HARTOOL_CHANNELS) ? buf : 0;
#endif
}

int main(void) {
  static float buf[HARTOOL_WINDOW * HARTOOL_CHANNELS];
  const float *w;
  int i, k;
  unsigned j;
#ifdef HARTOOL_SYSTICK
  const uint32_t top = paint();
  SYST_RVR = 0xFFFFFFu;
  SYST_CSR = 5u;  /* enabled, processor clock, no interrupt */
  printf("calibration %lu ticks per 1024 instructions\n", (unsigned long)nop_ticks());
#endif
  for (i = 0; (w = next_window(i, buf)) != 0; ++i) {
    unsigned long ticks = 0;
    int label;
#ifdef HARTOOL_SYSTICK
    uint32_t t0;
    SYST_CVR = 0;
    t0 = SYST_CVR;
#ifdef HARTOOL_PROFILE
    last_op = -1;
#endif
    label = hartool_classify(w, 0);
    ticks = (t0 - SYST_CVR) & 0xFFFFFFu;
#else
    label = hartool_classify(w, 0);
#endif
    printf("%d %d %lu ", i, label, ticks);
    for (k = 0; k < HARTOOL_GRAPH_OUTPUTS; ++k) {
      const uint8_t *b = (const uint8_t *)hartool_graph_output(k);
      for (j = 0; j < hartool_graph_output_bytes[k]; ++j) printf("%02x", b[j]);
    }
    printf("\n");
  }
#ifdef HARTOOL_SYSTICK
  printf("stack %lu bytes\n", (unsigned long)stack_used(top));
#endif
#ifdef HARTOOL_PROFILE
  for (k = 0; k + 1 < ops_seen && k < MAX_OPS; ++k) printf("op %d %lu\n", k, (unsigned long)op_ticks[k]);
#endif
  return 0;
}
