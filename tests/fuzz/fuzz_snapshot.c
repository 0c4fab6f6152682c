/*
 * libFuzzer target for the snapshot loader (vmm/snapshot.c on the fake arch) and the device
 * models' snapshot loaders (vuart_load, pl011_load, rtc_cmos_load, pl031_load, vlapic_load,
 * vioapic_load, virtio_mmio_load, virtio_blk_load, vgic_load).
 *
 * Input: byte 0 is the mode; bits 0-1 pick the target:
 *   0: a valid snapshot of a reference VM (2 vCPUs, 4 KiB of RAM), changed by the input's
 *      (le16 offset, byte) pairs; bit 2: the checksum is computed again afterwards;
 *   1: the input itself as a snapshot; bit 2: its header's size and checksum fixed up first;
 *   2: the input as a 16550 (bit 2 clear) or PL011 (set) section;
 *   3: the input as a CMOS RTC (bit 2 clear) or PL031 (set) section;
 *   2 or 3 with bit 3 set: bits 2 and 4 pick the LAPIC (0), the I/O APIC (1), a virtio-mmio
 *      transport with two queues (2) or a virtio-blk RAM disk (3); bit 5 set: the GIC (two
 *      vCPUs, 64 SPIs) instead.
 * Invariants (abort on violation):
 *   - a refused snapshot leaves the target VM exactly as it was (RAM, registers, flags,
 *     devices) and gives a reason: one line, not empty;
 *   - an accepted one, saved again, gives the same bytes (but the informational name): load
 *     took everything it read, and nothing else;
 *   - a device loader reads at most its input, refuses (reason given, model unchanged) or
 *     accepts, and an accepted state saved again is the same bytes (the PL031: its registers;
 *     its match latch follows its clock).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arch/vgic.h>
#include <arch/vioapic.h>
#include <arch/vlapic.h>
#include <keel/hash.h>
#include <vmm/pl011.h>
#include <vmm/pl031.h>
#include <vmm/rtc_cmos.h>
#include <vmm/snapshot.h>
#include <vmm/vcons.h>
#include <vmm/virtio.h>
#include <vmm/vm.h>
#include <vmm/vuart.h>

#include "fuzz_input.h"

extern uint64_t fake_tsc; /* arch/fake/fake.c: Keel's counter */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_SZ 4096
#define BASE   0x100000ull
#define BUF    (RAM_SZ + 4096)

static uint8_t ram[RAM_SZ] __attribute__((aligned(4096)));
static uint8_t ref_ram[RAM_SZ];
static struct vm vm, ref_vm;
static struct vcpu vm_vcpus[2], ref_vcpus[2];
static uint8_t ref[BUF], buf[BUF], again[BUF];
static size_t ref_len;
static char why[256];

static void make(struct vm *v)
{
        struct vcpu *vc = v == &vm ? vm_vcpus : ref_vcpus;

        memset(v, 0, sizeof(*v));
        memset(vc, 0, sizeof(vm_vcpus));
        vm_init(v, 0, "fuzz", vc, 2);
        if (gmem_add_region(&v->mem, gpa(BASE), RAM_SZ, hpa((uint64_t)(uintptr_t)ram)) != 0)
                abort();
}

/* The target VM in a state of its own: RAM 0x3c, registers 7, cookie 3. */
static void target(void)
{
        make(&vm);
        memset(ram, 0x3c, sizeof(ram));
        for (unsigned c = 0; c < 2; c++)
                for (unsigned r = 0; r < 16; r++)
                        vm.vcpus[c].arch.regs[r] = 7;
        vm.arch.cookie = 3;
        ref_vm = vm;
        memcpy(ref_ram, ram, sizeof(ram));
}

static void reference(void)
{
        struct snap_buf b = {.buf = ref, .cap = sizeof(ref)};

        make(&vm);
        for (unsigned i = 0; i < RAM_SZ; i++)
                ram[i] = (uint8_t)(i * 13);
        vm.vcpus[0].started = true;
        vm.vcpus[1].arch.cpl = 3;
        vm.vcpus[0].arch.regs[2] = 0x1234;
        if (snapshot_save(&vm, &b, why, sizeof(why)) != 0)
                abort();
        ref_len = b.len;
}

static void one_line_reason(void)
{
        if (!why[0] || strchr(why, '\n'))
                abort();
}

static void reseal(uint8_t *p, size_t n)
{
        uint64_t sum;

        if (n < sizeof(struct snap_header) + 8)
                return;
        sum = hash64_final(hash64_update(HASH64_INIT, p, n - 8), n - 8);
        memcpy(p + n - 8, &sum, 8);
}

