/*
 * Snapshots (vmm/snapshot.c) on the fake arch: a VM's RAM, vCPU registers and device cookie
 * saved and loaded back into another VM of the same geometry; every kind of damage refused
 * with its reason and the VM left as it was; the checksum (keel/hash.h).
 */
#include <stdlib.h>
#include <string.h>

#include <drivers/blkdev.h>
#include <keel/errno.h>
#include <keel/hash.h>
#include <keel/palloc.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>

#include "test.h"

#define RAM_SZ (64 << 10)
#define BASE   0x100000ull

static uint8_t ram_a[RAM_SZ] __attribute__((aligned(4096)));
static uint8_t ram_b[RAM_SZ] __attribute__((aligned(4096)));
static struct vm va, vb;
static struct vcpu vcpus_a[VM_MAX_VCPUS], vcpus_b[VM_MAX_VCPUS];
static uint8_t snap[RAM_SZ + 4096];
static char why[200];

extern uint64_t fake_tsc; /* arch/fake/fake.c: Keel's counter */

static void make(struct vm *vm, uint8_t *ram, unsigned vcpus, uint8_t fill)
{
        struct vcpu *vc = vm == &va ? vcpus_a : vcpus_b;

        memset(vm, 0, sizeof(*vm));
        memset(vc, 0, sizeof(vcpus_a));
        vm_init(vm, 0, "snap", vc, vcpus);
        memset(ram, fill, RAM_SZ);
        if (gmem_add_region(&vm->mem, gpa(BASE), RAM_SZ, hpa((uint64_t)(uintptr_t)ram)) != 0)
                abort();
}

/* va with a state of its own, saved into snap; returns the length. */
static size_t take(unsigned vcpus)
{
        struct snap_buf b = {.buf = snap, .cap = sizeof(snap)};

        make(&va, ram_a, vcpus, 0);
        for (unsigned i = 0; i < RAM_SZ; i++)
                ram_a[i] = (uint8_t)(i * 7 + i / 251);
        for (unsigned c = 0; c < vcpus; c++) {
                va.vcpus[c].started = c == 0;
                for (unsigned r = 0; r < 16; r++)
                        va.vcpus[c].arch.regs[r] = c * 100 + r;
                va.vcpus[c].arch.cpl = c % 4;
                va.vcpus[c].arch.counter_offset = 12345 * c - 77; /* wraps for vCPU 0 */
        }
        va.arch.cookie = 0x5a5a;
        EXPECT_EQ(snapshot_save(&va, &b, why, sizeof(why)), 0);
        EXPECT_FALSE(b.overflow);
        EXPECT_TRUE(b.len <= snapshot_max_size(&va));
        return b.len;
}

/* Load into a fresh vb (fill 0xee); true if refused with `reason` in why and vb untouched. */
static bool refused(const uint8_t *data, size_t len, const char *reason)
{
        int err;

        make(&vb, ram_b, 2, 0xee);
        vb.arch.cookie = 1;
        err = snapshot_load(&vb, data, len, why, sizeof(why));
        if (err != -KEEL_EINVAL || !strstr(why, reason)) {
                fprintf(stderr, "load: %d, why: %s (wanted %s)\n", err, why, reason);
                return false;
        }
        for (unsigned i = 0; i < RAM_SZ; i++)
                if (ram_b[i] != 0xee)
                        return false;
        return vb.arch.cookie == 1 && vb.vcpus[0].arch.regs[3] == 0 && !vb.vcpus[0].started;
}

/* The checksum over the snapshot again after changing it on purpose. */
static void reseal(uint8_t *data, size_t len)
{
        uint64_t sum = hash64_final(hash64_update(HASH64_INIT, data, len - 8), len - 8);

        memcpy(data + len - 8, &sum, 8);
}

