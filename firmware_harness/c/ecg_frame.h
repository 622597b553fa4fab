/*
 * ecg_frame.h - frame encoder for the edge-ecg binary protocol v1 (see ecg_protocol.h).
 *
 * No heap, no globals: every function writes into a caller-owned buffer and returns the
 * number of bytes written, or 0 when the buffer is too small or an argument is invalid.
 */
#ifndef ECG_FRAME_H
#define ECG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "ecg_protocol.h"

/* What the header frame announces. */
typedef struct {
    uint32_t fs_millihz;       /* sampling rate in mHz: 360000 = 360 Hz, 360003 = 360.003 Hz */
    uint32_t gain_milli;       /* ADC counts per mV, times 1000 */
    int16_t baseline;          /* ADC count at 0 mV */
    uint8_t channels;          /* 1 .. ECG_MAX_CHANNELS for the framer */
    uint8_t samples_per_frame; /* per channel, 1 .. ECG_MAX_FRAME_SAMPLES for the framer */
    uint8_t adc_bits;          /* resolution of the converter, e.g. 10 or 12 */
    uint16_t firmware_version; /* e.g. 0x0100 = 1.0 */
    uint32_t device_id;
} ecg_config_t;

/* Header frame (ECG_HEADER_FRAME_SIZE bytes) for cfg. */
size_t ecg_encode_header(const ecg_config_t *cfg, uint8_t *out, size_t cap);

/* Data frame: n sample sets of `channels` int16 values, interleaved by sample. */
size_t ecg_encode_data(uint16_t seq, uint8_t flags, const int16_t *samples, uint8_t n,
                       uint8_t channels, uint8_t *out, size_t cap);

/* Bytes one ecg_framer_push/flush may write at most: a header and a full data frame. */
#define ECG_FRAMER_OUT_MAX \
    (ECG_HEADER_FRAME_SIZE + ECG_DATA_FRAME_SIZE(ECG_MAX_FRAME_SAMPLES, ECG_MAX_CHANNELS))

/* Sample sets in, frames out; resends the header every header_interval samples. */
typedef struct {
    ecg_config_t cfg;
    uint32_t header_interval; /* samples between headers; 0 = only before the first frame */
    uint32_t since_header;    /* samples framed since the last header */
    uint16_t seq;             /* sequence number of the next data frame (wraps) */
    uint8_t header_due;       /* 1: emit a header before the next data frame */
    uint8_t n_pending;        /* sample sets collected for the next frame */
    uint8_t flags_pending;    /* OR of the flags of those samples */
    int16_t pending[ECG_MAX_FRAME_SAMPLES * ECG_MAX_CHANNELS];
} ecg_framer_t;

/* Error codes of ecg_framer_init. */
#define ECG_OK 0
#define ECG_ERR_CHANNELS (-1)
#define ECG_ERR_FRAME_SAMPLES (-2)
#define ECG_ERR_RATE (-3)

/* Set up a framer; returns ECG_OK or an ECG_ERR_* code (then the framer is unusable). */
int ecg_framer_init(ecg_framer_t *f, const ecg_config_t *cfg, uint32_t header_interval,
                    uint16_t first_seq);

/*
 * Add one sample set (cfg.channels values) with its ECG_FLAG_* bits. When it completes a
 * frame, writes the frame (preceded by a header when one is due) to out and returns its
 * length; otherwise returns 0. out must hold ECG_FRAMER_OUT_MAX bytes: with less, a
 * completed frame is discarded (its sequence number is still used, so a reader sees the gap).
 */
size_t ecg_framer_push(ecg_framer_t *f, const int16_t *values, uint8_t flags, uint8_t *out,
                       size_t cap);

/* Frame the pending samples now (a short frame); 0 if none are pending. */
size_t ecg_framer_flush(ecg_framer_t *f, uint8_t *out, size_t cap);

/* Emit a header before the next data frame (e.g. after the gain was changed). */
void ecg_framer_resend_header(ecg_framer_t *f);

#endif /* ECG_FRAME_H */
