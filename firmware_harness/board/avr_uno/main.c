/*
 * main.c - edge-ecg board port: Arduino Uno / Nano (ATmega328P, 16 MHz) + AD8232 front end.
 *
 * NOT YET RUN ON HARDWARE: it is compile-checked with avr-gcc (tests/test_firmware_c.py)
 * and the C core it uses is unit-tested on the host, but nobody has flashed it to a board.
 * See firmware_harness/README.md for wiring, building and flashing.
 *
 * Data path: Timer1 (CTC, no prescaler) hits compare match B ECG_FS_HZ times a second and
 * auto-triggers the ADC on A0; the ADC interrupt reads the sample and the AD8232 lead-off
 * pins (LO+ on D10/PB2, LO- on D11/PB3) into the lock-free ring buffer. The main loop takes
 * samples out, frames them (protocol v1, header once a second) and writes the bytes to the
 * UART (USB serial) at ECG_BAUD, polled. If the main loop ever falls behind by more than
 * ECG_RING_SIZE samples, the ring drops samples, counts them, and the next data frame
 * carries ECG_FLAG_OVERFLOW.
 *
 * Build-time options (-D, see Makefile): ECG_FS_HZ (250 or 360), ECG_AREF_3V3 (AREF wired
 * to 3.3 V instead of the default AVcc = 5 V reference), ECG_DEVICE_ID.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <stdint.h>

#include "ecg_frame.h"
#include "ecg_ring.h"

#ifndef F_CPU
#error "define F_CPU (e.g. -DF_CPU=16000000UL)"
#endif
#ifndef ECG_FS_HZ
#define ECG_FS_HZ 360UL
#endif
#ifndef ECG_BAUD
#define ECG_BAUD 115200UL
#endif
#ifndef ECG_DEVICE_ID
#define ECG_DEVICE_ID 1UL
#endif
#define ECG_FIRMWARE_VERSION 0x0100u
#define ECG_SAMPLES_PER_FRAME 10u

/* Timer1 period in CPU cycles; the true rate F_CPU / period is what the header announces
 * (360 Hz at 16 MHz -> period 44444 -> 360.0036 Hz -> 360003 mHz). */
#define ECG_TIMER_PERIOD ((F_CPU + ECG_FS_HZ / 2UL) / ECG_FS_HZ)
#if ECG_TIMER_PERIOD > 65536UL
#error "ECG_FS_HZ too low for Timer1 without a prescaler"
#endif
#define ECG_FS_MILLIHZ ((uint32_t)((F_CPU * 1000ULL) / ECG_TIMER_PERIOD))

/*
 * AD8232 (SparkFun breakout): gain 1100 V/V, output centred on REFOUT = 1.65 V.
 * ADC counts per mV = 1.1 V / Vref * 1024; baseline = 1.65 V / Vref * 1024.
 */
#ifdef ECG_AREF_3V3
#define ECG_ADMUX_REF 0u           /* external AREF (3.3 V wired to AREF) */
#define ECG_GAIN_MILLI 341333UL    /* 1.1 / 3.3 * 1024 = 341.333 counts/mV */
#define ECG_BASELINE 512
#else
#define ECG_ADMUX_REF _BV(REFS0)   /* AVcc = 5 V */
#define ECG_GAIN_MILLI 225280UL    /* 1.1 / 5.0 * 1024 = 225.28 counts/mV */
#define ECG_BASELINE 338
#endif

#define ECG_LEAD_OFF_PINS (_BV(PB2) | _BV(PB3)) /* D10 = LO+, D11 = LO- */

static ecg_ring_t g_ring;

ISR(ADC_vect)
{
    ecg_sample_t sample;
    sample.value[0] = (int16_t)ADC;
    sample.flags = (PINB & ECG_LEAD_OFF_PINS) ? (uint8_t)ECG_FLAG_LEAD_OFF : 0u;
    (void)ecg_ring_push(&g_ring, &sample);
    TIFR1 = _BV(OCF1B); /* re-arm the auto-trigger (it fires on the flag's rising edge) */
}

static void uart_init(void)
{
    const uint16_t ubrr = (uint16_t)((F_CPU + 4UL * ECG_BAUD) / (8UL * ECG_BAUD) - 1UL);
    UBRR0H = (uint8_t)(ubrr >> 8);
    UBRR0L = (uint8_t)(ubrr & 0xFFu);
    UCSR0A = _BV(U2X0);                  /* double speed: 2.1 % error at 115200 */
    UCSR0B = _BV(TXEN0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00);  /* 8N1 */
}

static void uart_write(const uint8_t *data, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        while (!(UCSR0A & _BV(UDRE0))) {
        }
        UDR0 = data[i];
    }
}

static void sampling_init(void)
{
    DDRB &= (uint8_t)~ECG_LEAD_OFF_PINS;      /* lead-off pins: inputs, no pull-ups */
    PORTB &= (uint8_t)~ECG_LEAD_OFF_PINS;
    DIDR0 = _BV(ADC0D);                       /* A0 analog only */
    ADMUX = (uint8_t)(ECG_ADMUX_REF | 0u);    /* channel A0, right-adjusted */
    ADCSRB = _BV(ADTS2) | _BV(ADTS0);         /* auto trigger: Timer1 compare match B */
    ADCSRA = _BV(ADEN) | _BV(ADATE) | _BV(ADIE) | _BV(ADPS2) | _BV(ADPS1) | _BV(ADPS0); /* /128 */
    TCCR1A = 0;
    TCCR1B = _BV(WGM12) | _BV(CS10);          /* CTC on OCR1A, clk/1 */
    OCR1A = (uint16_t)(ECG_TIMER_PERIOD - 1UL);
    OCR1B = (uint16_t)(ECG_TIMER_PERIOD - 1UL);
    TCNT1 = 0;
}

int main(void)
{
    static ecg_framer_t framer;
    static uint8_t out[ECG_FRAMER_OUT_MAX];
    ecg_config_t cfg;
    ecg_sample_t sample;
    ecg_index_t seen_overflows = 0;
    uint8_t extra_flags = 0;

    cfg.fs_millihz = ECG_FS_MILLIHZ;
    cfg.gain_milli = ECG_GAIN_MILLI;
    cfg.baseline = ECG_BASELINE;
    cfg.channels = 1;
    cfg.samples_per_frame = ECG_SAMPLES_PER_FRAME;
    cfg.adc_bits = 10;
    cfg.firmware_version = ECG_FIRMWARE_VERSION;
    cfg.device_id = ECG_DEVICE_ID;
    if (ecg_framer_init(&framer, &cfg, (uint32_t)ECG_FS_HZ, 0) != ECG_OK) {
        for (;;) {
        }
    }
    ecg_ring_init(&g_ring);
    uart_init();
    sampling_init();
    sei();
    for (;;) {
        ecg_index_t overflows = ecg_ring_overflows(&g_ring);
        if (overflows != seen_overflows) {
            seen_overflows = overflows;
            extra_flags = (uint8_t)ECG_FLAG_OVERFLOW;
        }
        if (ecg_ring_pop(&g_ring, &sample)) {
            size_t len = ecg_framer_push(&framer, sample.value, (uint8_t)(sample.flags | extra_flags), out,
                                         sizeof out);
            extra_flags = 0;
            uart_write(out, len);
        }
    }
}
