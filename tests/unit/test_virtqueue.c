/*
 * Tests for vmm/virtqueue.c, driven directly (no transport): chains are popped from rings
 * laid out in a fake guest RAM; hostile rings must break the queue with a reason, never
 * touch memory outside the RAM (canary pages and ASan) and never loop.
 */
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/virtio.h>

#include "test.h"
#include "virtio_fake_driver.h"

#define QBASE (FV_BASE + 0x1000)
#define BUF   (FV_BASE + 0x10000)
#define ITAB  (FV_BASE + 0x8000)

static struct virtq vq;
static struct virtq_chain ch;

/* A ready queue of `num` entries over the fake RAM. */
static struct fake_vm *setup(struct drv_q *dq, uint16_t num, bool event_idx, bool indirect)
{
        struct fake_vm *v = fv_new();

        dq_layout(dq, 0, num, QBASE);
        virtq_reset(&vq, &v->mem, 256);
        vq.num = num;
        vq.desc = gpa(dq->desc);
        vq.avail = gpa(dq->avail);
        vq.used = gpa(dq->used);
        vq.event_idx = event_idx;
        vq.indirect = indirect;
        if (virtq_check_setup(&vq) == NULL)
                vq.ready = true;
        return v;
}

/* Pop must fail, break the queue with a reason containing `what`, leave canaries intact. */
static void expect_violation(struct fake_vm *v, const char *what)
{
        EXPECT_EQ(virtq_pop(&vq, &ch), -KEEL_EFAULT);
        EXPECT_TRUE(vq.broken);
        EXPECT_TRUE(vq.error != NULL);
        if (vq.error)
                EXPECT_CONTAINS(vq.error, what);
        /* Broken stays broken: nothing more is popped or pushed. */
        EXPECT_EQ(virtq_pop(&vq, &ch), 0);
        EXPECT_EQ(virtq_push(&vq, 0, 0), -KEEL_EFAULT);
        EXPECT_TRUE(fv_canaries_ok(v));
}

TEST(ring_sizes)
{
        EXPECT_EQ(virtq_desc_bytes(256), 4096);
        EXPECT_EQ(virtq_avail_bytes(8), 6 + 16);
        EXPECT_EQ(virtq_used_bytes(8), 6 + 64);
}

TEST(setup_checks)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        EXPECT_TRUE(virtq_check_setup(&vq) == NULL);
        vq.num = 6;
        EXPECT_TRUE(virtq_check_setup(&vq) != NULL);
        vq.num = 512;
        EXPECT_TRUE(virtq_check_setup(&vq) != NULL);
        vq.num = 8;
        vq.desc = gpa(dq.desc + 8);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "aligned");
        vq.desc = gpa(dq.desc);
        vq.avail = gpa(dq.avail + 1);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "aligned");
        vq.avail = gpa(dq.avail);
        vq.used = gpa(dq.used + 2);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "aligned");
        /* Rings straddling the end of RAM or below it. */
        vq.used = gpa(FV_BASE + FV_SIZE - 8);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "outside");
        vq.used = gpa(dq.used);
        vq.desc = gpa(FV_BASE - 0x1000);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "outside");
        vq.desc = gpa(0xfffffffffffff000ull);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "outside");
        vq.desc = gpa(dq.desc);
        vq.avail = gpa(FV_BASE + FV_SIZE - 20);
        EXPECT_CONTAINS(virtq_check_setup(&vq), "outside");
        fv_free(v);
}