TEST(round_trip)
{
        size_t len = take(2);

        make(&vb, ram_b, 2, 0xee);
        EXPECT_EQ(snapshot_load(&vb, snap, len, why, sizeof(why)), 0);
        EXPECT_STREQ(why, "");
        EXPECT_EQ(memcmp(ram_a, ram_b, RAM_SZ), 0);
        for (unsigned c = 0; c < 2; c++) {
                EXPECT_EQ(memcmp(vb.vcpus[c].arch.regs, va.vcpus[c].arch.regs,
                                 sizeof(va.vcpus[c].arch.regs)),
                          0);
                EXPECT_EQ(vb.vcpus[c].arch.cpl, va.vcpus[c].arch.cpl);
                EXPECT_EQ(vb.vcpus[c].started, c == 0);
        }
        EXPECT_EQ(vb.arch.cookie, 0x5a5a);
        /* Twice from the same snapshot: the same state. */
        memset(ram_b, 0, RAM_SZ);
        vb.vcpus[1].arch.regs[5] = 9;
        EXPECT_EQ(snapshot_load(&vb, snap, len, why, sizeof(why)), 0);
        EXPECT_EQ(memcmp(ram_a, ram_b, RAM_SZ), 0);
        EXPECT_EQ(vb.vcpus[1].arch.regs[5], 105);
}

TEST(too_small_buffer)
{
        struct snap_buf b = {.buf = snap, .cap = RAM_SZ};

        take(1);
        EXPECT_EQ(snapshot_save(&va, &b, why, sizeof(why)), -KEEL_ENOSPC);
        EXPECT_CONTAINS(why, "more than");
}

TEST(refusals)
{
        size_t len = take(2);
        static uint8_t bad[sizeof(snap)];
        uint32_t v;

        EXPECT_TRUE(refused(snap, 20, "too few"));
        memcpy(bad, snap, len);
        bad[0] = 'X';
        EXPECT_TRUE(refused(bad, len, "not a Keel snapshot"));
        memcpy(bad, snap, len);
        v = SNAP_VERSION + 1;
        memcpy(bad + 8, &v, 4);
        EXPECT_TRUE(refused(bad, len, "format version 4; this Keel reads version 3 only"));
        v = 1; /* the format before the counter (and the partition's slots): refused too */
        memcpy(bad + 8, &v, 4);
        EXPECT_TRUE(refused(bad, len, "format version 1; this Keel reads version 3 only"));
        memcpy(bad, snap, len);
        v = 183;
        memcpy(bad + 12, &v, 4);
        EXPECT_TRUE(refused(bad, len, "taken on arm64 (machine 183); this Keel runs x86_64"));
        EXPECT_TRUE(refused(snap, len - 1, "its header says"));
        /* One bit anywhere after the header's fixed fields: the checksum. */
        for (size_t at = 24; at < len; at += 997) {
                memcpy(bad, snap, len);
                bad[at] ^= 0x10;
                EXPECT_TRUE(refused(bad, len, "the snapshot is corrupted"));
        }
        /* A checksum that matches, over contents that do not. */
        memcpy(bad, snap, len);
        bad[len - 9] = 0; /* the end section's length */
        bad[len - 16] = 1;
        reseal(bad, len);
        EXPECT_TRUE(refused(bad, len, "section end 0 of 1 bytes runs past the end"));
        memcpy(bad, snap, len);
        memcpy(bad + sizeof(struct snap_header), &(uint32_t){SNAP_TAG_VCPU}, 4);
        reseal(bad, len);
        EXPECT_TRUE(refused(bad, len, "expected section RAM 0"));
        /* vCPU 1's CPL (fake arch: at most 3), after vCPU 0's section was good. */
        memcpy(bad, snap, len);
        {
                size_t vc1 = sizeof(struct snap_header) + sizeof(struct snap_section) + RAM_SZ +
                             2 * sizeof(struct snap_section) + 1 + 16 * 8 + 4 + 8 + 1 + 16 * 8;

                memcpy(bad + vc1, &(uint32_t){4}, 4);
        }
        reseal(bad, len);
        EXPECT_TRUE(refused(bad, len, "vCPU 1: CPL 4"));
}

TEST(geometry)
{
        size_t len = take(1);

        EXPECT_TRUE(refused(snap, len, "it has 1 vCPUs"));
}

