/*
 * Host test driver for firmware_bridge/arduino/hartool_imu_stream/hartool_frame.h.
 *
 * Reads one command per line on stdin and writes one line of lowercase hex (or a CRC) per command, so the
 * Python test can compare every result with firmware_bridge/vectors/ byte for byte:
 *   crc <hex|->                                   -> crc as 4 hex digits
 *   cobs <hex|->                                  -> COBS encoding (no delimiter)
 *   frame <seq> <t_ms> <with_ts> <nch> <nsamp> <scale>*nch <value>*(nsamp*nch)
 *                                                 -> full wire frame via hartool_framer (COBS + 00)
 *   text <with_ts> <t_ms> <decimals> <nch> <value>*nch
 *                                                 -> text line bytes
 *   pred <window> <with_ts> <t_ms> <label> <ncls> <prob>*ncls
 *                                                 -> prediction frame (COBS + 00) and, on the next line,
 *                                                    the prediction text line bytes
 * Values arrive as decimal doubles and are narrowed to float, exactly like firmware sensor values.
 */
#define HARTOOL_MAX_CH 8
#define HARTOOL_MAX_PER_FRAME 64
#include "hartool_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES 8192

static char line[4 * MAX_BYTES];
static uint8_t bin[MAX_BYTES];
static uint8_t enc[HARTOOL_COBS_MAX(MAX_BYTES)];
static uint8_t frame_out[HARTOOL_FRAME_MAX(HARTOOL_MAX_CH, HARTOOL_MAX_PER_FRAME)];

static void print_hex(const uint8_t *p, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        printf("%02x", p[i]);
    }
    printf("\n");
}

static size_t parse_hex(const char *s, uint8_t *out) {
    size_t n = 0;
    unsigned int byte;
    if (s == NULL || strcmp(s, "-") == 0) {
        return 0;
    }
    while (s[0] && s[1] && n < MAX_BYTES && sscanf(s, "%2x", &byte) == 1) {
        out[n++] = (uint8_t)byte;
        s += 2;
    }
    return n;
}

static long next_long(void) {
    const char *tok = strtok(NULL, " \n");
    if (tok == NULL) {
        fprintf(stderr, "missing integer\n");
        exit(2);
    }
    return strtol(tok, NULL, 10);
}

static unsigned long next_ulong(void) {
    const char *tok = strtok(NULL, " \n");
    if (tok == NULL) {
        fprintf(stderr, "missing integer\n");
        exit(2);
    }
    return strtoul(tok, NULL, 10);
}

static float next_float(void) {
    const char *tok = strtok(NULL, " \n");
    if (tok == NULL) {
        fprintf(stderr, "missing value\n");
        exit(2);
    }
    return (float)strtod(tok, NULL);
}

static void run_frame(void) {
    hartool_framer f;
    float scales[HARTOOL_MAX_CH];
    float sample[HARTOOL_MAX_CH];
    uint16_t seq = (uint16_t)next_ulong();
    uint32_t t_ms = (uint32_t)next_ulong();
    int with_ts = (int)next_long();
    uint8_t nch = (uint8_t)next_long();
    uint8_t nsamp = (uint8_t)next_long();
    size_t len = 0;
    uint8_t s, c;
    for (c = 0; c < nch; c++) {
        scales[c] = next_float();
    }
    if (hartool_framer_init(&f, nch, scales, nsamp, with_ts, seq) != 0) {
        printf("error\n");
        return;
    }
    for (s = 0; s < nsamp; s++) {
        for (c = 0; c < nch; c++) {
            sample[c] = next_float();
        }
        /* only the first sample's time goes on the wire; later ones must not change it */
        len = hartool_framer_add(&f, sample, t_ms + 1000u * s, frame_out);
        if (len != 0 && s + 1 != nsamp) {
            printf("early\n");
            return;
        }
    }
    print_hex(frame_out, len);
}

static void run_text(void) {
    char out[HARTOOL_TEXT_LINE_MAX(HARTOOL_MAX_CH, 9)];
    float values[HARTOOL_MAX_CH];
    int with_ts = (int)next_long();
    uint32_t t_ms = (uint32_t)next_ulong();
    uint8_t decimals = (uint8_t)next_long();
    uint8_t nch = (uint8_t)next_long();
    uint8_t c;
    size_t len;
    for (c = 0; c < nch; c++) {
        values[c] = next_float();
    }
    len = hartool_format_text_line(out, sizeof out, values, nch, with_ts, t_ms, decimals);
    print_hex((const uint8_t *)out, len);
}

static void run_prediction(void) {
    uint8_t out[HARTOOL_PREDICTION_FRAME_MAX(HARTOOL_MAX_CLASSES)];
    char text[HARTOOL_PREDICTION_LINE_MAX(HARTOOL_MAX_CLASSES)];
    float probs[HARTOOL_MAX_CLASSES];
    uint32_t window = (uint32_t)next_ulong();
    int with_ts = (int)next_long();
    uint32_t t_ms = (uint32_t)next_ulong();
    uint8_t label = (uint8_t)next_long();
    uint8_t ncls = (uint8_t)next_long();
    uint8_t k;
    for (k = 0; k < ncls && k < HARTOOL_MAX_CLASSES; k++) {
        probs[k] = next_float();
    }
    print_hex(out, hartool_encode_prediction(out, window, with_ts, t_ms, label, ncls, probs));
    print_hex((const uint8_t *)text,
              hartool_format_prediction_line(text, sizeof text, window, with_ts, t_ms, label, ncls, probs));
}

int main(void) {
    while (fgets(line, sizeof line, stdin) != NULL) {
        const char *cmd = strtok(line, " \n");
        if (cmd == NULL) {
            continue;
        }
        if (strcmp(cmd, "crc") == 0) {
            size_t n = parse_hex(strtok(NULL, " \n"), bin);
            printf("%04x\n", hartool_crc16(bin, n, 0xFFFFu));
        } else if (strcmp(cmd, "cobs") == 0) {
            size_t n = parse_hex(strtok(NULL, " \n"), bin);
            print_hex(enc, hartool_cobs_encode(bin, n, enc));
        } else if (strcmp(cmd, "frame") == 0) {
            run_frame();
        } else if (strcmp(cmd, "text") == 0) {
            run_text();
        } else if (strcmp(cmd, "pred") == 0) {
            run_prediction();
        } else {
            fprintf(stderr, "unknown command %s\n", cmd);
            return 2;
        }
    }
    return 0;
}
