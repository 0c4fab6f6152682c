/*
 * hostile_apic_regs (x86_64, booted as a Linux kernel: mklinux.py, `kernel =`): every offset
 * and width of the local APIC page (0xfee00000, 4 KiB) and the I/O APIC (0xfec00000, 0x20
 * bytes), read and written with garbage, against docs/x86-interrupts.md:
 *   - a read of 1, 2 or 8 bytes, or of 4 bytes at an offset that is not 4-byte aligned or
 *     not a register, reads 0; the writes are ignored;
 *   - after the garbage, the read-only registers (LAPIC ID and version, I/O APIC version)
 *     still read what they did, reserved offsets still read 0, a redirection entry keeps
 *     only its writable bits, ESR reports the illegal register address, and once the guest
 *     has put the registers back the LAPIC still delivers a self-IPI;
 * with interrupts off throughout (vectors the garbage raised are drained at the end). It
 * prints what it saw and exits 0; a difference is a FAIL line and exit 1.
 *
 * Built with HOSTILE_APIC_EDGE = 1, 2, 3 it instead makes one access that must stop it: 1: 4
 * bytes at 0xfec00020, right after the I/O APIC (no device: outside-ram); 2: 4 bytes at
 * 0xfec0001e, crossing the I/O APIC's end (bad-instruction); 3: 8 bytes at 0xfee00ffc,
 * crossing the LAPIC page's end, which Keel splits as the CPU does: the LAPIC's 4 bytes,
 * then 0xfee01000, where nothing is (its config has unbacked = stop: outside-ram).
 */
#include "irq_x86.h"

#ifndef HOSTILE_APIC_EDGE
#define HOSTILE_APIC_EDGE 0
#endif

static unsigned failed, checks;

static void expect(const char *what, uint64_t off, uint64_t got, uint64_t want)
{
        checks++;
        if (got == want)
                return;
        if (++failed <= 20)
                guest_printf("FAIL: hostile_apic_regs: %s at +0x%lx: 0x%lx, expected 0x%lx\n", what,
                             (unsigned long)off, (unsigned long)got, (unsigned long)want);
}

static uint64_t rd(uint64_t a, unsigned w)
{
        switch (w) {
        case 1:
                return *(volatile uint8_t *)(uintptr_t)a;
        case 2:
                return *(volatile uint16_t *)(uintptr_t)a;
        case 4:
                return *(volatile uint32_t *)(uintptr_t)a;
        default:
                return *(volatile uint64_t *)(uintptr_t)a;
        }
}

static void wr(uint64_t a, unsigned w, uint64_t v)
{
        switch (w) {
        case 1:
                *(volatile uint8_t *)(uintptr_t)a = (uint8_t)v;
                break;
        case 2:
                *(volatile uint16_t *)(uintptr_t)a = (uint16_t)v;
                break;
        case 4:
                *(volatile uint32_t *)(uintptr_t)a = (uint32_t)v;
                break;
        default:
                *(volatile uint64_t *)(uintptr_t)a = v;
                break;
        }
}

/* The LAPIC's registers (docs/x86-interrupts.md), by 32-bit aligned offset. */
static bool lapic_is_reg(unsigned off)
{
        if (off & 0xf)
                return false; /* +4, +8, +0xc of every 16-byte slot are reserved */
        switch (off) {
        case 0x020: /* ID */
        case 0x030: /* version */
        case 0x080: /* TPR */
        case 0x090: /* APR */
        case 0x0a0: /* PPR */
        case 0x0b0: /* EOI */
        case 0x0c0: /* RRD */
        case 0x0d0: /* LDR */
        case 0x0e0: /* DFR */
        case 0x0f0: /* SVR */
        case 0x280: /* ESR */
        case 0x2f0: /* LVT CMCI */
        case 0x300: /* ICR low */
        case 0x310: /* ICR high */
        case 0x380: /* timer initial count */
        case 0x390: /* timer current count */
        case 0x3e0: /* divide configuration */
                return true;
        }
        return (off >= 0x100 && off < 0x280) || /* ISR, TMR, IRR */
               (off >= 0x320 && off <= 0x370);  /* LVT timer .. error */
}

