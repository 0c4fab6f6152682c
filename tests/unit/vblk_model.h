/*
 * A virtio-blk-pci device model for host tests of drivers/virtio_pci.c and
 * drivers/virtio_blk_pci.c (tests/unit/test_virtio_blk_pci.c, tests/fuzz/fuzz_vblk_pci.c): a
 * 16 KiB "BAR4" (host memory: on the fake arch a host-physical address is a host pointer)
 * holding the common configuration at 0, ISR at 0x1000, the block configuration at 0x2000 and
 * the notify structure at 0x3000 (multiplier 4). The transport's register accesses reach it
 * through virtio_pci_io (model_io), so select registers and reset answer as they happen; a
 * notify processes the available ring at once (descriptor chains: header, data, status) on a
 * 256-block RAM disk and publishes the used entries at once or, in hold mode, when the test
 * says (release, publish). Faults: never complete, an I/O error on one sector, no
 * VERSION_1, FEATURES_OK refused, a reset that never ends; the test sets status bits itself.
 * Each register read moves Keel's clock (fake_tsc, 1 tick = 1 ns) by 1 us, so the driver's
 * bounded waits end. `m.bad` names the first thing the driver did wrong.
 */
#ifndef KEEL_TEST_VBLK_MODEL_H
#define KEEL_TEST_VBLK_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <drivers/virtio_pci.h>

#include "pci_fake.h"

extern uint64_t fake_tsc;

#define BAR_SIZE 0x4000
#define BLOCKS   256
#define HELD_MAX 64

struct held {
        uint16_t head;
        uint32_t len;
};

static struct model {
        uint8_t *bar;
        uint8_t disk[BLOCKS * 512];
        uint64_t offered, driver_f;
        uint32_t dfsel, gfsel;
        uint8_t status, generation;
        uint16_t qsel, qmax, qsize, qenable;
        uint64_t desc, avail, used;
        uint16_t last_avail, used_idx;
        uint64_t capacity;
        uint32_t seg_max, size_max, blk_size;
        bool hold, never, refuse_features_ok, reset_stuck;
        int error_sector; /* -1: none */
        struct held held[HELD_MAX];
        unsigned nheld;
        unsigned reads, writes, flushes, notifies, max_data_descs;
        const char *bad; /* what the driver did wrong, or NULL */
} m;

static uint8_t *hp(uint64_t pa)
{
        return (uint8_t *)(uintptr_t)pa;
}

static void publish(uint16_t head, uint32_t len)
{
        uint8_t *u = hp(m.used);
        uint32_t *e = (uint32_t *)(u + 4) + 2 * (m.used_idx % m.qsize);

        e[0] = head;
        e[1] = len;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        m.used_idx++;
        memcpy(u + 2, &m.used_idx, 2);
}

struct vdesc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

/* One chain: check its shape, do the I/O, write the status byte. */
static void run_chain(uint16_t head)
{
        struct vdesc *t = (struct vdesc *)hp(m.desc);
        struct vdesc c[HELD_MAX + 2];
        unsigned n = 0, data;
        uint16_t d = head;
        uint32_t type, written = 1;
        uint64_t sector, off;
        uint8_t st = 0;

        for (;;) {
                if (d >= m.qsize || n == m.qsize) {
                        m.bad = "a chain past the queue";
                        return;
                }
                c[n++] = t[d];
                if (!(t[d].flags & 1))
                        break;
                d = t[d].next;
        }
        if (n < 2 || c[0].len != 16 || (c[0].flags & 2) || c[n - 1].len != 1 ||
            !(c[n - 1].flags & 2)) {
                m.bad = "a chain without a readable 16-byte header and a writable status byte";
                return;
        }
        memcpy(&type, hp(c[0].addr), 4);
        memcpy(&sector, hp(c[0].addr) + 8, 8);
        data = n - 2;
        if (data > m.max_data_descs)
                m.max_data_descs = data;
        off = sector * 512;
        for (unsigned i = 1; i + 1 < n; i++) {
                if (type == 4 || !!(c[i].flags & 2) != (type == 0)) {
                        m.bad = "a data descriptor of the wrong direction";
                        return;
                }
                if (off + c[i].len > sizeof(m.disk)) {
                        st = 1;
                        break;
                }
                if (m.error_sector >= 0 && (uint64_t)m.error_sector * 512 >= off &&
                    (uint64_t)m.error_sector * 512 < off + c[i].len)
                        st = 1;
                else if (type == 0)
                        memcpy(hp(c[i].addr), m.disk + off, c[i].len);
                else if (type == 1)
                        memcpy(m.disk + off, hp(c[i].addr), c[i].len);
                if (type == 0)
                        written += c[i].len;
                off += c[i].len;
        }
        if (type == 0)
                m.reads++;
        else if (type == 1)
                m.writes++;
        else if (type == 4)
                m.flushes++;
        else
                st = 2;
        *hp(c[n - 1].addr) = st;
        if (m.hold) {
                if (m.nheld < HELD_MAX)
                        m.held[m.nheld++] = (struct held){head, written};
                return;
        }
        publish(head, written);
}

