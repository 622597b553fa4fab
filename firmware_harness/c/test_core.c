/*
 * test_core.c - unit tests of the C core, run on the host (make test).
 *
 * Prints one line per test, "ok NAME" or "not ok NAME: file:line: failed check", then
 * "N passed, N failed". tests/test_firmware_c.py runs it and turns each line into an assert.
 */
#include <stdio.h>
#include <string.h>

#include "ecg_crc16.h"
#include "ecg_frame.h"
#include "ecg_ring.h"

static int g_failed_checks;
static char g_first_failure[256];

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            if (g_failed_checks++ == 0) {                                                    \
                snprintf(g_first_failure, sizeof g_first_failure, "%s:%d: %s", __FILE__,     \
                         __LINE__, #cond);                                                   \
            }                                                                                \
        }                                                                                    \
    } while (0)

static unsigned get_u16(const uint8_t *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }

static unsigned long get_u32(const uint8_t *p)
{
    return (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16) |
           ((unsigned long)p[3] << 24);
}

/* A frame is well formed: marker, version, type, length and a CRC that checks. */
static int frame_ok(const uint8_t *f, size_t len, unsigned type)
{
    unsigned payload;
    if (len < ECG_PREFIX_SIZE + ECG_CRC_SIZE) return 0;
    payload = get_u16(f + 4);
    return f[0] == 0xECu && f[1] == 0x47u && f[2] == 1u && f[3] == type &&
           len == ECG_PREFIX_SIZE + payload + ECG_CRC_SIZE &&
           get_u16(f + len - 2) == ecg_crc16(f + 2, 4u + payload);
}

static ecg_config_t test_config(void)
{
    ecg_config_t cfg;
    cfg.fs_millihz = 360000u;
    cfg.gain_milli = 200000u;
    cfg.baseline = 1024;
    cfg.channels = 1;
    cfg.samples_per_frame = 4;
    cfg.adc_bits = 12;
    cfg.firmware_version = 0x0102u;
    cfg.device_id = 0xA1B2C3D4ul;
    return cfg;
}

/* Split a framer's output into frames; returns how many, types/seqs/flags filled in. */
static size_t split_frames(const uint8_t *buf, size_t len, unsigned *types, unsigned *seqs,
                           unsigned *flags, size_t max)
{
    size_t pos = 0, n = 0;
    while (pos + ECG_PREFIX_SIZE <= len && n < max) {
        size_t flen = ECG_PREFIX_SIZE + get_u16(buf + pos + 4) + ECG_CRC_SIZE;
        if (pos + flen > len || !frame_ok(buf + pos, flen, buf[pos + 3])) return (size_t)-1;
        types[n] = buf[pos + 3];
        seqs[n] = types[n] == ECG_TYPE_DATA ? get_u16(buf + pos + 6) : 0u;
        flags[n] = types[n] == ECG_TYPE_DATA ? buf[pos + 8] : 0u;
        n++;
        pos += flen;
    }
    return pos == len ? n : (size_t)-1;
}

static void test_crc16_check_value(void)
{
    const uint8_t check[] = "123456789";
    CHECK(ecg_crc16(check, 9) == 0x29B1u);
}

static void test_crc16_empty_and_incremental(void)
{
    const uint8_t data[] = "edge-ecg frames";
    uint16_t crc = ecg_crc16_update((uint16_t)ECG_CRC16_INIT, data, 5);
    CHECK(ecg_crc16(data, 0) == 0xFFFFu);
    CHECK(ecg_crc16_update(crc, data + 5, sizeof data - 6) == ecg_crc16(data, sizeof data - 1));
    CHECK(ecg_crc16((const uint8_t *)"A", 1) == 0xB915u);
}