static const uint64_t garbage[2] = {0xffffffffffffffffull, 0x5a5a5a5aa5a5a5a5ull};

static void lapic_sweep(void)
{
        static const unsigned widths[4] = {1, 2, 4, 8};
        uint64_t reads = 0, writes = 0, regs = 0;

        for (unsigned off = 0; off < 0x1000; off++)
                for (unsigned k = 0; k < 4; k++) {
                        unsigned w = widths[k];
                        uint64_t v;

                        if (off + w > 0x1000)
                                continue;
                        v = rd(LAPIC_BASE + off, w);
                        reads++;
                        if (w == 4 && !(off & 3) && lapic_is_reg(off)) {
                                regs++;
                                continue;
                        }
                        expect("LAPIC read", off | (uint64_t)w << 32, v, 0);
                }
        expect("LAPIC ID", 0x20, lapic_read(LAPIC_ID), 0);
        expect("LAPIC version", 0x30, lapic_read(LAPIC_VERSION), LAPIC_VERSION_VALUE);
        for (unsigned g = 0; g < 2; g++)
                for (unsigned off = 0; off < 0x1000; off++)
                        for (unsigned k = 0; k < 4; k++) {
                                unsigned w = widths[k];

                                if (off + w > 0x1000)
                                        continue;
                                wr(LAPIC_BASE + off, w, garbage[g]);
                                writes++;
                        }
        /* Read-only and reserved registers kept their values; the rest is put back. */
        expect("LAPIC ID after garbage", 0x20, lapic_read(LAPIC_ID), 0);
        expect("LAPIC version after garbage", 0x30, lapic_read(LAPIC_VERSION), LAPIC_VERSION_VALUE);
        for (unsigned off = 0; off < 0x1000; off += 4)
                if (!lapic_is_reg(off))
                        expect("LAPIC reserved after garbage", off, lapic_read(off), 0);
        lapic_write(LAPIC_SVR, 0x1ff);
        lapic_write(LAPIC_ESR, 0);
        lapic_write(0x40, 0x12345678); /* reserved */
        lapic_write(LAPIC_ESR, 0);
        expect("ESR illegal register address", LAPIC_ESR, lapic_read(LAPIC_ESR) & 0x80, 0x80);
        lapic_write(LAPIC_ESR, 0);
        lapic_write(LAPIC_ESR, 0);
        expect("ESR after clearing", LAPIC_ESR, lapic_read(LAPIC_ESR), 0);
        guest_printf("hostile_apic_regs: LAPIC: %lu reads (%lu of registers), %lu garbage "
                     "writes at every offset and width\n",
                     (unsigned long)reads, (unsigned long)regs, (unsigned long)writes);
}

/* Back to a known state: LVTs masked, timer off, TPR 0, nothing in service or requested. */
static void lapic_restore(void)
{
        lapic_write(LAPIC_SVR, 0x1ff);
        for (unsigned off = 0x320; off <= 0x370; off += 0x10)
                lapic_write(off, LVT_MASKED);
        lapic_write(0x2f0, LVT_MASKED);
        lapic_write(LAPIC_TIMER_ICR, 0);
        lapic_write(LAPIC_TPR, 0);
        for (unsigned i = 0; i < 256; i++)
                lapic_write(LAPIC_EOI, 0);
        irq_eoi[0] = 1;
        for (unsigned i = 0; i < 256; i++)
                irq_window(); /* whatever the garbage left in IRR is taken and EOIed */
        for (unsigned i = 0; i < 8; i++) {
                expect("ISR after restore", LAPIC_ISR + 0x10 * i, lapic_read(LAPIC_ISR + 0x10 * i),
                       0);
                expect("IRR after restore", LAPIC_IRR + 0x10 * i, lapic_read(LAPIC_IRR + 0x10 * i),
                       0);
        }
        {
                uint64_t before = irq_count[0][0x77];

                lapic_icr(0, ICR_SELF | 0x77);
                irq_window();
                expect("self-IPI after the garbage", 0x77, irq_count[0][0x77] - before, 1);
        }
        guest_printf("hostile_apic_regs: LAPIC still delivers a self-IPI after the garbage\n");
}