TEST(pop_and_push_round_trip)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        ASSERT_TRUE(vq.ready);
        EXPECT_EQ(virtq_pop(&vq, &ch), 0); /* empty */
        dq_desc(v, &dq, 3, BUF, 16, VIRTQ_DESC_F_NEXT, 5);
        dq_desc(v, &dq, 5, BUF + 0x100, 100, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &dq, 1, BUF + 0x200, 200, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        dq_desc(v, &dq, 2, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &dq, 3);
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        EXPECT_EQ(ch.head, 3);
        EXPECT_EQ(ch.nseg, 4);
        EXPECT_EQ(ch.nread, 2);
        EXPECT_EQ(ch.read_len, 116);
        EXPECT_EQ(ch.write_len, 201);
        EXPECT_EQ(gpa_raw(ch.seg[1].addr), BUF + 0x100);
        EXPECT_TRUE(ch.seg[2].write);
        EXPECT_EQ(virtq_pop(&vq, &ch), 0);

        /* Copies across segment boundaries, in both directions. */
        memset(fv_ptr(v, BUF), 'a', 16);
        memset(fv_ptr(v, BUF + 0x100), 'b', 100);
        char rb[40];
        EXPECT_EQ(virtq_chain_read(&vq, &ch, 10, rb, sizeof(rb)), 40);
        EXPECT_EQ(rb[5], 'a');
        EXPECT_EQ(rb[6], 'b');
        EXPECT_EQ(virtq_chain_read(&vq, &ch, 110, rb, sizeof(rb)), 6); /* short at the end */
        char wb[201];
        memset(wb, 'w', sizeof(wb));
        EXPECT_EQ(virtq_chain_write(&vq, &ch, 0, wb, sizeof(wb)), 201);
        EXPECT_EQ(*(uint8_t *)fv_ptr(v, BUF + 0x400), 'w');
        EXPECT_EQ(*(uint8_t *)fv_ptr(v, BUF + 0x401), 0);

        EXPECT_EQ(virtq_push(&vq, 3, 201), 0);
        EXPECT_EQ(dq_used_idx(v, &dq), 1);
        uint32_t id, len;
        dq_used_elem(v, &dq, 0, &id, &len);
        EXPECT_EQ(id, 3);
        EXPECT_EQ(len, 201);
        /* More pushes than pops would be a device bug: refused. */
        EXPECT_EQ(virtq_push(&vq, 3, 0), -KEEL_EFAULT);
        EXPECT_TRUE(fv_canaries_ok(v));
        fv_free(v);
}

TEST(ring_wraps_around_u16)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 4, false, false);

        /* Start both sides near 65535 so the indices wrap. */
        vq.last_avail = vq.used_idx = vq.signalled_used = 65534;
        dq.avail_idx = 65534;
        fv_put16(v, dq.used + 2, 65534);
        for (int i = 0; i < 5; i++) {
                dq_desc(v, &dq, (uint16_t)(i % 4), BUF, 4, 0, 0);
                dq_avail(v, &dq, (uint16_t)(i % 4));
                ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
                EXPECT_EQ(ch.head, i % 4);
                EXPECT_EQ(virtq_push(&vq, ch.head, 0), 0);
        }
        EXPECT_EQ(dq_used_idx(v, &dq), 3); /* 65534 + 5 */
        EXPECT_FALSE(vq.broken);
        fv_free(v);
}

TEST(descriptor_loop)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        dq_desc(v, &dq, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &dq, 1, BUF, 4, VIRTQ_DESC_F_NEXT, 0);
        dq_avail(v, &dq, 0);
        expect_violation(v, "loop");
        fv_free(v);
}

TEST(self_loop)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        dq_desc(v, &dq, 4, BUF, 4, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 4);
        dq_avail(v, &dq, 4);
        expect_violation(v, "loop");
        fv_free(v);
}

TEST(full_length_chain_is_fine)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        for (uint16_t i = 0; i < 8; i++)
                dq_desc(v, &dq, i, BUF + i, 1, i < 7 ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
        dq_avail(v, &dq, 0);
        EXPECT_EQ(virtq_pop(&vq, &ch), 1);
        EXPECT_EQ(ch.nseg, 8);
        fv_free(v);
}

TEST(next_and_head_out_of_range)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        dq_desc(v, &dq, 0, BUF, 4, VIRTQ_DESC_F_NEXT, 8);
        dq_avail(v, &dq, 0);
        expect_violation(v, "next descriptor index");
        fv_free(v);

        v = setup(&dq, 8, false, false);
        dq_avail(v, &dq, 9);
        expect_violation(v, "head descriptor index");
        fv_free(v);
}

TEST(buffers_outside_ram)
{
        static const struct {
                uint64_t addr;
                uint32_t len;
        } bad[] = {
            {FV_BASE - 16, 4},               /* below */
            {FV_BASE + FV_SIZE - 4, 8},      /* straddles the end */
            {FV_BASE + FV_SIZE, 1},          /* just after */
            {0xfffffffffffff000ull, 0x2000}, /* wraps around 2^64 */
            {FV_BASE, 0xffffffffu},          /* huge length */
            {0, 16},                         /* address 0 */
        };

        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                struct drv_q dq;
                struct fake_vm *v = setup(&dq, 8, false, false);
                dq_desc(v, &dq, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
                dq_desc(v, &dq, 1, bad[i].addr, bad[i].len, VIRTQ_DESC_F_WRITE, 0);
                dq_avail(v, &dq, 0);
                expect_violation(v, "outside guest RAM");
                fv_free(v);
        }
}

TEST(readable_after_writable)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        dq_desc(v, &dq, 0, BUF, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        dq_desc(v, &dq, 1, BUF + 16, 16, 0, 0);
        dq_avail(v, &dq, 0);
        expect_violation(v, "device-readable descriptor after a device-writable");
        fv_free(v);
}