static void test_header_frame_layout(void)
{
    ecg_config_t cfg = test_config();
    uint8_t out[64];
    size_t len = ecg_encode_header(&cfg, out, sizeof out);
    CHECK(len == ECG_HEADER_FRAME_SIZE && len == 28u);
    CHECK(frame_ok(out, len, ECG_TYPE_HEADER));
    CHECK(get_u16(out + 4) == 20u);
    CHECK(get_u32(out + 6) == 360000ul);
    CHECK(get_u32(out + 10) == 200000ul);
    CHECK(get_u16(out + 14) == 1024u);
    CHECK(out[16] == 1u && out[17] == 4u && out[18] == 12u && out[19] == 0u);
    CHECK(get_u16(out + 20) == 0x0102u);
    CHECK(get_u32(out + 22) == 0xA1B2C3D4ul);
}

static void test_data_frame_layout(void)
{
    const int16_t samples[6] = {0, 1, -1, 32767, -32768, 1024};
    uint8_t out[64];
    size_t len = ecg_encode_data(0xBEEFu, ECG_FLAG_LEAD_OFF, samples, 3, 2, out, sizeof out);
    CHECK(len == ECG_DATA_FRAME_SIZE(3, 2) && len == 24u);
    CHECK(frame_ok(out, len, ECG_TYPE_DATA));
    CHECK(get_u16(out + 6) == 0xBEEFu);
    CHECK(out[8] == ECG_FLAG_LEAD_OFF && out[9] == 3u);
    CHECK(get_u16(out + 10) == 0u && get_u16(out + 12) == 1u && get_u16(out + 14) == 0xFFFFu);
    CHECK(get_u16(out + 16) == 0x7FFFu && get_u16(out + 18) == 0x8000u);
    CHECK(get_u16(out + 20) == 1024u);
}

static void test_data_frame_rejects_bad_sizes(void)
{
    int16_t samples[300];
    uint8_t out[1024];
    memset(samples, 0, sizeof samples);
    CHECK(ecg_encode_data(0, 0, samples, 0, 1, out, sizeof out) == 0u);
    CHECK(ecg_encode_data(0, 0, samples, 1, 0, out, sizeof out) == 0u);
    CHECK(ecg_encode_data(0, 0, samples, 255, 1, out, sizeof out) == 0u); /* payload 514 > 512 */
    CHECK(ecg_encode_data(0, 0, samples, 254, 1, out, sizeof out) == ECG_DATA_FRAME_SIZE(254, 1));
    CHECK(ecg_encode_data(0, 0, NULL, 1, 1, out, sizeof out) == 0u);
}

static void test_encode_small_buffer_returns_zero(void)
{
    ecg_config_t cfg = test_config();
    int16_t samples[2] = {5, 6};
    uint8_t out[64];
    memset(out, 0x5A, sizeof out);
    CHECK(ecg_encode_header(&cfg, out, ECG_HEADER_FRAME_SIZE - 1u) == 0u);
    CHECK(ecg_encode_data(1, 0, samples, 2, 1, out, ECG_DATA_FRAME_SIZE(2, 1) - 1u) == 0u);
    CHECK(out[0] == 0x5Au); /* nothing written */
    CHECK(ecg_encode_data(1, 0, samples, 2, 1, out, ECG_DATA_FRAME_SIZE(2, 1)) == 16u);
}

static void test_framer_header_first_and_periodic(void)
{
    ecg_config_t cfg = test_config(); /* 4 samples per frame */
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    unsigned types[4], seqs[4], flags[4];
    int16_t v = 0;
    int i, headers = 0, frames = 0, header_before[8] = {0};
    CHECK(ecg_framer_init(&f, &cfg, 8u, 0) == ECG_OK); /* header every 8 samples */
    for (i = 0; i < 32; i++, v++) {
        size_t len = ecg_framer_push(&f, &v, 0, out, sizeof out);
        size_t n;
        if ((i + 1) % 4 != 0) {
            CHECK(len == 0u);
            continue;
        }
        n = split_frames(out, len, types, seqs, flags, 4);
        CHECK(n == 1u || n == 2u);
        if (n == 2u) {
            CHECK(types[0] == ECG_TYPE_HEADER && types[1] == ECG_TYPE_DATA);
            headers++;
            if (frames < 8) header_before[frames] = 1;
        }
        frames++;
    }
    CHECK(frames == 8);
    CHECK(headers == 4); /* before data frames 0, 2, 4, 6 */
    CHECK(header_before[0] && !header_before[1] && header_before[2] && header_before[6]);
}