static void ioapic_sweep(void)
{
        static const unsigned widths[4] = {1, 2, 4, 8};
        uint64_t reads = 0, writes = 0;

        for (unsigned off = 0; off < 0x20; off++)
                for (unsigned k = 0; k < 4; k++) {
                        unsigned w = widths[k];
                        uint64_t v;

                        if (off + w > 0x20)
                                continue;
                        v = rd(IOAPIC_BASE + off, w);
                        reads++;
                        if (w == 4 && (off == 0 || off == 0x10))
                                continue;
                        expect("I/O APIC read", off | (uint64_t)w << 32, v, 0);
                }
        for (unsigned g = 0; g < 2; g++)
                for (unsigned off = 0; off < 0x20; off++)
                        for (unsigned k = 0; k < 4; k++) {
                                unsigned w = widths[k];

                                if (off + w > 0x20)
                                        continue;
                                wr(IOAPIC_BASE + off, w, garbage[g]);
                                writes++;
                        }
        /* Every IOREGSEL value, read and written with garbage through IOWIN. */
        for (unsigned sel = 0; sel < 256; sel++) {
                uint32_t v = ioapic_read(sel);

                reads++;
                if (sel >= 0x40 || (sel >= 3 && sel < 0x10))
                        expect("I/O APIC register out of range", sel, v, 0);
                if (sel != 0 && sel != 1 && sel != 2) {
                        ioapic_write(sel, (uint32_t)garbage[sel & 1]);
                        writes++;
                }
        }
        expect("I/O APIC version after garbage", 1, ioapic_read(1), IOAPIC_VERSION_VALUE);
        for (unsigned pin = 0; pin < 24; pin++) {
                ioapic_write(0x10 + 2 * pin, 0xffffffff);
                ioapic_write(0x11 + 2 * pin, 0xffffffff);
                /* Delivery status (12) and remote IRR (14) are read-only and 0. */
                expect("redirection entry low", pin, ioapic_read(0x10 + 2 * pin), 0x1afff);
                expect("redirection entry high", pin, ioapic_read(0x11 + 2 * pin), 0xff000000);
                ioapic_write(0x10 + 2 * pin, 0x10000); /* masked */
        }
        wr(IOAPIC_BASE, 4, 0xffffffff);
        expect("I/O APIC IOREGSEL keeps 8 bits", 0, rd(IOAPIC_BASE, 4), 0xff);
        guest_printf("hostile_apic_regs: I/O APIC: %lu reads, %lu garbage writes at every "
                     "offset, width and register\n",
                     (unsigned long)reads, (unsigned long)writes);
}

int64_t guest_main(void)
{
        hx_gdt_init();
        hx_idt_init();
        irq_idt_init();
        if (!irq_linux_entry_ok()) {
                guest_printf("FAIL: hostile_apic_regs: not entered through the Linux boot path\n");
                return 1;
        }
        if (HOSTILE_APIC_EDGE) {
                static const uint64_t addr[4] = {0, 0xfec00020, 0xfec0001e, 0xfee00ffc};
                static const unsigned width[4] = {0, 4, 4, 8};

                guest_printf("hostile_apic_regs: %u-byte read at 0x%lx\n", width[HOSTILE_APIC_EDGE],
                             (unsigned long)addr[HOSTILE_APIC_EDGE]);
                rd(addr[HOSTILE_APIC_EDGE], width[HOSTILE_APIC_EDGE]);
                guest_printf("FAIL: hostile_apic_regs: the read returned\n");
                return 1;
        }
        lapic_sweep();
        lapic_restore();
        ioapic_sweep();
        if (failed) {
                guest_printf("hostile_apic_regs: %u of %u checks failed\n", failed, checks);
                return 1;
        }
        guest_printf("hostile_apic_regs: all %u checks passed\n", checks);
        return 0;
}
