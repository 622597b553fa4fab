/*
 * ecg_crc16.h - CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first (no reflection),
 * no final XOR. Check value: "123456789" -> 0x29B1.
 */
#ifndef ECG_CRC16_H
#define ECG_CRC16_H

#include <stddef.h>
#include <stdint.h>

#define ECG_CRC16_INIT 0xFFFFu

/* Continue a CRC over len more bytes (start with ECG_CRC16_INIT). */
uint16_t ecg_crc16_update(uint16_t crc, const uint8_t *data, size_t len);

/* CRC-16/CCITT-FALSE of len bytes. */
uint16_t ecg_crc16(const uint8_t *data, size_t len);

#endif /* ECG_CRC16_H */
