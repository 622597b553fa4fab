/* ecg_frame.c - header/data frame encoding and the sample framer. */
#include "ecg_frame.h"

#include "ecg_crc16.h"

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)((v >> 24) & 0xFFu);
}

/* Marker, version, type, length; the caller writes the payload at out + ECG_PREFIX_SIZE. */
static void put_prefix(uint8_t *out, uint8_t type, uint16_t payload_len)
{
    out[0] = (uint8_t)ECG_MARKER_0;
    out[1] = (uint8_t)ECG_MARKER_1;
    out[2] = (uint8_t)ECG_PROTOCOL_VERSION;
    out[3] = type;
    put_u16(out + 4, payload_len);
}

/* CRC over version .. payload end, appended; returns the frame length. */
static size_t put_crc(uint8_t *out, uint16_t payload_len)
{
    size_t body = 4u + (size_t)payload_len;
    put_u16(out + 2 + body, ecg_crc16(out + 2, body));
    return ECG_PREFIX_SIZE + (size_t)payload_len + ECG_CRC_SIZE;
}

size_t ecg_encode_header(const ecg_config_t *cfg, uint8_t *out, size_t cap)
{
    uint8_t *p = out + ECG_PREFIX_SIZE;
    if (cfg == NULL || out == NULL || cap < ECG_HEADER_FRAME_SIZE) {
        return 0;
    }
    put_prefix(out, (uint8_t)ECG_TYPE_HEADER, (uint16_t)ECG_HEADER_PAYLOAD);
    put_u32(p, cfg->fs_millihz);
    put_u32(p + 4, cfg->gain_milli);
    put_u16(p + 8, (uint16_t)cfg->baseline);
    p[10] = cfg->channels;
    p[11] = cfg->samples_per_frame;
    p[12] = cfg->adc_bits;
    p[13] = 0u; /* reserved */
    put_u16(p + 14, cfg->firmware_version);
    put_u32(p + 16, cfg->device_id);
    return put_crc(out, (uint16_t)ECG_HEADER_PAYLOAD);
}

size_t ecg_encode_data(uint16_t seq, uint8_t flags, const int16_t *samples, uint8_t n,
                       uint8_t channels, uint8_t *out, size_t cap)
{
    size_t count = (size_t)n * (size_t)channels;
    size_t payload = ECG_DATA_PREFIX + 2u * count;
    size_t i;
    uint8_t *p = out + ECG_PREFIX_SIZE;
    if (samples == NULL || out == NULL || n == 0u || channels == 0u || payload > ECG_MAX_PAYLOAD ||
        cap < ECG_PREFIX_SIZE + payload + ECG_CRC_SIZE) {
        return 0;
    }
    put_prefix(out, (uint8_t)ECG_TYPE_DATA, (uint16_t)payload);
    put_u16(p, seq);
    p[2] = flags;
    p[3] = n;
    for (i = 0; i < count; i++) {
        put_u16(p + ECG_DATA_PREFIX + 2u * i, (uint16_t)samples[i]);
    }
    return put_crc(out, (uint16_t)payload);
}

int ecg_framer_init(ecg_framer_t *f, const ecg_config_t *cfg, uint32_t header_interval,
                    uint16_t first_seq)
{
    if (cfg->channels == 0u || cfg->channels > ECG_MAX_CHANNELS) {
        return ECG_ERR_CHANNELS;
    }
    if (cfg->samples_per_frame == 0u || cfg->samples_per_frame > ECG_MAX_FRAME_SAMPLES ||
        ECG_DATA_PREFIX + 2ul * cfg->samples_per_frame * cfg->channels > ECG_MAX_PAYLOAD) {
        return ECG_ERR_FRAME_SAMPLES;
    }
    if (cfg->fs_millihz == 0u || cfg->gain_milli == 0u) {
        return ECG_ERR_RATE;
    }
    f->cfg = *cfg;
    f->header_interval = header_interval;
    f->since_header = 0;
    f->seq = first_seq;
    f->header_due = 1u;
    f->n_pending = 0;
    f->flags_pending = 0;
    return ECG_OK;
}

static size_t emit(ecg_framer_t *f, uint8_t *out, size_t cap)
{
    size_t len = 0;
    size_t data_len;
    uint8_t n = f->n_pending;
    if (cap < ECG_HEADER_FRAME_SIZE + ECG_DATA_FRAME_SIZE(n, f->cfg.channels)) {
        len = 0; /* too small: drop the frame, keep the sequence moving */
    } else {
        if (f->header_due || (f->header_interval != 0u && f->since_header >= f->header_interval)) {
            len = ecg_encode_header(&f->cfg, out, cap);
            f->header_due = 0;
            f->since_header = 0;
        }
        data_len = ecg_encode_data(f->seq, f->flags_pending, f->pending, n, f->cfg.channels,
                                   out + len, cap - len);
        len += data_len;
    }
    f->since_header += n;
    f->seq = (uint16_t)(f->seq + 1u);
    f->n_pending = 0;
    f->flags_pending = 0;
    return len;
}

size_t ecg_framer_push(ecg_framer_t *f, const int16_t *values, uint8_t flags, uint8_t *out,
                       size_t cap)
{
    unsigned ch;
    size_t base = (size_t)f->n_pending * f->cfg.channels;
    for (ch = 0; ch < f->cfg.channels; ch++) {
        f->pending[base + ch] = values[ch];
    }
    f->n_pending = (uint8_t)(f->n_pending + 1u);
    f->flags_pending = (uint8_t)(f->flags_pending | flags);
    if (f->n_pending < f->cfg.samples_per_frame) {
        return 0;
    }
    return emit(f, out, cap);
}

size_t ecg_framer_flush(ecg_framer_t *f, uint8_t *out, size_t cap)
{
    if (f->n_pending == 0u) {
        return 0;
    }
    return emit(f, out, cap);
}

void ecg_framer_resend_header(ecg_framer_t *f)
{
    f->header_due = 1u;
}