static void test_framer_sequence_wraps(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    unsigned types[4], seqs[4], flags[4], expect[4] = {65534u, 65535u, 0u, 1u};
    int16_t v = 7;
    int i, k = 0;
    cfg.samples_per_frame = 1;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 65534u) == ECG_OK);
    for (i = 0; i < 4; i++) {
        size_t len = ecg_framer_push(&f, &v, 0, out, sizeof out);
        size_t n = split_frames(out, len, types, seqs, flags, 4);
        CHECK(n == (i == 0 ? 2u : 1u)); /* header only before the first frame */
        CHECK(seqs[n - 1u] == expect[k]);
        k++;
    }
    CHECK(f.seq == 2u);
}

static void test_framer_lead_off_flag_per_frame(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    unsigned types[4], seqs[4], flags[4];
    int16_t v = 100;
    int i;
    size_t len = 0, n;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_OK);
    for (i = 0; i < 4; i++) { /* lead off on the 2nd sample only */
        len = ecg_framer_push(&f, &v, i == 1 ? ECG_FLAG_LEAD_OFF : 0u, out, sizeof out);
    }
    n = split_frames(out, len, types, seqs, flags, 4);
    CHECK(n == 2u && flags[1] == ECG_FLAG_LEAD_OFF);
    for (i = 0; i < 4; i++) {
        len = ecg_framer_push(&f, &v, 0, out, sizeof out);
    }
    n = split_frames(out, len, types, seqs, flags, 4);
    CHECK(n == 1u && flags[0] == 0u); /* cleared for the next frame */
}

static void test_framer_overflow_flag(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    unsigned types[4], seqs[4], flags[4];
    int16_t v = 1;
    int i;
    size_t len = 0, n;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_OK);
    for (i = 0; i < 4; i++) {
        len = ecg_framer_push(&f, &v, i == 3 ? (uint8_t)(ECG_FLAG_OVERFLOW | ECG_FLAG_LEAD_OFF) : 0u,
                              out, sizeof out);
    }
    n = split_frames(out, len, types, seqs, flags, 4);
    CHECK(n == 2u && flags[1] == (ECG_FLAG_OVERFLOW | ECG_FLAG_LEAD_OFF));
}

static void test_framer_flush_partial(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    int16_t v = -3;
    size_t len;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 9u) == ECG_OK);
    CHECK(ecg_framer_flush(&f, out, sizeof out) == 0u);
    CHECK(ecg_framer_push(&f, &v, 0, out, sizeof out) == 0u);
    len = ecg_framer_flush(&f, out, sizeof out);
    CHECK(len == ECG_HEADER_FRAME_SIZE + ECG_DATA_FRAME_SIZE(1, 1));
    CHECK(frame_ok(out + ECG_HEADER_FRAME_SIZE, ECG_DATA_FRAME_SIZE(1, 1), ECG_TYPE_DATA));
    CHECK(out[ECG_HEADER_FRAME_SIZE + 9] == 1u); /* n = 1 */
    CHECK(get_u16(out + ECG_HEADER_FRAME_SIZE + 6) == 9u);
    CHECK(ecg_framer_flush(&f, out, sizeof out) == 0u);
}

static void test_framer_small_buffer_drops_frame(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    uint8_t out[ECG_FRAMER_OUT_MAX];
    int16_t v = 1;
    int i;
    size_t len = 0;
    cfg.samples_per_frame = 1;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_OK);
    CHECK(ecg_framer_push(&f, &v, 0, out, 10u) == 0u); /* dropped: seq 0 is used up */
    for (i = 0; i < 1; i++) len = ecg_framer_push(&f, &v, 0, out, sizeof out);
    CHECK(len == ECG_HEADER_FRAME_SIZE + ECG_DATA_FRAME_SIZE(1, 1)); /* header still due */
    CHECK(get_u16(out + ECG_HEADER_FRAME_SIZE + 6) == 1u);
}