/* The header a partition's first block holds (vmm/snapdisk.c): each field checked. */
TEST(partition_header_check)
{
        struct snap_header h;
        char want[120];

        EXPECT_EQ(take(2), 66010); /* 64 KiB of RAM, two vCPUs */
        memcpy(&h, snap, sizeof(h));
        EXPECT_EQ(snapshot_part_check(&h, "snap", h.size, why, sizeof(why)), 0);
        EXPECT_EQ(snapshot_part_check(&h, "snap", h.size - 1, why, sizeof(why)), -KEEL_EINVAL);
        snprintf(want, sizeof(want),
                 "its header says %zu bytes, a slot of the partition holds %zu: the snapshot is "
                 "corrupted",
                 (size_t)h.size, (size_t)h.size - 1);
        EXPECT_STREQ(why, want);
        EXPECT_EQ(snapshot_part_check(&h, "other", h.size, why, sizeof(why)), -KEEL_EINVAL);
        EXPECT_STREQ(why, "it is a snapshot of vm snap, not of vm other");
        h.arch = 183;
        EXPECT_EQ(snapshot_part_check(&h, "snap", h.size, why, sizeof(why)), -KEEL_EINVAL);
        EXPECT_STREQ(why, "taken on arm64 (machine 183); this Keel runs x86_64 VMs");
        h.version = 1; /* before the counter and the partition's slots */
        EXPECT_EQ(snapshot_part_check(&h, "snap", h.size, why, sizeof(why)), -KEEL_EINVAL);
        EXPECT_STREQ(why, "format version 1; this Keel reads version 3 only");
        memset(&h, 0, sizeof(h));
        EXPECT_EQ(snapshot_part_check(&h, "snap", 1 << 20, why, sizeof(why)), -KEEL_EINVAL);
        EXPECT_STREQ(why, "not a Keel snapshot (no KEELSNAP magic)");
        memcpy(&h, snap, sizeof(h));
        memset(h.name, 'x', sizeof(h.name)); /* no NUL */
        EXPECT_EQ(snapshot_part_check(&h, "snap", h.size, why, sizeof(why)), -KEEL_EINVAL);
        memcpy(&h, snap, sizeof(h));
        h.size = sizeof(h) + 7;
        EXPECT_EQ(snapshot_part_check(&h, "snap", 1 << 20, why, sizeof(why)), -KEEL_EINVAL);
}

/* A partition on a fake disk: 512-byte blocks, 4 KiB per request, at most 3 in flight (a 4th
 * gets -KEEL_EAGAIN), completed one at a time by poll(), a volatile cache. */
#define PD_BLOCKS 1024
static uint8_t pdisk[PD_BLOCKS * 512];
static struct blk_req *pd_out[3];
static unsigned pd_n, pd_flushes, pd_writes_after_flush;
static bool pd_fail;
static unsigned pd_writes_left; /* non-zero: the device fails from this many writes on */

static int pd_submit(struct blkdev *d, struct blk_req *r)
{
        (void)d;
        if (r->op == BLK_FLUSH) {
                pd_flushes++;
                pd_writes_after_flush = 0;
                r->done(r, 0);
                return 0;
        }
        if (r->nseg != 1 || r->seg[0].len != r->blocks * 512u || r->lba + r->blocks > PD_BLOCKS ||
            r->blocks * 512u > 4096)
                return -KEEL_EINVAL;
        if (pd_n == 3)
                return -KEEL_EAGAIN;
        pd_out[pd_n++] = r;
        return 0;
}

static void pd_poll(struct blkdev *d)
{
        struct blk_req *r = pd_out[0];
        void *mem;

        (void)d;
        if (!pd_n)
                return;
        memmove(pd_out, pd_out + 1, sizeof(pd_out[0]) * --pd_n);
        mem = (void *)(uintptr_t)hpa_raw(r->seg[0].pa);
        if (r->op == BLK_WRITE && pd_writes_left && !--pd_writes_left)
                pd_fail = true;
        if (pd_fail) {
                r->done(r, -KEEL_EIO); /* nothing written or read */
                return;
        }
        if (r->op == BLK_WRITE) {
                memcpy(pdisk + r->lba * 512, mem, r->seg[0].len);
                pd_writes_after_flush++;
        } else {
                memcpy(mem, pdisk + r->lba * 512, r->seg[0].len);
        }
        r->done(r, 0);
}

static const struct blkdev_ops pd_ops = {.submit = pd_submit, .poll = pd_poll};