static void load_snapshot(const uint8_t *p, size_t n)
{
        struct snap_buf b = {.buf = again, .cap = sizeof(again)};

        target();
        /* Keel's counter as when it was taken: the vCPUs' counter offsets stay as they are. */
        if (n >= sizeof(struct snap_header))
                memcpy(&fake_tsc, p + offsetof(struct snap_header, counter), sizeof(fake_tsc));
        if (snapshot_load(&vm, p, n, why, sizeof(why)) != 0) {
                one_line_reason();
                if (memcmp(ram, ref_ram, sizeof(ram)) || memcmp(&vm, &ref_vm, sizeof(vm)))
                        abort();
                return;
        }
        if (snapshot_save(&vm, &b, why, sizeof(why)) != 0 || b.len != n)
                abort();
        /* The name (informational), the generation (the partition's) and the checksum over
         * them may differ. */
        memcpy(again + offsetof(struct snap_header, name), p + offsetof(struct snap_header, name),
               sizeof(((struct snap_header *)0)->name));
        memcpy(again + offsetof(struct snap_header, generation),
               p + offsetof(struct snap_header, generation), sizeof(uint64_t));
        reseal(again, b.len);
        if (memcmp(again, p, n) != 0)
                abort();
}

static struct vcons cons;

static uint64_t fuzz_clock(void)
{
        return 1700000000ull * 1000000000ull;
}

/* A device loader on the input; accepted: saved again, the same bytes. */
static void load_device(unsigned which, const uint8_t *p, size_t n)
{
        struct snap_rd r = {.p = p, .len = n, .why = why, .why_len = sizeof(why)};
        struct snap_buf b = {.buf = again, .cap = sizeof(again)};
        static struct vuart u, u0;
        static struct pl011 pl, pl0;
        static struct rtc_cmos rtc, rtc0;
        static struct pl031 rt, rt0;
        int err = 0;

        vcons_init(&cons, "fuzz");
        vuart_init(&u, &cons);
        pl011_init(&pl, &cons);
        rtc_cmos_init(&rtc);
        pl031_init(&rt, fuzz_clock);
        memcpy(&u0, &u, sizeof(u));
        memcpy(&pl0, &pl, sizeof(pl));
        memcpy(&rtc0, &rtc, sizeof(rtc));
        memcpy(&rt0, &rt, sizeof(rt));
        for (int pass = 0; pass < 2; pass++) {
                r.pos = 0;
                r.apply = pass == 1;
                why[0] = '\0';
                if (which == 0)
                        err = vuart_load(&u, &r);
                else if (which == 1)
                        err = pl011_load(&pl, &r);
                else if (which == 2)
                        err = rtc_cmos_load(&rtc, &r);
                else
                        err = pl031_load(&rt, &r);
                if (r.pos > n || (err && pass)) /* the apply pass cannot fail */
                        abort();
                if (err) {
                        one_line_reason();
                        if (memcmp(&u, &u0, sizeof(u)) || memcmp(&pl, &pl0, sizeof(pl)) ||
                            memcmp(&rtc, &rtc0, sizeof(rtc)) || memcmp(&rt, &rt0, sizeof(rt)))
                                abort();
                        return;
                }
        }
        if (which == 0)
                vuart_save(&u, &b);
        else if (which == 1)
                pl011_save(&pl, &b);
        else if (which == 2)
                rtc_cmos_save(&rtc, &b);
        else
                pl031_save(&rt, &b);
        /* The PL031 latches a match its clock has passed when loaded: only its registers
         * (offset, RTCMR, RTCLR, the arming point: 20 bytes) must come back as they were. */
        if (b.len != r.pos || memcmp(again, p, which == 3 ? 20 : b.len) != 0)
                abort();
}

static uint64_t lapic_now(void *ctx)
{
        (void)ctx;
        return 1000000;
}

static bool io_deliver(void *ctx, uint8_t dest, bool logical, uint8_t vector, bool level,
                       bool lowest)
{
        (void)ctx, (void)dest, (void)logical, (void)vector, (void)level, (void)lowest;
        return true;
}

static bool vq_notify(void *ctx, struct virtio_mmio *t, unsigned q)
{
        (void)ctx, (void)t, (void)q;
        return false;
}

/* The Linux platform's loaders (which 0-4: LAPIC, I/O APIC, virtio-mmio, virtio-blk, GIC) on the
 * input: a refusal changes nothing; an accepted state saved again is the same bytes. */