static void test_framer_init_rejects_bad_config(void)
{
    ecg_config_t cfg = test_config();
    ecg_framer_t f;
    cfg.channels = 0;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_CHANNELS);
    cfg.channels = (uint8_t)(ECG_MAX_CHANNELS + 1u);
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_CHANNELS);
    cfg = test_config();
    cfg.samples_per_frame = 0;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_FRAME_SAMPLES);
    cfg.samples_per_frame = (uint8_t)(ECG_MAX_FRAME_SAMPLES + 1u);
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_FRAME_SAMPLES);
    cfg = test_config();
    cfg.fs_millihz = 0;
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_RATE);
    cfg = test_config();
    cfg.channels = 8;
    cfg.samples_per_frame = 32; /* 4 + 2*32*8 = 516 > 512 */
    CHECK(ecg_framer_init(&f, &cfg, 0u, 0) == ECG_ERR_FRAME_SAMPLES);
}

static ecg_sample_t sample_of(int16_t v, uint8_t flags)
{
    ecg_sample_t s;
    memset(&s, 0, sizeof s);
    s.value[0] = v;
    s.flags = flags;
    return s;
}

static ecg_ring_t g_ring;

static void test_ring_fifo_order(void)
{
    ecg_sample_t s, got;
    int i;
    ecg_ring_init(&g_ring);
    CHECK(!ecg_ring_pop(&g_ring, &got));
    for (i = 0; i < 10; i++) {
        s = sample_of((int16_t)(i * 3), (uint8_t)(i & 1));
        CHECK(ecg_ring_push(&g_ring, &s));
    }
    CHECK(ecg_ring_count(&g_ring) == 10u);
    for (i = 0; i < 10; i++) {
        CHECK(ecg_ring_pop(&g_ring, &got));
        CHECK(got.value[0] == i * 3 && got.flags == (uint8_t)(i & 1));
    }
    CHECK(ecg_ring_count(&g_ring) == 0u && !ecg_ring_pop(&g_ring, &got));
}

static void test_ring_overflow_counted_not_corrupting(void)
{
    ecg_sample_t s, got;
    int i;
    ecg_ring_init(&g_ring);
    for (i = 0; i < (int)ECG_RING_SIZE + 5; i++) {
        s = sample_of((int16_t)i, 0);
        CHECK(ecg_ring_push(&g_ring, &s) == (i < (int)ECG_RING_SIZE));
    }
    CHECK(ecg_ring_overflows(&g_ring) == 5u);
    CHECK(ecg_ring_count(&g_ring) == ECG_RING_SIZE);
    for (i = 0; i < (int)ECG_RING_SIZE; i++) { /* the first RING_SIZE samples, intact */
        CHECK(ecg_ring_pop(&g_ring, &got) && got.value[0] == i);
    }
    CHECK(!ecg_ring_pop(&g_ring, &got));
    s = sample_of(-7, 0);
    CHECK(ecg_ring_push(&g_ring, &s)); /* usable again */
    CHECK(ecg_ring_pop(&g_ring, &got) && got.value[0] == -7);
    CHECK(ecg_ring_overflows(&g_ring) == 5u);
}

static void test_ring_index_wraparound(void)
{
    ecg_sample_t s, got;
    long i;
    int bad = 0;
    ecg_ring_init(&g_ring);
    for (i = 0; i < 200000L; i++) { /* free-running indices wrap past 65535 three times */
        s = sample_of((int16_t)(i & 0x7FFF), 0);
        if (!ecg_ring_push(&g_ring, &s)) bad++;
        if (i % 3 != 0) {
            if (!ecg_ring_pop(&g_ring, &got)) bad++;
        }
        if (ecg_ring_count(&g_ring) >= ECG_RING_SIZE - 1u) {
            while (ecg_ring_pop(&g_ring, &got)) {
            }
        }
    }
    CHECK(bad == 0);
    CHECK(ecg_ring_overflows(&g_ring) == 0u);
}