TEST(avail_idx_jumps)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        dq_desc(v, &dq, 0, BUF, 16, 0, 0);
        fv_put16(v, dq.avail + 2, 9); /* 9 new entries in a ring of 8 */
        expect_violation(v, "avail->idx");
        fv_free(v);

        /* Exactly the queue size is fine. */
        v = setup(&dq, 8, false, false);
        for (uint16_t i = 0; i < 8; i++) {
                dq_desc(v, &dq, i, BUF, 16, 0, 0);
                dq_avail(v, &dq, i);
        }
        for (int i = 0; i < 8; i++)
                EXPECT_EQ(virtq_pop(&vq, &ch), 1);
        EXPECT_EQ(virtq_pop(&vq, &ch), 0);
        EXPECT_FALSE(vq.broken);
        fv_free(v);
}

TEST(total_length_bounded)
{
        /*
         * A second, huge RAM region whose backing is never touched: descriptors there pass the
         * range check, and their sum must hit VIRTQ_MAX_CHAIN_BYTES before anything is copied.
         */
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);
        const uint64_t big = 0x100000000ull, bigsz = 0x40000000ull;

        ASSERT_TRUE(gmem_add_region(&v->mem, gpa(big), bigsz, hpa(0x7f0000000000ull)) == 0);
        dq_desc(v, &dq, 0, big, (uint32_t)bigsz, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, &dq, 1, big, 1, 0, 0);
        dq_avail(v, &dq, 0);
        expect_violation(v, "longer than 1 GiB");
        fv_free(v);
}

TEST(ram_vanishes_under_the_queue)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);
        unsigned count = v->mem.count;

        dq_desc(v, &dq, 0, BUF, 16, 0, 0);
        dq_avail(v, &dq, 0);
        v->mem.count = 0; /* every access is re-checked: nothing is cached from setup */
        expect_violation(v, "outside guest RAM");
        v->mem.count = count;
        fv_free(v);
}

TEST(indirect_round_trip)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, true);

        dq_idesc(v, ITAB, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_idesc(v, ITAB, 1, BUF + 0x100, 512, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
        dq_idesc(v, ITAB, 2, BUF + 0x400, 1, VIRTQ_DESC_F_WRITE, 0);
        /* WRITE on the descriptor that points at the table is ignored. */
        dq_desc(v, &dq, 6, ITAB, 48, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
        dq_avail(v, &dq, 6);
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        EXPECT_EQ(ch.head, 6);
        EXPECT_EQ(ch.nseg, 3);
        EXPECT_EQ(ch.nread, 1);
        EXPECT_EQ(ch.write_len, 513);
        fv_free(v);
}

static void indirect_attack(bool negotiated, void (*build)(struct fake_vm *, struct drv_q *),
                            const char *what)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, negotiated);

        build(v, &dq);
        dq_avail(v, &dq, 0);
        expect_violation(v, what);
        fv_free(v);
}

