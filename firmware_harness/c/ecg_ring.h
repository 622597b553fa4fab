/*
 * ecg_ring.h - sample ring buffer from the ADC interrupt to the main loop.
 *
 * Lock-free single producer (the ISR: ecg_ring_push) / single consumer (the main loop:
 * ecg_ring_pop). head is written only by the producer, tail only by the consumer; both
 * are free-running counters of the CPU's atomic width and the slot index is counter &
 * (ECG_RING_SIZE - 1), so ECG_RING_SIZE must be a power of two. When the buffer is full
 * the NEW sample is dropped and `overflows` counted: the producer never touches tail, so
 * nothing already queued is corrupted. The consumer learns about the loss by comparing
 * ecg_ring_overflows() with the value it saw last time (the counter wraps).
 *
 * Ordering: all shared fields are volatile, so the compiler keeps "write slot, then
 * publish head" in order; that is enough on a single-core MCU (AVR, Cortex-M0+ with the
 * ISR on the consuming core). With producer and consumer on different cores, define
 * ECG_RING_BARRIER() as the data memory barrier (e.g. __dmb() on RP2040).
 */
#ifndef ECG_RING_H
#define ECG_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "ecg_protocol.h"

#ifndef ECG_RING_SIZE
#define ECG_RING_SIZE 64u
#endif

#ifndef ECG_RING_BARRIER
#define ECG_RING_BARRIER() ((void)0)
#endif

#if defined(__AVR__)
/* 8-bit CPU: a uint8_t is the widest type read/written in one instruction. */
typedef uint8_t ecg_index_t;
#if ECG_RING_SIZE > 128
#error "ECG_RING_SIZE must be <= 128 on AVR (8-bit indices)"
#endif
#else
typedef uint16_t ecg_index_t;
#if ECG_RING_SIZE > 32768
#error "ECG_RING_SIZE must be <= 32768"
#endif
#endif

#if (ECG_RING_SIZE < 2) || ((ECG_RING_SIZE & (ECG_RING_SIZE - 1)) != 0)
#error "ECG_RING_SIZE must be a power of two >= 2"
#endif

/* One sampling instant: a value per channel (ADC counts) and ECG_FLAG_* bits. */
typedef struct {
    int16_t value[ECG_MAX_CHANNELS];
    uint8_t flags;
} ecg_sample_t;

typedef struct {
    volatile ecg_index_t head;      /* next slot to write; producer only */
    volatile ecg_index_t tail;      /* next slot to read; consumer only */
    volatile ecg_index_t overflows; /* samples dropped because full; producer only; wraps */
    volatile ecg_sample_t slot[ECG_RING_SIZE];
} ecg_ring_t;

/* Empty the ring and zero the overflow counter (call before the ISR is enabled). */
void ecg_ring_init(ecg_ring_t *ring);

/* Producer: queue one sample. Returns false (and counts an overflow) when full. */
bool ecg_ring_push(ecg_ring_t *ring, const ecg_sample_t *sample);

/* Consumer: take the oldest sample into *out. Returns false when empty. */
bool ecg_ring_pop(ecg_ring_t *ring, ecg_sample_t *out);

/* Samples queued (0 .. ECG_RING_SIZE); exact for the consumer, a snapshot otherwise. */
ecg_index_t ecg_ring_count(const ecg_ring_t *ring);

/* Total samples dropped so far, modulo 2^(8*sizeof(ecg_index_t)). */
ecg_index_t ecg_ring_overflows(const ecg_ring_t *ring);

#endif /* ECG_RING_H */
