/*
 * hartool_frame.h - header-only encoder for the hartool wire protocol (see firmware_bridge/PROTOCOL.md).
 *
 * COBS framing, CRC-16/CCITT-FALSE, int16 scaling with saturation, binary frame packing and text lines, and
 * prediction messages (frame and line) for a board that classifies by itself.
 * Plain C99: no Arduino headers, no malloc, no printf (AVR's printf has no %f), explicit little-endian
 * byte order (no struct layout or alignment assumptions). Checked byte for byte against
 * firmware_bridge/vectors/ by tests/firmware/test_c_header.py.
 *
 * Sizes are compile-time: define HARTOOL_MAX_CH / HARTOOL_MAX_PER_FRAME before including to change
 * the RAM used by hartool_framer (6 channels x 4 samples: about 110 bytes).
 */
#ifndef HARTOOL_FRAME_H
#define HARTOOL_FRAME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef HARTOOL_MAX_CH
#define HARTOOL_MAX_CH 6
#endif
#ifndef HARTOOL_MAX_PER_FRAME
#define HARTOOL_MAX_PER_FRAME 4
#endif

#define HARTOOL_WIRE_VERSION 1u
#define HARTOOL_FLAG_TIMESTAMP 0x01u
#define HARTOOL_HEADER_SIZE 10u
/* Payload bytes of a frame: header, scales, samples, CRC. */
#define HARTOOL_PAYLOAD_SIZE(nch, nsamp) (HARTOOL_HEADER_SIZE + 4u * (nch) + 2u * (nsamp) * (nch) + 2u)
/* Worst-case COBS output for n input bytes (one code byte per 254 bytes, plus one). */
#define HARTOOL_COBS_MAX(n) ((n) + (n) / 254u + 1u)
/* Worst-case bytes on the wire for one frame, including the 0x00 delimiter. */
#define HARTOOL_FRAME_MAX(nch, nsamp) (HARTOOL_COBS_MAX(HARTOOL_PAYLOAD_SIZE(nch, nsamp)) + 1u)
/* Longest text line: optional timestamp (10 digits) + per value sign, 10 integer digits, point, decimals,
 * separator; plus CR LF and a terminating NUL. */
#define HARTOOL_TEXT_LINE_MAX(nch, decimals) (11u + (nch) * (13u + (decimals)) + 3u)

/* Default scales: accelerometer +-16 g -> 1/2048 g per count; gyroscope +-2000 dps in rad/s per count.
 * Hex float literals give the exact float32 values that the host and MicroPython encoders use. */
#define HARTOOL_ACC_SCALE_G 0x1p-11f
#define HARTOOL_GYRO_SCALE_RAD_S 0x1.1740b0p-10f

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF (pass it as crc), no reflection, xorout 0.
 * Bitwise rather than table driven: a 512-byte table is a quarter of an AVR's RAM. */