static void ind_plain(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, 0, 0);
        dq_desc(v, dq, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_nested(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, ITAB + 0x100, 16, VIRTQ_DESC_F_INDIRECT, 0);
        dq_desc(v, dq, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_with_next(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, 0, 0);
        dq_desc(v, dq, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, dq, 1, BUF, 16, 0, 0);
}

static void ind_bad_len(struct fake_vm *v, struct drv_q *dq)
{
        dq_desc(v, dq, 0, ITAB, 24, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_zero_len(struct fake_vm *v, struct drv_q *dq)
{
        dq_desc(v, dq, 0, ITAB, 0, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_too_long(struct fake_vm *v, struct drv_q *dq)
{
        dq_desc(v, dq, 0, ITAB, 16 * 9, VIRTQ_DESC_F_INDIRECT, 0); /* 9 > queue size 8 */
}

static void ind_outside(struct fake_vm *v, struct drv_q *dq)
{
        dq_desc(v, dq, 0, FV_BASE + FV_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_loop(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_idesc(v, ITAB, 1, BUF, 16, VIRTQ_DESC_F_NEXT, 0);
        dq_desc(v, dq, 0, ITAB, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_next_out_of_table(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 2);
        dq_idesc(v, ITAB, 2, BUF, 16, 0, 0); /* exists in RAM but not in the 2-entry table */
        dq_desc(v, dq, 0, ITAB, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_buffer_outside(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, 0xfffffffffffffff0ull, 0x20, 0, 0);
        dq_desc(v, dq, 0, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_wrong_direction(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 1);
        dq_idesc(v, ITAB, 1, BUF, 16, 0, 0);
        dq_desc(v, dq, 0, ITAB, 32, VIRTQ_DESC_F_INDIRECT, 0);
}

static void ind_not_head(struct fake_vm *v, struct drv_q *dq)
{
        dq_idesc(v, ITAB, 0, BUF, 16, 0, 0);
        dq_desc(v, dq, 0, BUF, 16, VIRTQ_DESC_F_NEXT, 1);
        dq_desc(v, dq, 1, ITAB, 16, VIRTQ_DESC_F_INDIRECT, 0);
}

TEST(indirect_attacks)
{
        indirect_attack(false, ind_plain, "without VIRTIO_RING_F_INDIRECT_DESC");
        indirect_attack(true, ind_nested, "nested");
        indirect_attack(true, ind_with_next, "NEXT");
        indirect_attack(true, ind_bad_len, "multiple of 16");
        indirect_attack(true, ind_zero_len, "multiple of 16");
        indirect_attack(true, ind_too_long, "too long");
        indirect_attack(true, ind_outside, "outside guest RAM");
        indirect_attack(true, ind_loop, "loops");
        indirect_attack(true, ind_next_out_of_table, "next descriptor index");
        indirect_attack(true, ind_buffer_outside, "outside guest RAM");
        indirect_attack(true, ind_wrong_direction, "device-readable descriptor after");
        indirect_attack(true, ind_not_head, "not at the head");
}

TEST(interrupt_without_event_idx)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, false, false);

        EXPECT_FALSE(virtq_need_interrupt(&vq)); /* nothing used yet */
        dq_desc(v, &dq, 0, BUF, 16, 0, 0);
        dq_avail(v, &dq, 0);
        dq_avail(v, &dq, 0);
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        virtq_push(&vq, 0, 0);
        EXPECT_TRUE(virtq_need_interrupt(&vq));
        EXPECT_FALSE(virtq_need_interrupt(&vq)); /* nothing new since */
        fv_put16(v, dq.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        virtq_push(&vq, 0, 0);
        EXPECT_FALSE(virtq_need_interrupt(&vq));
        fv_free(v);
}

TEST(event_idx_interrupt_suppression)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, true, false);

        for (uint16_t i = 0; i < 8; i++) {
                dq_desc(v, &dq, i, BUF, 16, 0, 0);
                dq_avail(v, &dq, i);
        }
        /* The driver wants to hear when used element #3 (idx 3 -> 4) is published. */
        dq_set_used_event(v, &dq, 3);
        /* NO_INTERRUPT is ignored with EVENT_IDX. */
        fv_put16(v, dq.avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
        for (int i = 0; i < 3; i++) {
                ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
                virtq_push(&vq, ch.head, 0);
                EXPECT_FALSE(virtq_need_interrupt(&vq));
        }
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        virtq_push(&vq, ch.head, 0);
        EXPECT_TRUE(virtq_need_interrupt(&vq)); /* used->idx went 3 -> 4 */
        /* A batch that jumps over used_event still interrupts once. */
        dq_set_used_event(v, &dq, 5);
        for (int i = 0; i < 3; i++) {
                ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
                virtq_push(&vq, ch.head, 0);
        }
        EXPECT_TRUE(virtq_need_interrupt(&vq));
        /* used_event behind us: no interrupt until the index wraps back to it. */
        dq_set_used_event(v, &dq, 2);
        ASSERT_TRUE(virtq_pop(&vq, &ch) == 1);
        virtq_push(&vq, ch.head, 0);
        EXPECT_FALSE(virtq_need_interrupt(&vq));
        fv_free(v);
}

TEST(event_idx_avail_event)
{
        struct drv_q dq;
        struct fake_vm *v = setup(&dq, 8, true, false);

        for (uint16_t i = 0; i < 3; i++) {
                dq_desc(v, &dq, i, BUF, 16, 0, 0);
                dq_avail(v, &dq, i);
        }
        while (virtq_pop(&vq, &ch) == 1)
                virtq_push(&vq, ch.head, 0);
        /* Nothing more: avail_event asks for a notification at the next buffer. */
        EXPECT_FALSE(virtq_end_batch(&vq));
        EXPECT_EQ(dq_avail_event(v, &dq), 3);
        /* One raced in after the pass: end_batch says so. */
        dq_avail(v, &dq, 0);
        EXPECT_TRUE(virtq_end_batch(&vq));
        /* Without EVENT_IDX the field is not written. */
        fv_free(v);
        v = setup(&dq, 8, false, false);
        fv_put16(v, dq.used + 4 + 8 * 8, 0x7777);
        dq_desc(v, &dq, 0, BUF, 16, 0, 0);
        dq_avail(v, &dq, 0);
        EXPECT_EQ(virtq_pop(&vq, &ch), 1);
        EXPECT_FALSE(virtq_end_batch(&vq));
        EXPECT_EQ(dq_avail_event(v, &dq), 0x7777);
        fv_free(v);
}

TEST_MAIN()
