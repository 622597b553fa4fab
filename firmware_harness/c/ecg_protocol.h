/*
 * ecg_protocol.h - constants of the edge-ecg binary serial protocol, version 1.
 *
 * The specification is firmware_harness/PROTOCOL.md; the Python side is
 * edge_ecg/stream/protocol.py. Both are tested against firmware_harness/vectors/.
 *
 * Frame, all multi-byte fields little-endian:
 *   marker 0xEC 0x47 | version | type | uint16 payload length | payload | uint16 CRC
 * CRC-16/CCITT-FALSE over version .. end of payload.
 */
#ifndef ECG_PROTOCOL_H
#define ECG_PROTOCOL_H

#define ECG_MARKER_0 0xECu
#define ECG_MARKER_1 0x47u
#define ECG_PROTOCOL_VERSION 1u

#define ECG_TYPE_HEADER 1u
#define ECG_TYPE_DATA 2u

/* Data frame flag bits. */
#define ECG_FLAG_LEAD_OFF 0x01u /* an electrode was off during a sample of the frame */
#define ECG_FLAG_OVERFLOW 0x02u /* the device dropped samples just before this frame */

#define ECG_PREFIX_SIZE 6u      /* marker(2) version type length(2) */
#define ECG_CRC_SIZE 2u
#define ECG_HEADER_PAYLOAD 20u
#define ECG_DATA_PREFIX 4u      /* seq(2) flags n */
#define ECG_MAX_PAYLOAD 512u

#define ECG_HEADER_FRAME_SIZE (ECG_PREFIX_SIZE + ECG_HEADER_PAYLOAD + ECG_CRC_SIZE)
#define ECG_DATA_FRAME_SIZE(n, channels) \
    (ECG_PREFIX_SIZE + ECG_DATA_PREFIX + 2u * (unsigned long)(n) * (unsigned long)(channels) + ECG_CRC_SIZE)

/* Compile-time sizes; override with -D. A board with one lead keeps the defaults. */
#ifndef ECG_MAX_CHANNELS
#define ECG_MAX_CHANNELS 1u
#endif
#ifndef ECG_MAX_FRAME_SAMPLES
#define ECG_MAX_FRAME_SAMPLES 32u /* samples per channel one data frame may hold */
#endif

#endif /* ECG_PROTOCOL_H */