static inline uint16_t hartool_crc16(const uint8_t *data, size_t len, uint16_t crc) {
    size_t i;
    uint8_t bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* COBS-encode len bytes of in into out (HARTOOL_COBS_MAX(len) bytes); returns the encoded length.
 * The 0x00 delimiter is not written. in and out must not overlap. */
static inline size_t hartool_cobs_encode(const uint8_t *in, size_t len, uint8_t *out) {
    size_t code_pos = 0, o = 1, i;
    uint8_t code = 1;
    for (i = 0; i < len; i++) {
        if (in[i] != 0) {
            out[o++] = in[i];
            if (++code == 0xFFu) {
                out[code_pos] = code;
                if (i + 1 == len) {
                    return o; /* a full block ends the data: no trailing empty block */
                }
                code_pos = o++;
                code = 1;
            }
        } else {
            out[code_pos] = code;
            code_pos = o++;
            code = 1;
        }
    }
    out[code_pos] = code;
    return o;
}

/* Physical value -> int16 count: round half away from zero of value/scale, saturating at the int16
 * range (a glitch never wraps to the opposite sign); NaN -> 0. */
static inline int16_t hartool_quantize(float value, float scale) {
    float x = value / scale;
    if (x != x) {
        return 0;
    }
    if (x >= 32767.0f) {
        return 32767;
    }
    if (x <= -32768.0f) {
        return -32768;
    }
    if (x >= 0.0f) {
        return (int16_t)(int32_t)(x + 0.5f);
    }
    return (int16_t)(-(int32_t)(0.5f - x));
}

static inline void hartool_put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void hartool_put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static inline void hartool_put_f32(uint8_t *p, float f) {
    /* The union reads the IEEE-754 bits of f (every supported MCU has 32-bit IEEE floats). */
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = f;
    hartool_put_u32(p, bits.u);
}

/* Pack a payload (header, scales, counts, CRC) into out (HARTOOL_PAYLOAD_SIZE(nch, nsamp) bytes).
 * counts is sample-major: nsamp x nch. Returns the payload length. */
static inline size_t hartool_pack_payload(uint8_t *out, uint16_t seq, uint32_t t_ms, uint8_t flags, uint8_t nch,
                                          uint8_t nsamp, const float *scales, const int16_t *counts) {
    size_t off = HARTOOL_HEADER_SIZE, i, n = (size_t)nsamp * nch;
    out[0] = (uint8_t)HARTOOL_WIRE_VERSION;
    out[1] = flags;
    hartool_put_u16(out + 2, seq);
    hartool_put_u32(out + 4, t_ms);
    out[8] = nch;
    out[9] = nsamp;
    for (i = 0; i < nch; i++, off += 4) {
        hartool_put_f32(out + off, scales[i]);
    }
    for (i = 0; i < n; i++, off += 2) {
        hartool_put_u16(out + off, (uint16_t)counts[i]);
    }
    hartool_put_u16(out + off, hartool_crc16(out, off, 0xFFFFu));
    return off + 2;
}

/* Builds frames of per_frame samples; a frame's seq is the index (mod 65536) of its first sample. */
typedef struct {
    uint8_t nch;
    uint8_t per_frame;
    uint8_t n; /* samples queued */
    uint8_t flags;
    uint16_t seq; /* index of the next sample */
    uint16_t first_seq;
    uint32_t t_first;
    float scales[HARTOOL_MAX_CH];
    int16_t counts[HARTOOL_MAX_CH * HARTOOL_MAX_PER_FRAME];
    uint8_t payload[HARTOOL_PAYLOAD_SIZE(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME)];
} hartool_framer;

/* Returns 0 on success, -1 if nch / per_frame exceed the compiled limits or are zero. */
static inline int hartool_framer_init(hartool_framer *f, uint8_t nch, const float *scales, uint8_t per_frame,
                                      int with_timestamp, uint16_t first_seq) {
    uint8_t i;
    if (nch == 0 || nch > HARTOOL_MAX_CH || per_frame == 0 || per_frame > HARTOOL_MAX_PER_FRAME) {
        return -1;
    }
    f->nch = nch;
    f->per_frame = per_frame;
    f->n = 0;
    f->flags = with_timestamp ? (uint8_t)HARTOOL_FLAG_TIMESTAMP : 0u;
    f->seq = first_seq;
    f->first_seq = first_seq;
    f->t_first = 0;
    for (i = 0; i < nch; i++) {
        f->scales[i] = scales[i];
    }
    return 0;
}

/* Encode the queued samples into out (HARTOOL_FRAME_MAX(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME) bytes) as
 * COBS + 0x00; returns the byte count, 0 if nothing was queued. */
static inline size_t hartool_framer_flush(hartool_framer *f, uint8_t *out) {
    size_t plen, olen;
    if (f->n == 0) {
        return 0;
    }
    plen = hartool_pack_payload(f->payload, f->first_seq, f->t_first, f->flags, f->nch, f->n, f->scales,
                                f->counts);
    olen = hartool_cobs_encode(f->payload, plen, out);
    out[olen] = 0;
    f->n = 0;
    return olen + 1;
}

/* Queue one sample (nch physical values) taken at device time t_ms; when the frame is full it is
 * encoded into out and its length returned, otherwise 0. */
static inline size_t hartool_framer_add(hartool_framer *f, const float *values, uint32_t t_ms, uint8_t *out) {
    uint8_t ch;
    int16_t *dst;
    if (f->n == 0) {
        f->first_seq = f->seq;
        f->t_first = t_ms;
    }
    dst = f->counts + (size_t)f->n * f->nch;
    for (ch = 0; ch < f->nch; ch++) {
        dst[ch] = hartool_quantize(values[ch], f->scales[ch]);
    }
    f->n++;
    f->seq++;
    return f->n >= f->per_frame ? hartool_framer_flush(f, out) : 0;
}

/* Account for n samples never taken (timer overrun) so the host counts them as dropped. Samples in a
 * frame must be consecutive, so a partial frame is flushed into out first (returns its length or 0). */
static inline size_t hartool_framer_skip(hartool_framer *f, uint16_t n, uint8_t *out) {
    size_t len = hartool_framer_flush(f, out);
    f->seq = (uint16_t)(f->seq + n);
    return len;
}

static inline size_t hartool_put_uint(char *out, uint32_t v) {
    char tmp[10];
    size_t n = 0, i;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0);
    for (i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Format v like printf("%.*f", decimals, v) with integer arithmetic (decimals <= 9): the integer part is
 * split off exactly before scaling so single-precision floats keep their fractional digits. Magnitudes
 * of 2^32 and above (never IMU data) are written as inf. Returns the characters written (no NUL). */
static inline size_t hartool_format_value(char *out, float v, uint8_t decimals) {
    size_t o = 0;
    float a;
    uint32_t ip, frac, p = 1;
    uint8_t i;
    if (v != v) {
        out[0] = 'n';
        out[1] = 'a';
        out[2] = 'n';
        return 3;
    }
    if (signbit(v)) {
        out[o++] = '-';
    }
    a = fabsf(v);
    if (a >= 4294967296.0f) {
        out[o++] = 'i';
        out[o++] = 'n';
        out[o++] = 'f';
        return o;
    }
    for (i = 0; i < decimals; i++) {
        p *= 10u;
    }
    ip = (uint32_t)a;
    if (decimals == 0) {
        ip = (uint32_t)(a + 0.5f);
        frac = 0;
    } else {
        frac = (uint32_t)((a - (float)ip) * (float)p + 0.5f);
        if (frac >= p) {
            frac -= p;
            ip++;
        }
    }
    o += hartool_put_uint(out + o, ip);
    if (decimals > 0) {
        out[o++] = '.';
        for (i = decimals; i > 0; i--) {
            out[o + i - 1] = (char)('0' + (frac % 10u));
            frac /= 10u;
        }
        o += decimals;
    }
    return o;
}

/* Write one text sample line "[t_ms,]v1,...,vN\r\n" plus a NUL into out (cap bytes; use
 * HARTOOL_TEXT_LINE_MAX). Returns the line length without the NUL, or 0 if cap is too small. */
static inline size_t hartool_format_text_line(char *out, size_t cap, const float *values, uint8_t nch,
                                              int with_timestamp, uint32_t t_ms, uint8_t decimals) {
    size_t o = 0;
    uint8_t ch;
    if (decimals > 9 || cap < HARTOOL_TEXT_LINE_MAX(nch, decimals)) {
        return 0;
    }
    if (with_timestamp) {
        o += hartool_put_uint(out, t_ms);
    }
    for (ch = 0; ch < nch; ch++) {
        if (o > 0) {
            out[o++] = ',';
        }
        o += hartool_format_value(out + o, values[ch], decimals);
    }
    out[o++] = '\r';
    out[o++] = '\n';
    out[o] = '\0';
    return o;
}

/* ---- Prediction messages (PROTOCOL.md "Prediction messages"): a window classified on the board. ---- */

#ifndef HARTOOL_MAX_CLASSES
#define HARTOOL_MAX_CLASSES 32
#endif
#define HARTOOL_PREDICTION_KIND 0x81u /* first payload byte; a sample frame starts with its version, 1 */
#define HARTOOL_PREDICTION_HEADER_SIZE 12u
#define HARTOOL_PREDICTION_PAYLOAD_SIZE(ncls) (HARTOOL_PREDICTION_HEADER_SIZE + (ncls) + 2u)
/* Worst-case bytes on the wire for one prediction frame, including the 0x00 delimiter. */
#define HARTOOL_PREDICTION_FRAME_MAX(ncls) (HARTOOL_COBS_MAX(HARTOOL_PREDICTION_PAYLOAD_SIZE(ncls)) + 1u)
/* Longest prediction line: "pred," + window, t_ms (10 digits each), label, nclass (3 each), 4 per class,
 * commas, CR LF and a terminating NUL. */
#define HARTOOL_PREDICTION_LINE_MAX(ncls) (5u + 11u + 11u + 4u + 4u + 4u * (ncls) + 3u)

/* Probability -> u8 count: round(p * 256) half up, clamped to 0..255; NaN -> 0. p * 256 is exact in float,
 * and an int8 softmax output (scale 1/256) keeps all of its information. */
static inline uint8_t hartool_prob_count(float p) {
    float x = p * 256.0f;
    if (!(x > 0.0f)) {
        return 0; /* also NaN */
    }
    if (x >= 255.0f) {
        return 255;
    }
    return (uint8_t)(uint32_t)(x + 0.5f);
}

/* Encode one prediction (window counter, the class the board chose, ncls probabilities) into out
 * (HARTOOL_PREDICTION_FRAME_MAX(ncls) bytes) as COBS + 0x00. Returns the byte count, 0 if ncls is 0, above
 * HARTOOL_MAX_CLASSES, or label is not below ncls. */
static inline size_t hartool_encode_prediction(uint8_t *out, uint32_t window, int with_timestamp, uint32_t t_ms,
                                               uint8_t label, uint8_t ncls, const float *probs) {
    uint8_t payload[HARTOOL_PREDICTION_PAYLOAD_SIZE(HARTOOL_MAX_CLASSES)];
    size_t off = HARTOOL_PREDICTION_HEADER_SIZE, olen;
    uint8_t k;
    if (ncls == 0 || ncls > HARTOOL_MAX_CLASSES || label >= ncls) {
        return 0;
    }
    payload[0] = (uint8_t)HARTOOL_PREDICTION_KIND;
    payload[1] = with_timestamp ? (uint8_t)HARTOOL_FLAG_TIMESTAMP : 0u;
    hartool_put_u32(payload + 2, window);
    hartool_put_u32(payload + 6, with_timestamp ? t_ms : 0u);
    payload[10] = label;
    payload[11] = ncls;
    for (k = 0; k < ncls; k++) {
        payload[off++] = hartool_prob_count(probs[k]);
    }
    hartool_put_u16(payload + off, hartool_crc16(payload, off, 0xFFFFu));
    olen = hartool_cobs_encode(payload, off + 2, out);
    out[olen] = 0;
    return olen + 1;
}

/* Write one prediction line "pred,window,t_ms|-,label,nclass,count...\r\n" plus a NUL into out (cap bytes; use
 * HARTOOL_PREDICTION_LINE_MAX). Integers only: no printf. Returns the length without the NUL, 0 on a bad
 * argument or a too small cap. */
static inline size_t hartool_format_prediction_line(char *out, size_t cap, uint32_t window, int with_timestamp,
                                                    uint32_t t_ms, uint8_t label, uint8_t ncls,
                                                    const float *probs) {
    size_t o = 0;
    uint8_t k;
    if (ncls == 0 || label >= ncls || cap < HARTOOL_PREDICTION_LINE_MAX(ncls)) {
        return 0;
    }
    out[o++] = 'p';
    out[o++] = 'r';
    out[o++] = 'e';
    out[o++] = 'd';
    out[o++] = ',';
    o += hartool_put_uint(out + o, window);
    out[o++] = ',';
    if (with_timestamp) {
        o += hartool_put_uint(out + o, t_ms);
    } else {
        out[o++] = '-';
    }
    out[o++] = ',';
    o += hartool_put_uint(out + o, label);
    out[o++] = ',';
    o += hartool_put_uint(out + o, ncls);
    for (k = 0; k < ncls; k++) {
        out[o++] = ',';
        o += hartool_put_uint(out + o, hartool_prob_count(probs[k]));
    }
    out[o++] = '\r';
    out[o++] = '\n';
    out[o] = '\0';
    return o;
}

#ifdef __cplusplus
}
#endif

#endif /* HARTOOL_FRAME_H */
