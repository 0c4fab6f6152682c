/*
 * Split virtqueues (virtio 1.1, 2.6), device side. The three rings live in guest RAM and are
 * read and written only through gmem_read/gmem_write, which bounds-check every access, so a
 * ring the driver moved out of RAM after setup is caught as a violation too. All ring fields
 * are little-endian; they are assembled from bytes so that this file is endian-neutral.
 *
 * Layout of a queue of N entries:
 *   descriptor table  N x {le64 addr; le32 len; le16 flags; le16 next}        align 16
 *   driver (avail)    le16 flags; le16 idx; le16 ring[N]; le16 used_event      align 2
 *   device (used)     le16 flags; le16 idx; {le32 id; le32 len}[N]; le16 avail_event  align 4
 *
 * Any violation marks the queue broken (q->error names it): nothing more is popped or pushed
 * until the driver resets the device; the transport turns that into DEVICE_NEEDS_RESET.
 *
 * Memory ordering. Keel runs one vCPU per VM today and processes a queue synchronously from
 * the QueueNotify trap, so the driver cannot race with us; the fences below are the ones the
 * spec requires between the two sides and keep the code right when vCPUs run concurrently.
 */
#include <string.h>

#include <keel/errno.h>
#include <vmm/virtio.h>

#define DESC_SIZE 16