/* The partition tests' disk: PD_BLOCKS of 512 bytes in pdisk, one 4 KiB segment a request. */
static struct blkdev pd_dev(void)
{
        return (struct blkdev){.name = "pd0",
                               .blocks = PD_BLOCKS,
                               .block_size = 512,
                               .max_transfer = 4096,
                               .seg_align = 4,
                               .max_segs = 1,
                               .volatile_cache = true,
                               .ops = &pd_ops};
}

TEST(partition_round_trip_and_refusals)
{
        static struct blkdev dev;
        struct snap_part p = {.dev = &dev, .start = 100, .blocks = 300, .name = "pd0:part=s"};
        struct snapshot_store st = {0}, other_boot = {0};
        void *mem = aligned_alloc(4096, 1 << 20);
        struct mem_range r = {hpa((uint64_t)(uintptr_t)mem), (1 << 20) / PAGE_SIZE};
        char msg[300];
        uint64_t free0;

        dev = pd_dev();
        ASSERT_TRUE(mem && palloc_init(&keel_palloc, &r, 1) == 0);
        free0 = palloc_free_pages(&keel_palloc);
        memset(pdisk, 0, sizeof(pdisk));
        size_t len = take(2);
        /* Nothing there yet. */
        make(&vb, ram_b, 2, 0xee);
        EXPECT_EQ(snapshot_restore_part(&st, &vb, &p, msg, sizeof(msg)), -KEEL_EINVAL);
        EXPECT_STREQ(msg, "cannot restore vm snap: snapshot refused: pd0:part=s: not a Keel "
                          "snapshot (no KEELSNAP magic)");
        /* Too small a partition: refused before anything is written. */
        p.blocks = 100;
        EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), -KEEL_ENOSPC);
        EXPECT_STREQ(msg, "cannot snapshot vm snap: it takes 65 KiB, pd0:part=s holds 50 KiB: make "
                          "the partition at least 258 blocks of 512 bytes (two snapshots)");
        EXPECT_EQ(pdisk[100 * 512], 0);
        /* Written from the partition's first block (slot 0, generation 1: none there yet),
         * flushed after the last write. */
        p.blocks = 300;
        EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), 0);
        EXPECT_STREQ(msg, "vm snap: snapshot on pd0:part=s (slot 0, generation 1), 64 KiB (RAM 64 "
                          "KiB), flushed; restore snap brings it back, also after Keel restarts");
        EXPECT_EQ(((struct snap_header *)(pdisk + 100 * 512))->generation, 1);
        EXPECT_EQ(memcmp(pdisk + 100 * 512, snap, offsetof(struct snap_header, generation)), 0);
        EXPECT_EQ(memcmp(pdisk + 100 * 512 + sizeof(struct snap_header),
                         snap + sizeof(struct snap_header), len - sizeof(struct snap_header) - 8),
                  0);
        EXPECT_EQ(pdisk[99 * 512 + 511], 0);
        EXPECT_EQ(pd_flushes, 1);
        EXPECT_EQ(pd_writes_after_flush, 0);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), free0); /* the memory copy is gone */
        /* Restored, twice; also by a Keel that did not write it (no disk of its own). */
        EXPECT_EQ(snapshot_restore_part(&st, &vb, &p, msg, sizeof(msg)), 0);
        EXPECT_STREQ(msg, "vm snap: restored from its snapshot on pd0:part=s (slot 0, generation "
                          "1); it is paused (resume snap)");
        EXPECT_EQ(memcmp(ram_a, ram_b, RAM_SZ), 0);
        EXPECT_EQ(vb.vcpus[1].arch.regs[5], 105);
        make(&vb, ram_b, 2, 0xee);
        EXPECT_EQ(snapshot_restore_part(&other_boot, &vb, &p, msg, sizeof(msg)), 0);
        EXPECT_EQ(memcmp(ram_a, ram_b, RAM_SZ), 0);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), free0);
        /* With a disk on Keel's storage: only the snapshot this boot wrote. */
        p.disk = "pd0:part=d";
        EXPECT_EQ(snapshot_restore_part(&st, &vb, &p, msg, sizeof(msg)), 0);
        make(&vb, ram_b, 2, 0xee);
        EXPECT_EQ(snapshot_restore_part(&other_boot, &vb, &p, msg, sizeof(msg)), -KEEL_EINVAL);
        EXPECT_STREQ(msg, "cannot restore vm snap: snapshot refused: pd0:part=s: it was written "
                          "before Keel last started, and vm snap's disk pd0:part=d may have been "
                          "written since (no write count survives a restart): take a new "
                          "snapshot");
        EXPECT_EQ(ram_b[0], 0xee);
        p.disk = NULL;
        /* One bit changed on the disk: refused, the VM untouched, no memory kept. */
        pdisk[100 * 512 + 5000] ^= 4;
        EXPECT_EQ(snapshot_restore_part(&st, &vb, &p, msg, sizeof(msg)), -KEEL_EINVAL);
        EXPECT_CONTAINS(msg, "cannot restore vm snap: snapshot refused: pd0:part=s: checksum ");
        EXPECT_CONTAINS(msg, "the snapshot is corrupted");
        EXPECT_EQ(ram_b[0], 0xee);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), free0);
        /* A device error: said, nothing restored. */
        pd_fail = true;
        EXPECT_EQ(snapshot_restore_part(&st, &vb, &p, msg, sizeof(msg)), -KEEL_EIO);
        EXPECT_STREQ(msg, "cannot restore vm snap: reading pd0:part=s failed (I/O error)");
        EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), -KEEL_EIO);
        EXPECT_STREQ(msg, "cannot snapshot vm snap: I/O error reading pd0:part=s first; nothing "
                          "written");
        pd_fail = false;
        EXPECT_EQ(pd_n, 0);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), free0);
        memset(&keel_palloc, 0, sizeof(keel_palloc));
        free(mem);
}

