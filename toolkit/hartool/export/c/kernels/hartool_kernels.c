/* hartool C kernels: TFLite's reference int8 arithmetic (what TFLite Micro runs), written for C99.
 * Every rounding step follows TFLite's reference kernels so outputs are bit-exact with TFLite Micro. */
#include "hartool_kernels.h"

#include <string.h>

#define HK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define HK_MAX(a, b) ((a) > (b) ? (a) : (b))
#define HK_CLAMP(v, lo, hi) HK_MIN(HK_MAX((v), (lo)), (hi))

/* int32 wrap-around add/shift without signed-overflow undefined behaviour (gemmlowp relies on wrapping). */
static int32_t hk_wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }
static int32_t hk_wrap_shl(int32_t a, int n) { return (int32_t)((uint32_t)a << n); }

int32_t hk_srdhm(int32_t a, int32_t b) {
  int64_t ab;
  int32_t nudge;
  if (a == b && a == INT32_MIN) return INT32_MAX;
  ab = (int64_t)a * (int64_t)b;
  nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
  ab += nudge;
  /* ab / 2^31 rounding toward zero, with shifts: a 64-bit division is a library call on 32-bit cores */
  return (int32_t)(ab >= 0 ? ab >> 31 : -((-ab) >> 31));
}

int32_t hk_rdbpot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier for the multipliers TFLite computes (0 <= multiplier < 2^31, so SRDHM never
 * saturates), bit-exact and branch-light:
 * - SRDHM's sign-dependent nudge then truncation toward zero equals floor(t / 2^31) with t = a*b + 2^30 for
 *   every sign (for a*b < 0: trunc((ab + 1 - 2^30) / 2^31) = ceil(..) = floor((ab + 2^30) / 2^31));
 * - RoundingDivideByPOT(q, e) = floor((q + 2^(e-1) - (q < 0)) / 2^e), and q < 0 exactly when t < 0; nested
 *   floors collapse, so the result is floor((t + 2^(30+e) - (t < 0) * 2^31) / 2^(31+e)): the high word of that
 *   sum shifted by e - 1. One 64-bit multiply-add, no overflow anywhere (the sum stays in int64). */
static int32_t hk_requant_parts(int32_t x, int32_t multiplier, int left, int right) {
  int64_t t = (int64_t)hk_wrap_shl(x, left) * multiplier + (1 << 30);
  if (right == 0) return (int32_t)(t >> 31);
  t += ((int64_t)1 << (30 + right)) - (t < 0 ? ((int64_t)1 << 31) : 0);
  return (int32_t)(t >> 32) >> (right - 1);
}

int32_t hk_requant(int32_t x, int32_t multiplier, int shift) {
  return hk_requant_parts(x, multiplier, shift > 0 ? shift : 0, shift > 0 ? 0 : -shift);
}

/* SaturatingRoundingMultiplyByPOT with a positive exponent: a saturating left shift. */
static int32_t hk_sat_shl(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return hk_wrap_shl(x, exponent);
}

/* std::round (halves away from zero) of a float already clamped to +-512, without a libm call: truncation,
 * then one step away from zero when the dropped fraction is >= 1/2 (v - trunc(v) is exact in float). */
static int32_t hk_round(float v) {
  int32_t t = (int32_t)v;
  const float frac = v - (float)t;
  if (frac >= 0.5f) ++t;
  else if (frac <= -0.5f) --t;
  return t;
}

void hk_quantize(const float *in, int8_t *out, int n, float scale, int32_t zero_point) {
  int i;
  for (i = 0; i < n; ++i) {
    float q = in[i] / scale;
    int32_t v;
    /* beyond +-512 every value saturates to the same int8 (|zero_point| <= 128); NaN stays NaN and is
     * clamped like +512 here (the int conversion of NaN would be undefined) */
    q = q < -512.0f ? -512.0f : (q <= 512.0f ? q : 512.0f);
    v = hk_round(q) + zero_point;
    out[i] = (int8_t)HK_CLAMP(v, -128, 127);
  }
}

/* TFLite computes double(scale) * (q - zero_point) and rounds to float. The product of a float scale and an
 * integer under 2^9 is exact in double, so rounding it once to float equals one float multiplication (also
 * correctly rounded): bit-identical, and no soft-float double arithmetic on single-precision FPUs. */