static void load_platform(unsigned which, const uint8_t *p, size_t n)
{
        static const struct vlapic_env env = {.now = lapic_now};
        static const struct vioapic_cb cb = {.deliver = io_deliver};
        static const struct virtio_device dev = {.device_id = 3,
                                                 .num_queues = 2,
                                                 .queue_max = 64,
                                                 .features = VIRTIO_BIT(VIRTIO_F_VERSION_1) |
                                                             VIRTIO_BIT(VIRTIO_RING_F_EVENT_IDX),
                                                 .queue_notify = vq_notify};
        static struct vlapic l, l0;
        static struct vioapic io, io0;
        static struct virtio_mmio t, t0;
        static struct virtio_blk blk, blk0;
        static struct vgic g, g0;
        static struct vgic_cpu gc[2], gc0[2];
        static uint8_t disk[1024], disk0[1024];
        struct snap_rd r = {.p = p, .len = n, .why = why, .why_len = sizeof(why)};
        struct snap_buf b = {.buf = again, .cap = sizeof(again)};
        int err = 0;

        make(&vm);
        vlapic_init(&l, 1, &env);
        vioapic_init(&io, &cb);
        if (virtio_mmio_init(&t, &dev, &vm.mem, (struct irq_line){0}, "fuzz") ||
            virtio_blk_init(&blk, disk, sizeof(disk), false, "fuzz", 0))
                abort();
        if (vgic_init(&g, gc, 2, 64))
                abort();
        memset(disk, 0x5a, sizeof(disk));
        l0 = l, io0 = io, t0 = t, blk0 = blk, g0 = g;
        memcpy(gc0, gc, sizeof(gc));
        memcpy(disk0, disk, sizeof(disk));
        for (int pass = 0; pass < 2; pass++) {
                r.pos = 0;
                r.apply = pass == 1;
                why[0] = '\0';
                err = which == 0   ? vlapic_load(&l, &r)
                      : which == 1 ? vioapic_load(&io, &r)
                      : which == 2 ? virtio_mmio_load(&t, &r)
                      : which == 3 ? virtio_blk_load(&blk, &r)
                                   : vgic_load(&g, &r);
                if (r.pos > n || (err && pass))
                        abort();
                if (err) {
                        one_line_reason();
                        if (memcmp(&l, &l0, sizeof(l)) || memcmp(&io, &io0, sizeof(io)) ||
                            memcmp(&t, &t0, sizeof(t)) || memcmp(&blk, &blk0, sizeof(blk)) ||
                            memcmp(disk, disk0, sizeof(disk)) || memcmp(&g, &g0, sizeof(g)) ||
                            memcmp(gc, gc0, sizeof(gc)))
                                abort();
                        return;
                }
        }
        if (which == 0)
                vlapic_save(&l, &b);
        else if (which == 1)
                vioapic_save(&io, &b);
        else if (which == 2)
                virtio_mmio_save(&t, &b);
        else if (which == 3)
                virtio_blk_save(&blk, &b);
        else
                vgic_save(&g, &b);
        if (b.len != r.pos || memcmp(again, p, b.len) != 0)
                abort();
        /* what the loaders promise beyond that: the invariants the models rely on */
        if (which == 0 && l.timer_running && (!l.timer_icr || l.timer_offset >= l.timer_icr))
                abort();
        for (unsigned i = 0; which == 2 && i < 2; i++)
                if (t.queues[i].ready && virtq_check_setup(&t.queues[i]))
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct in in = {data, size};
        uint8_t mode;

        if (!ref_len)
                reference();
        if (!take(&in, &mode, 1))
                return 0;
        switch (mode & 3) {
        case 0: {
                uint16_t off;
                uint8_t v;

                memcpy(buf, ref, ref_len);
                while (take(&in, &off, 2) && take(&in, &v, 1))
                        buf[off % ref_len] = v;
                if (mode & 4)
                        reseal(buf, ref_len);
                load_snapshot(buf, ref_len);
                break;
        }
        case 1:
                if (in.n > sizeof(buf))
                        return 0;
                memcpy(buf, in.p, in.n);
                if ((mode & 4) && in.n >= sizeof(struct snap_header) + 8) {
                        uint64_t n = in.n;

                        memcpy(buf + offsetof(struct snap_header, size), &n, 8);
                        reseal(buf, in.n);
                }
                load_snapshot(buf, in.n);
                break;
        default:
                if (mode & 8) {
                        load_platform(mode & 0x20 ? 4 : (mode >> 2 & 1) + (mode >> 4 & 1) * 2, in.p,
                                      in.n);
                        break;
                }
                load_device((mode & 1) * 2 + (mode >> 2 & 1), in.p, in.n);
                break;
        }
        return 0;
}