/* Restore into a fresh vb from p: 0 and vb's register 5 of vCPU 1, or the error. */
static int restore_reg(const struct snapshot_store *st, const struct snap_part *p, char *msg,
                       size_t n, uint64_t *reg)
{
        int err;

        make(&vb, ram_b, 2, 0xee);
        err = snapshot_restore_part(st, &vb, p, msg, n);
        *reg = vb.vcpus[1].arch.regs[5];
        return err;
}

/* Two slots: each snapshot goes where the newest good one is not; a write cut short, a torn
 * header, a damaged newer one leave the older restorable; both damaged: refused. */
TEST(partition_slots)
{
        static struct blkdev dev;
        struct snap_part p = {.dev = &dev, .start = 10, .blocks = 400, .name = "pd0:part=s"};
        struct snapshot_store st = {0};
        void *mem = aligned_alloc(4096, 1 << 20);
        struct mem_range r = {hpa((uint64_t)(uintptr_t)mem), (1 << 20) / PAGE_SIZE};
        uint8_t *slot0 = pdisk + 10 * 512, *slot1 = pdisk + 210 * 512;
        static uint8_t keep[200 * 512];
        char msg[300];
        uint64_t free0, reg;

        dev = pd_dev();
        ASSERT_TRUE(mem && palloc_init(&keel_palloc, &r, 1) == 0);
        free0 = palloc_free_pages(&keel_palloc);
        memset(pdisk, 0, sizeof(pdisk));
        pd_fail = false;
        take(2);
        /* A (register 5 of vCPU 1: 1) in slot 0, B (2) in slot 1, C (3) in slot 0 again. */
        for (uint64_t n = 1; n <= 3; n++) {
                char want[200];

                va.vcpus[1].arch.regs[5] = n;
                EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), 0);
                snprintf(want, sizeof(want),
                         "vm snap: snapshot on pd0:part=s (slot %u, generation "
                         "%u), 64 KiB",
                         (unsigned)(n - 1) % 2, (unsigned)n);
                EXPECT_CONTAINS(msg, want);
                EXPECT_EQ(restore_reg(&st, &p, msg, sizeof(msg), &reg), 0);
                EXPECT_EQ(reg, n);
        }
        EXPECT_STREQ(msg, "vm snap: restored from its snapshot on pd0:part=s (slot 0, generation "
                          "3); it is paused (resume snap)");
        /* D's write fails after its first 4 KiB (its header among them) landed in slot 1. */
        memcpy(keep, slot0, sizeof(keep));
        va.vcpus[1].arch.regs[5] = 4;
        pd_writes_left = 2;
        EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), -KEEL_EIO);
        EXPECT_STREQ(msg, "cannot snapshot vm snap: writing pd0:part=s failed (I/O error); its "
                          "earlier snapshot is kept");
        pd_fail = false;
        pd_writes_left = 0;
        EXPECT_EQ(((struct snap_header *)slot1)->generation, 4);
        EXPECT_EQ(memcmp(keep, slot0, sizeof(keep)), 0);
        EXPECT_EQ(restore_reg(&st, &p, msg, sizeof(msg), &reg), 0);
        EXPECT_EQ(reg, 3);
        EXPECT_STREQ(msg,
                     "vm snap: restored from its snapshot on pd0:part=s (slot 0, generation 3, "
                     "the older: the newer one is refused); it is paused (resume snap)");
        /* The next one goes over the damaged one, not over C. */
        va.vcpus[1].arch.regs[5] = 5;
        EXPECT_EQ(snapshot_take_part(&st, &va, &p, msg, sizeof(msg)), 0);
        EXPECT_CONTAINS(msg, "(slot 1, generation 5)");
        EXPECT_EQ(memcmp(keep, slot0, sizeof(keep)), 0);
        EXPECT_EQ(restore_reg(&st, &p, msg, sizeof(msg), &reg), 0);
        EXPECT_EQ(reg, 5);
        /* A torn header in slot 1: C again, from slot 0. */
        memset(slot1 + 8, 0xff, 40);
        EXPECT_EQ(restore_reg(&st, &p, msg, sizeof(msg), &reg), 0);
        EXPECT_EQ(reg, 3);
        EXPECT_CONTAINS(msg, "(slot 0, generation 3)");
        /* Both damaged: refused with the newest good header's reason, the VM untouched. */
        slot0[5000] ^= 1;
        EXPECT_EQ(restore_reg(&st, &p, msg, sizeof(msg), &reg), -KEEL_EINVAL);
        EXPECT_CONTAINS(msg, "cannot restore vm snap: snapshot refused: pd0:part=s: checksum ");
        EXPECT_CONTAINS(msg, "the snapshot is corrupted");
        EXPECT_EQ(ram_b[0], 0xee);
        EXPECT_EQ(reg, 0);
        EXPECT_EQ(pd_n, 0);
        EXPECT_EQ(palloc_free_pages(&keel_palloc), free0);
        memset(&keel_palloc, 0, sizeof(keel_palloc));
        free(mem);
}