void hk_dequantize(const int8_t *in, float *out, int n, float scale, int32_t zero_point) {
  int i;
  for (i = 0; i < n; ++i) out[i] = scale * (float)((int32_t)in[i] - zero_point);
}

/* Dot product of two int8 vectors. On Cortex-M cores with the DSP extension (M4, M7, M33) four products take
 * two word loads, four SXTB16 and two SMLAD; elsewhere plain C. Integer sums are exact either way. */
#if defined(__ARM_FEATURE_DSP)
static uint32_t hk_sxtb16(uint32_t x) { uint32_t r; __asm("sxtb16 %0, %1" : "=r"(r) : "r"(x)); return r; }
static uint32_t hk_sxtb16_ror8(uint32_t x) {
  uint32_t r; __asm("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x)); return r;
}
static int32_t hk_smlad(uint32_t a, uint32_t b, int32_t acc) {
  int32_t r; __asm("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc)); return r;
}
#endif

static int32_t hk_dot(const int8_t *a, const int8_t *b, int n) {
  int32_t acc = 0;
  int i = 0;
#if defined(__ARM_FEATURE_DSP)
  for (; i + 4 <= n; i += 4) {
    uint32_t x, y;
    memcpy(&x, a + i, 4);  /* one unaligned word load on these cores */
    memcpy(&y, b + i, 4);
    acc = hk_smlad(hk_sxtb16(x), hk_sxtb16(y), acc);
    acc = hk_smlad(hk_sxtb16_ror8(x), hk_sxtb16_ror8(y), acc);
  }
#else
  for (; i + 4 <= n; i += 4)
    acc += a[i] * b[i] + a[i + 1] * b[i + 1] + a[i + 2] * b[i + 2] + a[i + 3] * b[i + 3];
#endif
  for (; i < n; ++i) acc += a[i] * b[i];
  return acc;
}

/* acc[j] += dot(x, w + j * w_stride) for j < 4: the input is loaded (and on DSP cores unpacked) once for
 * four output channels. */
static void hk_dot4(const int8_t *x, const int8_t *w, int w_stride, int n, int32_t acc[4]) {
  int i = 0, j;
#if defined(__ARM_FEATURE_DSP)
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  const int8_t *w1 = w + w_stride, *w2 = w1 + w_stride, *w3 = w2 + w_stride;
  for (; i + 4 <= n; i += 4) {
    uint32_t v, y;
    uint32_t lo, hi;
    memcpy(&v, x + i, 4);
    lo = hk_sxtb16(v);
    hi = hk_sxtb16_ror8(v);
    memcpy(&y, w + i, 4);
    a0 = hk_smlad(hi, hk_sxtb16_ror8(y), hk_smlad(lo, hk_sxtb16(y), a0));
    memcpy(&y, w1 + i, 4);
    a1 = hk_smlad(hi, hk_sxtb16_ror8(y), hk_smlad(lo, hk_sxtb16(y), a1));
    memcpy(&y, w2 + i, 4);
    a2 = hk_smlad(hi, hk_sxtb16_ror8(y), hk_smlad(lo, hk_sxtb16(y), a2));
    memcpy(&y, w3 + i, 4);
    a3 = hk_smlad(hi, hk_sxtb16_ror8(y), hk_smlad(lo, hk_sxtb16(y), a3));
  }
  acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
#endif
  if (i < n)
    for (j = 0; j < 4; ++j) acc[j] += hk_dot(x + i, w + j * w_stride + i, n - i);
}

static int32_t hk_sum(const int8_t *a, int n) {
  int32_t s = 0;
  int i;
  for (i = 0; i < n; ++i) s += a[i];
  return s;
}

/* Accumulates sum(w * x) over the taps inside the input for output channels oc..oc+nb-1 (nb <= 4). */
static void hk_conv_taps(const hk_conv_params *p, const int8_t *in, int y0, int x0, const int k[4], int oc, int nb,
                         int32_t acc[4]) {
  const int filter_stride = p->k_h * p->k_w * p->in_c;
  int ky, kx, j;
  for (ky = k[2]; ky < k[3]; ++ky) {
    const int8_t *src = in + ((y0 + ky * p->dil_h) * p->in_w + x0) * p->in_c;
    const int8_t *w = p->filter + (oc * p->k_h + ky) * p->k_w * p->in_c;
    /* with dil_w == 1 the taps of one filter row are contiguous in both tensors: one dot product */
    const int step = p->dil_w == 1 ? k[1] - k[0] : 1;
    for (kx = k[0]; kx < k[1]; kx += step) {
      const int8_t *xs = src + kx * p->dil_w * p->in_c, *ws = w + kx * p->in_c;
      if (nb == 4) {
        hk_dot4(xs, ws, filter_stride, step * p->in_c, acc);
      } else {
        for (j = 0; j < nb; ++j) acc[j] += hk_dot(xs, ws + j * filter_stride, step * p->in_c);
      }
    }
  }
}

/* sum over taps of w * (x + in_offset) = sum(w * x) + in_offset * sum(w): the filter sums over all taps are
 * fixed at export, so only windows cut by the padding (skipped taps add nothing, as in TFLite) sum at run time. */
void hk_conv2d(const hk_conv_params *p, const int8_t *in, int8_t *out) {
  int oy, ox, oc, ky, kx, j;
  for (oy = 0; oy < p->out_h; ++oy) {
    for (ox = 0; ox < p->out_w; ++ox) {
      const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
      int k[4] = {0, p->k_w, 0, p->k_h};  /* valid taps: kx in [k0, k1), ky in [k2, k3) */
      int full;
      while (k[0] < k[1] && x0 + k[0] * p->dil_w < 0) ++k[0];
      while (k[1] > k[0] && x0 + (k[1] - 1) * p->dil_w >= p->in_w) --k[1];
      while (k[2] < k[3] && y0 + k[2] * p->dil_h < 0) ++k[2];
      while (k[3] > k[2] && y0 + (k[3] - 1) * p->dil_h >= p->in_h) --k[3];
      full = k[0] == 0 && k[1] == p->k_w && k[2] == 0 && k[3] == p->k_h;
      for (oc = 0; oc < p->out_c; oc += 4) {
        const int nb = p->out_c - oc < 4 ? p->out_c - oc : 4;
        int32_t acc[4] = {0, 0, 0, 0};
        hk_conv_taps(p, in, y0, x0, k, oc, nb, acc);
        for (j = 0; j < nb; ++j) {
          int32_t wsum = 0, v;
          if (full) {
            wsum = p->filter_sums[oc + j];
          } else {
            for (ky = k[2]; ky < k[3]; ++ky)
              for (kx = k[0]; kx < k[1]; ++kx)
                wsum += hk_sum(p->filter + (((oc + j) * p->k_h + ky) * p->k_w + kx) * p->in_c, p->in_c);
          }
          v = acc[j] + p->in_offset * wsum + (p->bias ? p->bias[oc + j] : 0);
          v = hk_requant(v, p->multiplier[oc + j], p->shift[oc + j]) + p->out_offset;
          out[(oy * p->out_w + ox) * p->out_c + oc + j] = (int8_t)HK_CLAMP(v, p->act_min, p->act_max);
        }
      }
    }
  }
}

/* hk_conv1d works on words holding two int16 halves. hk_split turns four int8 values (one word) into the
 * pairs (v0, v2) and (v1, v3): one SXTB16 each on cores with the DSP extension (M4, M7, M33). Splitting the
 * inputs and the weights the same way keeps the pairs matched, so hk_mac2 (SMLAD: two multiply-accumulates
 * in one instruction) needs no reordering of either. Elsewhere the same words are built and used in plain C. */
static uint32_t hk_ld32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
#if defined(__ARM_FEATURE_DSP)
static void hk_split(uint32_t v, uint32_t *even, uint32_t *odd) {
  *even = hk_sxtb16(v);
  *odd = hk_sxtb16_ror8(v);
}
static int32_t hk_mac2(int32_t acc, uint32_t x, uint32_t w) { return hk_smlad(x, w, acc); }
#else
static uint32_t hk_pair(uint32_t lo, uint32_t hi) {
  return (uint32_t)(uint16_t)(int16_t)(int8_t)lo | (uint32_t)(uint16_t)(int16_t)(int8_t)hi << 16;
}
static void hk_split(uint32_t v, uint32_t *even, uint32_t *odd) {
  *even = hk_pair(v, v >> 16);
  *odd = hk_pair(v >> 8, v >> 24);
}
static int32_t hk_mac2(int32_t acc, uint32_t x, uint32_t w) {
  return acc + (int16_t)(x & 0xFFFFu) * (int16_t)(w & 0xFFFFu) + (int16_t)(x >> 16) * (int16_t)(w >> 16);
}
#endif

/* HK_CLAMP as a function: its argument below is a requantization call, which the macro would evaluate twice. */
static int8_t hk_out8(int32_t v, int32_t lo, int32_t hi) {
  if (v < lo) v = lo;
  if (v > hi) v = hi;
  return (int8_t)v;
}

/* The input row between zero-point padding, so a padded tap adds w * (zero_point + in_offset) = 0 as
 * TFLite's skipped taps do, and every window is a full dot product without bounds checks. */
static void hk_conv1d_pad(const hk_conv1d_params *p, const int8_t *in, int8_t *row) {
  const int before = p->pad * p->in_c, n = p->in_w * p->in_c;
  memset(row, (int)p->in_zero_point, (size_t)before);
  memcpy(row + before, in, (size_t)n);
  memset(row + before + n, (int)p->in_zero_point, (size_t)(p->row_bytes - before - n));
}

/* HK_WINDOWS windows starting at `x`, `step` bytes apart, split into int16 pairs and interleaved group by
 * group (group g: one 64-bit word per window, its even pair low and its odd pair high), so the dot-product
 * loop reads each window's four inputs with one 64-bit load (LDRD) through one pointer. */
#define HK_WINDOWS 8
static void hk_conv1d_gather(const int8_t *x, int step, int taps, uint64_t *block) {
  int i, j;
  for (i = 0; i < taps; i += 4, block += HK_WINDOWS)
    for (j = 0; j < HK_WINDOWS; ++j) {
      uint32_t even, odd;
      hk_split(hk_ld32(x + j * step + i), &even, &odd);
      block[j] = (uint64_t)odd << 32 | even;
    }
}

/* hk_requant for an accumulator the export has bounded: |x| * 2^left < 2^30 (see hk_conv1d_params), so 2x * 2^left
 * fits in int32 and SRDHM(x * 2^left, m) = floor((x * 2^left * m + 2^30) / 2^31) is the rounded high word of
 * (2x * 2^left) * m: one SMMULR on DSP cores. |q| < 2^30, so RoundingDivideByPOT's q + 2^(right-1) - (q < 0)
 * cannot overflow either. `half` is 2^(right-1) and `neg` all ones when right > 0, both 0 when right == 0. */
static int32_t hk_requant_small(int32_t x, int32_t multiplier, int left, int right, int32_t half, int32_t neg) {
  const int32_t x2 = hk_wrap_shl(x, left + 1);
  int32_t q;
#if defined(__ARM_FEATURE_DSP)
  __asm("smmulr %0, %1, %2" : "=r"(q) : "r"(x2), "r"(multiplier));
#else
  q = (int32_t)(((int64_t)x2 * multiplier + ((int64_t)1 << 31)) >> 32);
#endif
  return (q + half + ((q >> 31) & neg)) >> right;
}

/* Four taps of one window: its gathered inputs (even pair, then odd pair) times the split weights; `*x`
 * advances past them. On DSP cores one LDRD loads both pairs (gcc splits a 64-bit load into two LDR). */
static int32_t hk_mac4(int32_t acc, const uint64_t **x, uint32_t even, uint32_t odd) {
  uint32_t lo, hi;
#if defined(__ARM_FEATURE_DSP)
  __asm("ldrd %0, %1, [%2], #8" : "=r"(lo), "=r"(hi), "+r"(*x) : : "memory");
#else
  lo = (uint32_t)**x;
  hi = (uint32_t)(**x >> 32);
  ++*x;
#endif
  return hk_mac2(hk_mac2(acc, lo, even), hi, odd);
}

/* Eight windows at a time against every output channel: the windows are gathered once and reused by all
 * filters; per filter the eight accumulators stay in registers (with the two weight pairs, one input pair and
 * two pointers that is all 14 a Cortex-M core has) while its weights are walked once, contiguously: per four
 * taps one weight load and split serve eight windows. The last block is shifted left to end at the last
 * window (it recomputes a few outputs instead of running a remainder loop); with fewer than eight windows
 * the row is long enough for eight and the extra ones are not stored. The bias already holds
 * in_offset * sum(w), so the loop multiplies raw int8 values. */
void hk_conv1d(const hk_conv1d_params *p, const int8_t *in, int8_t *out) {
  /* parameters copied to locals once: every int8 store below may alias *p, so gcc would reload them */
  const int step = p->stride * p->in_c, taps = p->taps, out_w = p->out_w, out_c = p->out_c;
  const int32_t out_offset = p->out_offset, act_min = p->act_min, act_max = p->act_max;
  int8_t *row = (int8_t *)p->scratch;
  uint64_t *block = (uint64_t *)p->scratch + p->row_bytes / 8;
  int oc, ox, j;
  hk_conv1d_pad(p, in, row);
  for (ox = 0; ox < out_w; ox += HK_WINDOWS) {
    const int first = out_w < HK_WINDOWS ? 0 : HK_MIN(ox, out_w - HK_WINDOWS);
    const int stored = HK_MIN(HK_WINDOWS, out_w - first);
    hk_conv1d_gather(row + first * step, step, taps, block);
    for (oc = 0; oc < out_c; ++oc) {
      const int8_t *w = p->filter + oc * taps, *w_end = w + taps;
      const uint64_t *x = block;
      const int left = p->shift[oc] > 0 ? p->shift[oc] : 0, right = p->shift[oc] > 0 ? 0 : -p->shift[oc];
      const int32_t mult = p->multiplier[oc], half = right > 0 ? 1 << (right - 1) : 0, neg = right > 0 ? -1 : 0;
      int8_t *dst = out + first * out_c + oc;
      int32_t acc[HK_WINDOWS];
      /* scalars, not acc[]: an array indexed in the loop would live on the stack */
      int32_t a0 = p->bias[oc], a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
      for (; w < w_end; w += 4) {
        uint32_t even, odd;
        hk_split(hk_ld32(w), &even, &odd);  /* four weights, split once for eight windows */
        a0 = hk_mac4(a0, &x, even, odd);
        a1 = hk_mac4(a1, &x, even, odd);
        a2 = hk_mac4(a2, &x, even, odd);
        a3 = hk_mac4(a3, &x, even, odd);
        a4 = hk_mac4(a4, &x, even, odd);
        a5 = hk_mac4(a5, &x, even, odd);
        a6 = hk_mac4(a6, &x, even, odd);
        a7 = hk_mac4(a7, &x, even, odd);
      }
      acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3; acc[4] = a4; acc[5] = a5; acc[6] = a6; acc[7] = a7;
      for (j = 0; j < stored; ++j, dst += out_c)
        *dst = hk_out8(hk_requant_small(acc[j], mult, left, right, half, neg) + out_offset, act_min, act_max);
    }
  }
}

/* dst[i] = max(dst[i], src[i]) for n int8 values; on DSP cores four at a time (SSUB8 sets a GE flag per byte,
 * SEL picks each byte by it: one asm block, so nothing can touch the flags in between). */
static void hk_max_bytes(int8_t *dst, const int8_t *src, int n) {
  int i = 0;
#if defined(__ARM_FEATURE_DSP)
  for (; i + 4 <= n; i += 4) {
    const uint32_t a = hk_ld32(dst + i), b = hk_ld32(src + i);
    uint32_t r;
    __asm("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
    memcpy(dst + i, &r, 4);
  }
#endif
  for (; i < n; ++i)
    if (src[i] > dst[i]) dst[i] = src[i];
}

/* Channels innermost: the window's bounds are worked out once per output position, not per value. */
void hk_max_pool(const hk_pool_params *p, const int8_t *in, int8_t *out) {
  const int c = p->c, clamp = p->act_min > -128 || p->act_max < 127;
  int oy, ox, fy, fx, i;
  for (oy = 0; oy < p->out_h; ++oy) {
    for (ox = 0; ox < p->out_w; ++ox) {
      const int y0 = oy * p->stride_h - p->pad_h, x0 = ox * p->stride_w - p->pad_w;
      const int fy0 = HK_MAX(0, -y0), fy1 = HK_MIN(p->k_h, p->in_h - y0);
      const int fx0 = HK_MAX(0, -x0), fx1 = HK_MIN(p->k_w, p->in_w - x0);
      int8_t *dst = out + (oy * p->out_w + ox) * c;
      memset(dst, -128, (size_t)c);
      for (fy = fy0; fy < fy1; ++fy)
        for (fx = fx0; fx < fx1; ++fx) hk_max_bytes(dst, in + ((y0 + fy) * p->in_w + x0 + fx) * c, c);
      if (clamp)
        for (i = 0; i < c; ++i) dst[i] = (int8_t)HK_CLAMP(dst[i], p->act_min, p->act_max);
    }
  }
}

void hk_fully_connected(const hk_fc_params *p, const int8_t *in, int8_t *out) {
  int b, u, d;
  for (b = 0; b < p->batches; ++b) {
    const int8_t *x = in + b * p->depth;
    for (u = 0; u < p->units; ++u) {
      const int8_t *w = p->filter + u * p->depth;
      int32_t acc = 0, v;
      for (d = 0; d < p->depth; ++d) acc += ((int32_t)w[d] + p->filter_offset) * ((int32_t)x[d] + p->in_offset);
      if (p->bias) acc += p->bias[u];
      v = hk_requant(acc, p->multiplier[u], p->shift[u]) + p->out_offset;
      out[b * p->units + u] = (int8_t)HK_CLAMP(v, p->act_min, p->act_max);
    }
  }
}

void hk_mean(const hk_mean_params *p, const int8_t *in, int8_t *out) {
  int o, r, i;
  for (o = 0; o < p->outer; ++o) {
    for (i = 0; i < p->inner; ++i) {
      const int8_t *x = in + o * p->reduce * p->inner + i;
      int32_t sum = 0, v;
      for (r = 0; r < p->reduce; ++r, x += p->inner) sum += *x;
      sum -= p->in_zero_point * p->reduce;
      v = hk_requant(sum, p->multiplier, p->shift) + p->out_zero_point;
      out[o * p->inner + i] = (int8_t)HK_CLAMP(v, -128, 127);
    }
  }
}

void hk_reduce_max(int outer, int reduce, int inner, const int8_t *in, int8_t *out) {
  int o, r, i;
  for (o = 0; o < outer; ++o) {
    for (i = 0; i < inner; ++i) {
      const int8_t *x = in + o * reduce * inner + i;
      int8_t m = -128;
      for (r = 0; r < reduce; ++r, x += inner) m = HK_MAX(m, *x);
      out[o * inner + i] = m;
    }
  }
}

static int32_t hk_mul_one(const hk_binary_params *p, int8_t a, int8_t b) {
  const int32_t prod = ((int32_t)a + p->in1_offset) * ((int32_t)b + p->in2_offset);
  return p->out_offset + hk_requant(prod, p->out_multiplier, p->out_shift);
}

static int32_t hk_add_one(const hk_binary_params *p, int8_t a, int8_t b) {
  const int32_t x = hk_wrap_shl((int32_t)a + p->in1_offset, p->left_shift);
  const int32_t y = hk_wrap_shl((int32_t)b + p->in2_offset, p->left_shift);
  const int32_t sx = hk_rdbpot(hk_srdhm(x, p->in1_multiplier), -p->in1_shift);
  const int32_t sy = hk_rdbpot(hk_srdhm(y, p->in2_multiplier), -p->in2_shift);
  return hk_rdbpot(hk_srdhm(sx + sy, p->out_multiplier), -p->out_shift) + p->out_offset;
}

/* One loop for both element-wise ops: 4-D broadcasting through per-input strides. The op is a flag rather
 * than a function pointer so both ops inline into the loop (an indirect call per value cost ~20 instructions). */
static void hk_binary(const hk_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, int add) {
  int i0, i1, i2, i3;
  for (i0 = 0; i0 < p->dims[0]; ++i0)
    for (i1 = 0; i1 < p->dims[1]; ++i1)
      for (i2 = 0; i2 < p->dims[2]; ++i2) {
        const int8_t *a = in1 + i0 * p->stride1[0] + i1 * p->stride1[1] + i2 * p->stride1[2];
        const int8_t *b = in2 + i0 * p->stride2[0] + i1 * p->stride2[1] + i2 * p->stride2[2];
        for (i3 = 0; i3 < p->dims[3]; ++i3, a += p->stride1[3], b += p->stride2[3]) {
          const int32_t v = add ? hk_add_one(p, *a, *b) : hk_mul_one(p, *a, *b);
          *out++ = (int8_t)HK_CLAMP(v, p->act_min, p->act_max);
        }
      }
}

void hk_mul(const hk_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  hk_binary(p, in1, in2, out, 0);
}

void hk_add(const hk_binary_params *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
  hk_binary(p, in1, in2, out, 1);
}

/* exp(x) for x in [-1/4, 0), Q0.31 in and out (gemmlowp's Taylor expansion around -1/8). */
static int32_t hk_exp_quarter(int32_t a) {
  const int32_t constant_term = 1895147668, one_third = 715827883;
  const int32_t x = hk_wrap_add(a, 1 << 28);
  const int32_t x2 = hk_srdhm(x, x), x3 = hk_srdhm(x2, x), x4 = hk_srdhm(x2, x2);
  const int32_t x4_over_4 = hk_rdbpot(x4, 2);
  const int32_t poly = hk_rdbpot(hk_wrap_add(hk_srdhm(hk_wrap_add(x4_over_4, x3), one_third), x2), 1);
  return hk_wrap_add(constant_term, hk_srdhm(constant_term, hk_wrap_add(x, poly)));
}

/* exp(a) for a <= 0 given in Q5.26, result in Q0.31 (gemmlowp's exp_on_negative_values). */
static int32_t hk_exp_negative(int32_t a) {
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int32_t quarter = 1 << 24;
  const int32_t mod_minus_quarter = (a & (quarter - 1)) - quarter;
  const int32_t remainder = mod_minus_quarter - a;
  int32_t result = hk_exp_quarter(hk_sat_shl(mod_minus_quarter, 5));
  int k;
  for (k = 0; k < 7; ++k)
    if (remainder & (1 << (24 + k))) result = hk_srdhm(result, barrel[k]);
  return a == 0 ? INT32_MAX : result;
}

/* 1/(1+x) for x in [0, 1), Q0.31 (gemmlowp's Newton-Raphson division). */
static int32_t hk_one_over_one_plus_x(int32_t a) {
  const int64_t sum = (int64_t)a + INT32_MAX;
  const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = hk_wrap_add(1515870810, hk_srdhm(half_denominator, -1010580540));
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t one_minus = (1 << 29) - hk_srdhm(half_denominator, x);
    x = hk_wrap_add(x, hk_sat_shl(hk_srdhm(x, one_minus), 2));
  }
  return hk_sat_shl(x, 1);
}

static int hk_clz32(uint32_t x) {
  int n = 0;
  if (x == 0) return 32;
  while (!(x & 0x80000000u)) { x <<= 1; ++n; }
  return n;
}

void hk_softmax(const hk_softmax_params *p, const int8_t *in, int8_t *out) {
  int r, c;
  for (r = 0; r < p->rows; ++r) {
    const int8_t *x = in + r * p->depth;
    int8_t *y = out + r * p->depth;
    int32_t max_in_row = -128, sum_of_exps = 0, shifted_scale;
    int headroom, exponent;
    for (c = 0; c < p->depth; ++c) max_in_row = HK_MAX(max_in_row, (int32_t)x[c]);
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = hk_srdhm(hk_wrap_shl(diff, p->input_left_shift), p->input_multiplier);
        sum_of_exps = hk_wrap_add(sum_of_exps, hk_rdbpot(hk_exp_negative(scaled), 12));
      }
    }
    headroom = hk_clz32((uint32_t)sum_of_exps);
    shifted_scale = hk_one_over_one_plus_x((int32_t)(((uint32_t)sum_of_exps << headroom) - (1u << 31)));
    exponent = (12 - headroom) + 31 - 8;
    for (c = 0; c < p->depth; ++c) {
      const int32_t diff = (int32_t)x[c] - max_in_row;
      if (diff >= p->diff_min) {
        const int32_t scaled = hk_srdhm(hk_wrap_shl(diff, p->input_left_shift), p->input_multiplier);
        const int32_t v = hk_rdbpot(hk_srdhm(shifted_scale, hk_exp_negative(scaled)), exponent) - 128;
        y[c] = (int8_t)HK_CLAMP(v, -128, 127);
      } else {
        y[c] = -128;
      }
    }
  }
}

void hk_concat(int outer, int n_inputs, const int8_t *const *in, const int *chunk, int8_t *out) {
  int o, i;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < n_inputs; ++i) {
      memcpy(out, in[i] + o * chunk[i], (size_t)chunk[i]);
      out += chunk[i];
    }
}

void hk_copy(const void *in, void *out, int bytes) { memmove(out, in, (size_t)bytes); }
