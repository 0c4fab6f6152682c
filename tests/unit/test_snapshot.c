/*
 * Snapshots (vmm/snapshot.c) on the fake arch: a VM's RAM, vCPU registers and device cookie
 * saved and loaded back into another VM of the same geometry; every kind of damage refused
 * with its reason and the VM left as it was; the checksum (keel/hash.h).
 */
#include <stdlib.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/hash.h>
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
        EXPECT_TRUE(refused(bad, len, "format version 2; this Keel reads version 1 only"));
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
                             2 * sizeof(struct snap_section) + 1 + 16 * 8 + 4 + 1 + 16 * 8;

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