/* The guest's counter (Keel's + its offset) goes on from its value at the snapshot, whether
 * Keel's counter moved on or started again from a lower value. */
TEST(counter_goes_on)
{
        size_t len;

        fake_tsc = 1000000;
        len = take(2);
        EXPECT_EQ(((struct snap_header *)snap)->counter, 1000000);
        for (unsigned t = 0; t < 2; t++) {
                make(&vb, ram_b, 2, 0xee);
                fake_tsc = t ? 400 : 7000000;
                EXPECT_EQ(snapshot_load(&vb, snap, len, why, sizeof(why)), 0);
                for (unsigned c = 0; c < 2; c++)
                        EXPECT_EQ(fake_tsc + vb.vcpus[c].arch.counter_offset,
                                  1000000 + va.vcpus[c].arch.counter_offset);
        }
        fake_tsc = 0;
}

TEST(hash_changes_with_any_word)
{
        uint8_t buf[64] = {0};
        uint64_t h0 = hash64_final(hash64_update(HASH64_INIT, buf, sizeof(buf)), sizeof(buf));

        for (unsigned i = 0; i < sizeof(buf); i++) {
                buf[i] = 1;
                EXPECT_NE(hash64_final(hash64_update(HASH64_INIT, buf, sizeof(buf)), sizeof(buf)),
                          h0);
                buf[i] = 0;
        }
        /* In pieces of 8-byte multiples: the same as at once. */
        EXPECT_EQ(
            hash64_final(hash64_update(hash64_update(HASH64_INIT, buf, 16), buf + 16, 48), 64), h0);
        EXPECT_NE(hash64_final(hash64_update(HASH64_INIT, buf, 63), 63), h0);
}

TEST_MAIN()
