/*
 * A VM's console front end (vmm/include/vmm/vcons.h, docs/uart.md): transmitted bytes are
 * collected into a line; '\n' emits it as "[<prefix>] <line>", '\r' is dropped, other control
 * and non-ASCII bytes (except tab) become '.'. A full line buffer is emitted as is when the
 * next byte arrives.
 */
#include <string.h>

#include <keel/log.h>
#include <vmm/vcons.h>

#define VCONS_PREFIX_MAX 64

_Static_assert((VCONS_IN_MAX & (VCONS_IN_MAX - 1)) == 0, "ring size is a power of two");

void vcons_init(struct vcons *c, const char *prefix)
{
        memset(c, 0, sizeof(*c));
        c->prefix = prefix;
}

/*
 * Write the collected bytes to Keel's console as part of this VM's line, "[<prefix>] " first
 * unless the console line is this VM's already (log_write_part decides: another writer may
 * have ended it since vcons_show_partial); `end` finishes the line.
 */
static void vcons_out(struct vcons *c, bool end, struct spin_held h)
{
        char head[VCONS_PREFIX_MAX + 4];
        const char *p = c->prefix ? c->prefix : "";
        size_t plen = strnlen(p, VCONS_PREFIX_MAX), n = 0;

        (void)h;
        head[n++] = '[';
        memcpy(head + n, p, plen);
        n += plen;
        head[n++] = ']';
        head[n++] = ' ';
        log_write_part(c, head, n, c->line, c->len, end);
        c->len = 0;
        c->line_open = !end;
}

static void put_locked(struct vcons *c, uint8_t ch, struct spin_held h)
{
        c->tx_bytes++;
        if (ch == '\n') {
                vcons_out(c, true, h);
                return;
        }
        if (ch == '\r')
                return;
        if ((ch < 0x20 && ch != '\t') || ch >= 0x7f)
                ch = '.';
        if (c->len >= VCONS_LINE_MAX)
                vcons_out(c, true, h);
        c->line[c->len++] = (char)ch;
}

void vcons_putc(struct vcons *c, uint8_t ch)
{
        struct spin_held h = spin_lock(&c->lock);

        put_locked(c, ch, h);
        spin_unlock(h);
}

void vcons_write(struct vcons *c, const uint8_t *buf, size_t n)
{
        struct spin_held h = spin_lock(&c->lock);

        for (size_t i = 0; i < n; i++)
                put_locked(c, buf[i], h);
        spin_unlock(h);
}

void vcons_show_partial(struct vcons *c)
{
        struct spin_held h = spin_lock(&c->lock);

        if (c->len)
                vcons_out(c, false, h);
        spin_unlock(h);
}

void vcons_flush(struct vcons *c)
{
        struct spin_held h = spin_lock(&c->lock);

        if (c->len) {
                vcons_out(c, true, h);
        } else if (c->line_open) {
                log_end_part(c); /* unless another writer ended it already */
                c->line_open = false;
        }
        spin_unlock(h);
}

size_t vcons_input_pending(const struct vcons *c)
{
        uint32_t tail = __atomic_load_n(&c->in.tail, __ATOMIC_ACQUIRE);

        return tail - __atomic_load_n(&c->in.head, __ATOMIC_ACQUIRE);
}

size_t vcons_input_push(struct vcons *c, const uint8_t *buf, size_t n)
{
        uint32_t tail = c->in.tail, head = __atomic_load_n(&c->in.head, __ATOMIC_ACQUIRE);
        size_t done = 0;

        while (done < n && tail - head < VCONS_IN_MAX)
                c->in.buf[tail++ % VCONS_IN_MAX] = buf[done++];
        __atomic_store_n(&c->in.tail, tail, __ATOMIC_RELEASE);
        return done;
}

size_t vcons_input_pop(struct vcons *c, uint8_t *buf, size_t max)
{
        uint32_t head = c->in.head, tail = __atomic_load_n(&c->in.tail, __ATOMIC_ACQUIRE);
        size_t done = 0;

        while (done < max && head != tail)
                buf[done++] = c->in.buf[head++ % VCONS_IN_MAX];
        __atomic_store_n(&c->in.head, head, __ATOMIC_RELEASE);
        return done;
}

void vcons_input_clear(struct vcons *c)
{
        c->in.head = c->in.tail = 0;
}