static inline uint16_t le16(const uint8_t *p)
{
        return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const uint8_t *p)
{
        return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static inline void put_le16(uint8_t *p, uint16_t v)
{
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

/* Loads of ring entries / descriptors must not be done before the index that covers them. */
static inline void barrier_acquire(void)
{
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/* Stores of used elements must be visible before the used->idx store that publishes them. */
static inline void barrier_release(void)
{
        __atomic_thread_fence(__ATOMIC_RELEASE);
}

/* A store (used->idx, avail_event) must be visible before a following load of the driver's. */
static inline void barrier_full(void)
{
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint64_t virtq_desc_bytes(uint16_t num)
{
        return (uint64_t)DESC_SIZE * num;
}

uint64_t virtq_avail_bytes(uint16_t num)
{
        return 6 + 2ull * num;
}

uint64_t virtq_used_bytes(uint16_t num)
{
        return 6 + 8ull * num;
}

void virtq_reset(struct virtq *q, const struct gmem *mem, uint16_t num_max)
{
        memset(q, 0, sizeof(*q));
        q->mem = mem;
        q->num_max = num_max;
        q->num = num_max;
}

void virtq_fail(struct virtq *q, const char *why)
{
        if (!q->broken) {
                q->broken = true;
                q->error = why;
        }
}

static bool is_pow2(uint32_t v)
{
        return v && !(v & (v - 1));
}

const char *virtq_check_setup(const struct virtq *q)
{
        if (!is_pow2(q->num) || q->num > q->num_max)
                return "QueueNum is not a power of two <= QueueNumMax";
        if (!is_aligned(gpa_raw(q->desc), 16))
                return "descriptor table not 16-byte aligned";
        if (!is_aligned(gpa_raw(q->avail), 2))
                return "driver ring not 2-byte aligned";
        if (!is_aligned(gpa_raw(q->used), 4))
                return "device ring not 4-byte aligned";
        if (!gmem_contains(q->mem, q->desc, virtq_desc_bytes(q->num)))
                return "descriptor table outside guest RAM";
        if (!gmem_contains(q->mem, q->avail, virtq_avail_bytes(q->num)))
                return "driver ring outside guest RAM";
        if (!gmem_contains(q->mem, q->used, virtq_used_bytes(q->num)))
                return "device ring outside guest RAM";
        return NULL;
}

static int read16(struct virtq *q, gpa_t a, uint16_t *v, const char *what)
{
        uint8_t b[2];

        if (gmem_read(q->mem, a, b, sizeof(b)) < 0) {
                virtq_fail(q, what);
                return -KEEL_EFAULT;
        }
        *v = le16(b);
        return 0;
}

static int write16(struct virtq *q, gpa_t a, uint16_t v, const char *what)
{
        uint8_t b[2];

        put_le16(b, v);
        if (gmem_write(q->mem, a, b, sizeof(b)) < 0) {
                virtq_fail(q, what);
                return -KEEL_EFAULT;
        }
        return 0;
}

static int fail(struct virtq *q, const char *why)
{
        virtq_fail(q, why);
        return -KEEL_EFAULT;
}

struct desc {
        uint64_t addr;
        uint32_t len;
        uint16_t flags, next;
};

static int read_desc(struct virtq *q, gpa_t table, uint16_t i, struct desc *d, const char *what)
{
        uint8_t b[DESC_SIZE];

        if (gmem_read(q->mem, gpa_add(table, (uint64_t)i * DESC_SIZE), b, sizeof(b)) < 0)
                return fail(q, what);
        d->addr = le64(b);
        d->len = le32(b + 8);
        d->flags = le16(b + 12);
        d->next = le16(b + 14);
        return 0;
}

/*
 * Walk the chain starting at descriptor `head` of the queue's table. Bounds: a chain visits
 * at most `num` descriptors of the table it is in (more means a loop), an indirect table
 * holds at most `num` descriptors and may only be the chain's single head descriptor
 * (no NEXT, no nesting), every range lies inside guest RAM, readable before writable, and
 * the total length stays under VIRTQ_MAX_CHAIN_BYTES.
 */
static int walk_chain(struct virtq *q, uint16_t head, struct virtq_chain *c)
{
        gpa_t table = q->desc;
        uint32_t table_n = q->num, visited = 0;
        uint16_t i = head;
        bool indirect = false;
        uint64_t total = 0;
        struct desc d;

        c->head = head;
        c->nseg = c->nread = 0;
        c->read_len = c->write_len = 0;
        for (;;) {
                if (++visited > table_n)
                        return fail(q, indirect ? "indirect descriptor chain loops"
                                                : "descriptor chain longer than the queue (loop)");
                if (read_desc(q, table, i, &d,
                              indirect ? "indirect table outside guest RAM"
                                       : "descriptor table outside guest RAM") < 0)
                        return -KEEL_EFAULT;
                if (d.flags & VIRTQ_DESC_F_INDIRECT) {
                        if (!q->indirect)
                                return fail(
                                    q, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC");
                        if (indirect)
                                return fail(q, "nested indirect descriptor table");
                        if (c->nseg)
                                return fail(q, "indirect descriptor not at the head of its chain");
                        if (d.flags & VIRTQ_DESC_F_NEXT)
                                return fail(q, "indirect descriptor with VIRTQ_DESC_F_NEXT");
                        if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > q->num)
                                return fail(
                                    q, "indirect table length not a multiple of 16 or too long");
                        if (!gmem_contains(q->mem, gpa(d.addr), d.len))
                                return fail(q, "indirect table outside guest RAM");
                        indirect = true;
                        table = gpa(d.addr);
                        table_n = d.len / DESC_SIZE;
                        visited = 0;
                        i = 0;
                        continue;
                }
                if (d.len && !gmem_contains(q->mem, gpa(d.addr), d.len))
                        return fail(q, "buffer outside guest RAM");
                total += d.len;
                if (total > VIRTQ_MAX_CHAIN_BYTES)
                        return fail(q, "descriptor chain longer than 1 GiB");
                if (c->nseg == VIRTQ_MAX_SIZE) /* cannot happen: num <= VIRTQ_MAX_SIZE */
                        return fail(q, "descriptor chain too long");
                bool w = d.flags & VIRTQ_DESC_F_WRITE;
                if (!w && c->nread != c->nseg)
                        return fail(q, "device-readable descriptor after a device-writable one");
                c->seg[c->nseg++] = (struct virtq_seg){gpa(d.addr), d.len, w};
                if (w) {
                        c->write_len += d.len;
                } else {
                        c->nread++;
                        c->read_len += d.len;
                }
                if (!(d.flags & VIRTQ_DESC_F_NEXT))
                        return 0;
                if (d.next >= table_n)
                        return fail(q, "next descriptor index out of range");
                i = d.next;
        }
}

int virtq_pop(struct virtq *q, struct virtq_chain *c)
{
        uint16_t avail_idx, head;

        if (!q->ready || q->broken)
                return 0;
        if (read16(q, gpa_add(q->avail, 2), &avail_idx, "driver ring outside guest RAM") < 0)
                return -KEEL_EFAULT;
        uint16_t pending = (uint16_t)(avail_idx - q->last_avail);
        if (pending > q->num)
                return fail(q, "avail->idx moved by more than the queue size");
        if (pending == 0)
                return 0;
        barrier_acquire(); /* the ring entry and descriptors after avail->idx */
        if (read16(q, gpa_add(q->avail, 4 + 2ull * (q->last_avail % q->num)), &head,
                   "driver ring outside guest RAM") < 0)
                return -KEEL_EFAULT;
        if (head >= q->num)
                return fail(q, "head descriptor index out of range");
        if (walk_chain(q, head, c) < 0)
                return -KEEL_EFAULT;
        q->last_avail++;
        q->popped++;
        return 1;
}

int virtq_push(struct virtq *q, uint16_t head, uint32_t len)
{
        uint8_t e[8];

        if (!q->ready || q->broken)
                return -KEEL_EFAULT;
        if (q->pushed >= q->popped) /* Keel's device logic never does this; a guard anyway */
                return fail(q, "used element without a popped chain");
        put_le32(e, head);
        put_le32(e + 4, len);
        if (gmem_write(q->mem, gpa_add(q->used, 4 + 8ull * (q->used_idx % q->num)), e, sizeof(e)) <
            0)
                return fail(q, "device ring outside guest RAM");
        barrier_release(); /* the element (and the data written before it) before used->idx */
        q->used_idx++;
        if (write16(q, gpa_add(q->used, 2), q->used_idx, "device ring outside guest RAM") < 0)
                return -KEEL_EFAULT;
        q->pushed++;
        return 0;
}

bool virtq_end_batch(struct virtq *q)
{
        uint16_t avail_idx;

        if (!q->ready || q->broken)
                return false;
        if (q->event_idx && write16(q, gpa_add(q->used, 4 + 8ull * q->num), q->last_avail,
                                    "device ring outside guest RAM") < 0)
                return false;
        barrier_full(); /* avail_event before re-reading avail->idx */
        if (read16(q, gpa_add(q->avail, 2), &avail_idx, "driver ring outside guest RAM") < 0)
                return false;
        return avail_idx != q->last_avail;
}

bool virtq_need_interrupt(struct virtq *q)
{
        uint16_t old = q->signalled_used, now = q->used_idx, v;

        if (!q->ready || q->broken)
                return false;
        q->signalled_used = now;
        if (now == old)
                return false;
        barrier_full(); /* used->idx before reading used_event / avail->flags */
        if (q->event_idx) {
                if (read16(q, gpa_add(q->avail, 4 + 2ull * q->num), &v,
                           "driver ring outside guest RAM") < 0)
                        return false;
                /* Interrupt iff used_event lies in [old, now): the driver asked to hear of it. */
                return (uint16_t)(now - v - 1) < (uint16_t)(now - old);
        }
        if (read16(q, q->avail, &v, "driver ring outside guest RAM") < 0)
                return false;
        return !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

static int64_t chain_copy(struct virtq *q, const struct virtq_chain *c, bool to_guest, uint64_t off,
                          void *buf, uint64_t len)
{
        unsigned first = to_guest ? c->nread : 0, end = to_guest ? c->nseg : c->nread;
        uint64_t done = 0;

        if (q->broken)
                return -KEEL_EFAULT;
        for (unsigned s = first; s < end && done < len; s++) {
                const struct virtq_seg *g = &c->seg[s];
                if (off >= g->len) {
                        off -= g->len;
                        continue;
                }
                uint64_t n = g->len - off;
                if (n > len - done)
                        n = len - done;
                gpa_t a = gpa_add(g->addr, off);
                int r = to_guest ? gmem_write(q->mem, a, (const uint8_t *)buf + done, n)
                                 : gmem_read(q->mem, a, (uint8_t *)buf + done, n);
                if (r < 0)
                        return fail(q, "buffer outside guest RAM");
                done += n;
                off = 0;
        }
        return (int64_t)done;
}

int64_t virtq_chain_read(struct virtq *q, const struct virtq_chain *c, uint64_t off, void *buf,
                         uint64_t len)
{
        return chain_copy(q, c, false, off, buf, len);
}

int64_t virtq_chain_write(struct virtq *q, const struct virtq_chain *c, uint64_t off,
                          const void *buf, uint64_t len)
{
        return chain_copy(q, c, true, off, (void *)buf, len);
}
