/*
 * ecg_host.c - flat entry points for loading the C core from Python with ctypes.
 *
 * Host builds only (libecgcore.so); a board links ecg_crc16.c, ecg_ring.c and ecg_frame.c.
 * Scalars instead of structs, so the Python side never mirrors a struct layout; the framer
 * lives in memory Python allocates with ecg_host_framer_size() bytes.
 */
#include <stddef.h>
#include <stdint.h>

#include "ecg_crc16.h"
#include "ecg_frame.h"
#include "ecg_ring.h"

size_t ecg_host_framer_size(void);
size_t ecg_host_framer_out_max(void);
unsigned ecg_host_max_channels(void);
unsigned ecg_host_max_frame_samples(void);
unsigned ecg_host_ring_size(void);
size_t ecg_host_encode_header(uint32_t fs_millihz, uint32_t gain_milli, int16_t baseline,
                              uint8_t channels, uint8_t samples_per_frame, uint8_t adc_bits,
                              uint16_t firmware_version, uint32_t device_id, uint8_t *out,
                              size_t cap);
int ecg_host_framer_init(void *mem, uint32_t fs_millihz, uint32_t gain_milli, int16_t baseline,
                         uint8_t channels, uint8_t samples_per_frame, uint8_t adc_bits,
                         uint16_t firmware_version, uint32_t device_id, uint32_t header_interval,
                         uint16_t first_seq);
size_t ecg_host_framer_push_block(void *mem, const int16_t *values, const uint8_t *flags,
                                  size_t n, uint8_t *out, size_t cap);
size_t ecg_host_framer_flush(void *mem, uint8_t *out, size_t cap);
uint16_t ecg_host_framer_seq(const void *mem);
void ecg_host_framer_resend_header(void *mem);

static ecg_config_t make_config(uint32_t fs_millihz, uint32_t gain_milli, int16_t baseline,
                                uint8_t channels, uint8_t samples_per_frame, uint8_t adc_bits,
                                uint16_t firmware_version, uint32_t device_id)
{
    ecg_config_t cfg;
    cfg.fs_millihz = fs_millihz;
    cfg.gain_milli = gain_milli;
    cfg.baseline = baseline;
    cfg.channels = channels;
    cfg.samples_per_frame = samples_per_frame;
    cfg.adc_bits = adc_bits;
    cfg.firmware_version = firmware_version;
    cfg.device_id = device_id;
    return cfg;
}

size_t ecg_host_framer_size(void) { return sizeof(ecg_framer_t); }
size_t ecg_host_framer_out_max(void) { return ECG_FRAMER_OUT_MAX; }
unsigned ecg_host_max_channels(void) { return ECG_MAX_CHANNELS; }
unsigned ecg_host_max_frame_samples(void) { return ECG_MAX_FRAME_SAMPLES; }
unsigned ecg_host_ring_size(void) { return ECG_RING_SIZE; }

size_t ecg_host_encode_header(uint32_t fs_millihz, uint32_t gain_milli, int16_t baseline,
                              uint8_t channels, uint8_t samples_per_frame, uint8_t adc_bits,
                              uint16_t firmware_version, uint32_t device_id, uint8_t *out,
                              size_t cap)
{
    ecg_config_t cfg = make_config(fs_millihz, gain_milli, baseline, channels, samples_per_frame,
                                   adc_bits, firmware_version, device_id);
    return ecg_encode_header(&cfg, out, cap);
}

int ecg_host_framer_init(void *mem, uint32_t fs_millihz, uint32_t gain_milli, int16_t baseline,
                         uint8_t channels, uint8_t samples_per_frame, uint8_t adc_bits,
                         uint16_t firmware_version, uint32_t device_id, uint32_t header_interval,
                         uint16_t first_seq)
{
    ecg_config_t cfg = make_config(fs_millihz, gain_milli, baseline, channels, samples_per_frame,
                                   adc_bits, firmware_version, device_id);
    return ecg_framer_init((ecg_framer_t *)mem, &cfg, header_interval, first_seq);
}

/* Push n sample sets (values: n * channels, flags: n or NULL). Returns the bytes written,
 * or (size_t)-1 if cap could not hold the worst case (nothing is pushed then). */
size_t ecg_host_framer_push_block(void *mem, const int16_t *values, const uint8_t *flags,
                                  size_t n, uint8_t *out, size_t cap)
{
    ecg_framer_t *f = (ecg_framer_t *)mem;
    size_t frames_max = (n + f->n_pending) / f->cfg.samples_per_frame + 1u;
    size_t used = 0;
    size_t i;
    if (cap / ECG_FRAMER_OUT_MAX < frames_max) {
        return (size_t)-1;
    }
    for (i = 0; i < n; i++) {
        used += ecg_framer_push(f, values + i * f->cfg.channels, flags ? flags[i] : 0u, out + used,
                                cap - used);
    }
    return used;
}

size_t ecg_host_framer_flush(void *mem, uint8_t *out, size_t cap)
{
    return ecg_framer_flush((ecg_framer_t *)mem, out, cap);
}

uint16_t ecg_host_framer_seq(const void *mem)
{
    return ((const ecg_framer_t *)mem)->seq;
}

void ecg_host_framer_resend_header(void *mem)
{
    ecg_framer_resend_header((ecg_framer_t *)mem);
}