static void notify(void)
{
        uint8_t *a = hp(m.avail);
        uint16_t idx;

        m.notifies++;
        if (!m.qenable || !(m.status & 4)) {
                if (!(m.status & 4))
                        m.bad = "a notify before DRIVER_OK";
                return;
        }
        memcpy(&idx, a + 2, 2);
        while (m.last_avail != idx && !m.never) {
                uint16_t head;

                memcpy(&head, a + 4 + 2 * (m.last_avail % m.qsize), 2);
                m.last_avail++;
                run_chain(head);
        }
}

static void reset_device(void)
{
        m.status = 0;
        m.driver_f = 0;
        m.qsize = m.qmax;
        m.qenable = 0;
        m.desc = m.avail = m.used = 0;
        m.last_avail = m.used_idx = 0;
        m.nheld = 0;
}

static uint32_t cfg_read(unsigned off, unsigned w)
{
        uint8_t cfg[0x40] = {0};

        memcpy(cfg, &m.capacity, 8);
        memcpy(cfg + 8, &m.size_max, 4);
        memcpy(cfg + 12, &m.seg_max, 4);
        memcpy(cfg + 20, &m.blk_size, 4);
        if (off + w > sizeof(cfg))
                return 0;
        return w == 1   ? cfg[off]
               : w == 2 ? (uint32_t)cfg[off] | cfg[off + 1] << 8
                        : fake_get32(cfg + off);
}

static uint32_t model_read(volatile void *p, unsigned w)
{
        uintptr_t off = (uintptr_t)p - (uintptr_t)m.bar;

        fake_tsc += 1000;
        if (off >= BAR_SIZE) {
                m.bad = "a read outside the BAR";
                return 0;
        }
        if (off >= 0x2000 && off < 0x3000)
                return cfg_read((unsigned)(off - 0x2000), w);
        if (off >= 0x1000)
                return 0;
        switch (off) {
        case 0x00:
                return m.dfsel;
        case 0x04:
                return m.dfsel == 0   ? (uint32_t)m.offered
                       : m.dfsel == 1 ? (uint32_t)(m.offered >> 32)
                                      : 0;
        case 0x12:
                return 1;
        case 0x14:
                return m.reset_stuck ? 0x0f : m.status;
        case 0x15:
                return m.generation;
        case 0x16:
                return m.qsel;
        case 0x18:
                return m.qsel == 0 ? m.qsize : 0;
        case 0x1c:
                return m.qenable;
        case 0x1e:
                return 0; /* queue_notify_off */
        default:
                return 0;
        }
}

static void model_write(volatile void *p, unsigned w, uint32_t v)
{
        uintptr_t off = (uintptr_t)p - (uintptr_t)m.bar;

        (void)w;
        if (off >= BAR_SIZE || (off >= 0x1000 && off < 0x3000)) {
                m.bad = "a write outside the common and notify structures";
                return;
        }
        if (off >= 0x3000) {
                if (off != 0x3000 || v != 0)
                        m.bad = "a notify of another queue or address";
                notify();
                return;
        }
        switch (off) {
        case 0x00:
                m.dfsel = v;
                break;
        case 0x08:
                m.gfsel = v;
                break;
        case 0x0c:
                if (m.gfsel < 2)
                        m.driver_f = (m.driver_f & ~(0xffffffffull << (32 * m.gfsel))) |
                                     (uint64_t)v << (32 * m.gfsel);
                break;
        case 0x14:
                if (v == 0) {
                        reset_device();
                        break;
                }
                if ((v & 8) && !(m.status & 8)) {
                        if ((m.driver_f & ~m.offered) || !(m.driver_f & (1ull << 32)) ||
                            m.refuse_features_ok)
                                v &= ~8u;
                }
                if ((v & 4) && !(v & 8))
                        m.bad = "DRIVER_OK without FEATURES_OK";
                m.status = (uint8_t)(v | (m.status & 64));
                break;
        case 0x16:
                m.qsel = (uint16_t)v;
                break;
        case 0x18:
                if (v > m.qmax || (v & (v - 1)))
                        m.bad = "a queue size the device did not offer";
                m.qsize = (uint16_t)v;
                break;
        case 0x1c:
                m.qenable = (uint16_t)v;
                break;
        case 0x20:
                m.desc = (m.desc & ~0xffffffffull) | v;
                break;
        case 0x24:
                m.desc = (m.desc & 0xffffffffull) | (uint64_t)v << 32;
                break;
        case 0x28:
                m.avail = (m.avail & ~0xffffffffull) | v;
                break;
        case 0x2c:
                m.avail = (m.avail & 0xffffffffull) | (uint64_t)v << 32;
                break;
        case 0x30:
                m.used = (m.used & ~0xffffffffull) | v;
                break;
        case 0x34:
                m.used = (m.used & 0xffffffffull) | (uint64_t)v << 32;
                break;
        default:
                break;
        }
}

static const struct virtio_pci_io model_io = {model_read, model_write};

/* Publish the held completions in the order given (indexes into the held list). */
static inline void release(const unsigned *order, unsigned n)
{
        for (unsigned i = 0; i < n; i++)
                publish(m.held[order[i]].head, m.held[order[i]].len);
}

#endif