static void test_ring_interleaved_producer_consumer(void)
{
    /* An "ISR" pushes a counter at random moments between the consumer's steps; the
     * consumer must see every value it did not lose, in order, and losses == overflows. */
    ecg_sample_t s, got;
    unsigned long rng = 12345ul;
    long produced = 0, consumed = 0, lost = 0;
    unsigned prev = 0, step_size;
    int order_ok = 1, have_prev = 0, step;
    ecg_ring_init(&g_ring);
    for (step = 0; step < 100000; step++) {
        rng = rng * 1103515245ul + 12345ul;
        if ((rng >> 16) % 5u < 3u) { /* producer burst of 0..3 samples */
            unsigned k, burst = (unsigned)((rng >> 20) % 4u);
            for (k = 0; k < burst; k++) {
                s = sample_of((int16_t)(produced & 0x7FFF), 0);
                if (!ecg_ring_push(&g_ring, &s)) lost++;
                produced++;
            }
        } else {
            while (ecg_ring_pop(&g_ring, &got)) { /* values only move forward (mod 2^15) */
                step_size = ((unsigned)got.value[0] - prev) & 0x7FFFu;
                if (have_prev && (step_size == 0u || step_size > 1000u)) order_ok = 0;
                prev = (unsigned)got.value[0];
                have_prev = 1;
                consumed++;
            }
        }
    }
    while (ecg_ring_pop(&g_ring, &got)) consumed++;
    CHECK(order_ok);
    CHECK(consumed + lost == produced);
    CHECK((unsigned long)ecg_ring_overflows(&g_ring) == ((unsigned long)lost & 0xFFFFul));
}

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case;

static const test_case TESTS[] = {
    {"crc16_check_value", test_crc16_check_value},
    {"crc16_empty_and_incremental", test_crc16_empty_and_incremental},
    {"header_frame_layout", test_header_frame_layout},
    {"data_frame_layout", test_data_frame_layout},
    {"data_frame_rejects_bad_sizes", test_data_frame_rejects_bad_sizes},
    {"encode_small_buffer_returns_zero", test_encode_small_buffer_returns_zero},
    {"framer_header_first_and_periodic", test_framer_header_first_and_periodic},
    {"framer_sequence_wraps", test_framer_sequence_wraps},
    {"framer_lead_off_flag_per_frame", test_framer_lead_off_flag_per_frame},
    {"framer_overflow_flag", test_framer_overflow_flag},
    {"framer_flush_partial", test_framer_flush_partial},
    {"framer_small_buffer_drops_frame", test_framer_small_buffer_drops_frame},
    {"framer_init_rejects_bad_config", test_framer_init_rejects_bad_config},
    {"ring_fifo_order", test_ring_fifo_order},
    {"ring_overflow_counted_not_corrupting", test_ring_overflow_counted_not_corrupting},
    {"ring_index_wraparound", test_ring_index_wraparound},
    {"ring_interleaved_producer_consumer", test_ring_interleaved_producer_consumer},
};

int main(int argc, char **argv)
{
    size_t i;
    int passed = 0, failed = 0;
    for (i = 0; i < sizeof TESTS / sizeof TESTS[0]; i++) {
        if (argc > 1 && strcmp(argv[1], "--list") == 0) {
            printf("%s\n", TESTS[i].name);
            continue;
        }
        g_failed_checks = 0;
        g_first_failure[0] = '\0';
        TESTS[i].fn();
        if (g_failed_checks == 0) {
            printf("ok %s\n", TESTS[i].name);
            passed++;
        } else {
            printf("not ok %s: %s (%d failed checks)\n", TESTS[i].name, g_first_failure,
                   g_failed_checks);
            failed++;
        }
    }
    if (argc > 1 && strcmp(argv[1], "--list") == 0) return 0;
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
