/*
 * The guest's 8254 PIT (pure C, host-tested): three 16-bit counters at 1,193,182 Hz behind
 * ports 0x40-0x42 with the control word at 0x43, and port 0x61's timer-2 bits (gate, speaker
 * enable, timer 2's OUT, the refresh toggle). Its clock is Keel's TSC: every call gives the
 * TSC now. See docs/x86-interrupts.md.
 *
 * Wiring (the caller serializes all calls): channel 0's OUT is ISA IRQ 0; the caller asks
 * vpit_update whether it rose since the last call and pulses IRQ 0 (8259 IR0, I/O APIC pin
 * 2) if it did, and keeps its host timer armed for `irq_at`. Channels 0 and 1 have their gate
 * tied high, channel 2's is port 0x61 bit 0.
 */
#ifndef ARCH_X86_VPIT_H
#define ARCH_X86_VPIT_H

#include <stdbool.h>
#include <stdint.h>

#define VPIT_HZ     1193182 /* the PC's PIT clock: 14.31818 MHz / 12 */
#define VPIT_PORT   0x40    /* channels 0-2 at 0x40-0x42, the control word at 0x43 */
#define VPIT_PORT_B 0x61    /* system control port B */
/*
 * The shortest period of channel 0's interrupts in modes 2 and 3, in PIT clocks (200 us, as
 * KVM's min_timer_period_us): a shorter count still counts and reads at the PIT's rate, but
 * its rising OUT edges reach IRQ 0 at most this often.
 */
#define VPIT_MIN_IRQ_PERIOD 239

struct vpit_chan {
        uint64_t start; /* TSC at which it counts from `count` (moved on by a paused gate) */
        uint64_t held;  /* TSC at which the gate went low (channel 2) */
        uint32_t count; /* the count it counts down from: 1-65536 (a written 0 is 65536) */
        uint16_t latch; /* the latched count */
        uint8_t ctrl;   /* the control word's bits 5:0: RW (1-3), mode (0-5), BCD (kept only) */
        uint8_t status; /* the latched status byte */
        uint8_t lsb;    /* word access: the low byte written, the high byte awaited */
        bool running;   /* a count was written since the control word */
        bool gate;      /* the GATE input (0 and 1: tied high) */
        bool latched, status_latched;
        bool read_msb, write_msb; /* word access: the next byte is the high one */
        bool null_count;          /* a control word and no count since (status bit 6) */
};

struct vpit {
        struct vpit_chan ch[3];
        uint64_t irq_at; /* TSC of channel 0's next rising OUT edge (IRQ 0); UINT64_MAX none */
        uint8_t port_b;  /* port 0x61 bits 3:0 as last written (bit 0: channel 2's gate) */
        uint8_t pad[7];
        uint64_t hz; /* the TSC's frequency (not part of a snapshot) */
};

/*
 * As SeaBIOS leaves it (src/hw/timer.c pit_setup): channel 0 in mode 2 (rate generator),
 * binary, word access, count 0 (65536: IRQ 0 at 18.2 Hz), counting from `now`; channels 1
 * and 2 in mode 3 with count 65536 (channel 2's gate low: port 0x61 reads 0 but the
 * toggles). `hz` is the TSC's frequency (nonzero).
 */
void vpit_init(struct vpit *p, uint64_t hz, uint64_t now);

/* A byte access to a port: true if `port` is the PIT's (0x40-0x43) or port 0x61. Any value is
 * legal: a read-back or latch command of nothing, reserved bits and modes 6 and 7 (2 and 3)
 * behave as on the 8254. */
bool vpit_io(struct vpit *p, uint16_t port, bool in, uint8_t *val, uint64_t now);

/* True if channel 0's OUT rose since the last call (edges since then count as one: the
 * 8259's IRR holds one); `irq_at` then moves on to the next. */
bool vpit_update(struct vpit *p, uint64_t now);

/* Snapshots (vmm/snapshot.h): the channels, irq_at and port 0x61; load refuses what no guest
 * could make and applies in the apply pass. */
struct snap_buf;
struct snap_rd;
void vpit_save(const struct vpit *p, struct snap_buf *b);
int vpit_load(struct vpit *p, struct snap_rd *r);

#endif
