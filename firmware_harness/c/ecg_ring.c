/* ecg_ring.c - lock-free SPSC sample ring (see ecg_ring.h for the rules). */
#include "ecg_ring.h"

#define ECG_RING_MASK ((ecg_index_t)(ECG_RING_SIZE - 1u))

void ecg_ring_init(ecg_ring_t *ring)
{
    ring->head = 0;
    ring->tail = 0;
    ring->overflows = 0;
}

bool ecg_ring_push(ecg_ring_t *ring, const ecg_sample_t *sample)
{
    ecg_index_t head = ring->head;
    volatile ecg_sample_t *slot;
    unsigned ch;
    if ((ecg_index_t)(head - ring->tail) >= (ecg_index_t)ECG_RING_SIZE) {
        ring->overflows = (ecg_index_t)(ring->overflows + 1u);
        return false;
    }
    slot = &ring->slot[head & ECG_RING_MASK];
    for (ch = 0; ch < ECG_MAX_CHANNELS; ch++) {
        slot->value[ch] = sample->value[ch];
    }
    slot->flags = sample->flags;
    ECG_RING_BARRIER();
    ring->head = (ecg_index_t)(head + 1u); /* publish only after the slot is written */
    return true;
}

bool ecg_ring_pop(ecg_ring_t *ring, ecg_sample_t *out)
{
    ecg_index_t tail = ring->tail;
    const volatile ecg_sample_t *slot;
    unsigned ch;
    if (ring->head == tail) {
        return false;
    }
    ECG_RING_BARRIER();
    slot = &ring->slot[tail & ECG_RING_MASK];
    for (ch = 0; ch < ECG_MAX_CHANNELS; ch++) {
        out->value[ch] = slot->value[ch];
    }
    out->flags = slot->flags;
    ECG_RING_BARRIER();
    ring->tail = (ecg_index_t)(tail + 1u); /* free the slot only after it was read */
    return true;
}

ecg_index_t ecg_ring_count(const ecg_ring_t *ring)
{
    return (ecg_index_t)(ring->head - ring->tail);
}

ecg_index_t ecg_ring_overflows(const ecg_ring_t *ring)
{
    return ring->overflows;
}
