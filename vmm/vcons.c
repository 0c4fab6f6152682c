/*
 * A VM's console front end (vmm/include/vmm/vcons.h, docs/uart.md): transmitted bytes are
 * collected into a line; '\n' emits it as "[<prefix>] <line>", '\r' is dropped, terminal
 * escape sequences (ECMA-48: CSI "ESC [ params final", OSC/DCS/APC/PM "ESC ] ... BEL or ST",
 * two-byte "ESC X") are dropped whole, other control and non-ASCII bytes (except tab) become
 * '.'. A full line buffer is emitted as is when the next byte arrives.
 */
#include <string.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <vmm/vcons.h>
#include <vmm/vmm.h>

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

/* Escape-sequence states. */
enum {
        ESC_NONE,
        ESC_START,  /* ESC seen */
        ESC_CSI,    /* ESC [: parameter and intermediate bytes until a final byte 0x40-0x7e */
        ESC_STRING, /* ESC ] (OSC), P (DCS), X (SOS), ^ (PM), _ (APC): until BEL or ESC \ */
        ESC_STR_ESC /* ESC inside a string: '\' ends it */
};

/* A sequence longer than this is not one a terminal would take: the rest shows as text. */
#define ESC_MAX 256

/* Feed `ch` to the escape filter; true if it belongs to a sequence (and is dropped). */
static bool in_escape(struct vcons *c, uint8_t ch)
{
        if (c->esc == ESC_NONE) {
                if (ch != 0x1b)
                        return false;
                c->esc = ESC_START;
                c->esc_len = 1;
                return true;
        }
        if (ch == '\n' || ++c->esc_len > ESC_MAX) {
                c->esc = ESC_NONE; /* never swallow a line end, nor without bound */
                return false;
        }
        switch (c->esc) {
        case ESC_START:
                if (ch < 0x20 || ch >= 0x7f) {
                        c->esc = ESC_NONE; /* a lone ESC: the byte after it is text */
                        return false;
                }
                if (ch == '[')
                        c->esc = ESC_CSI;
                else if (ch == ']' || ch == 'P' || ch == 'X' || ch == '^' || ch == '_')
                        c->esc = ESC_STRING;
                else if (ch >= 0x20 && ch <= 0x2f)
                        ; /* intermediate byte of "ESC ( B" and the like: the next one ends it */
                else
                        c->esc = ESC_NONE; /* ESC X: two bytes */
                return true;
        case ESC_CSI:
                if (ch >= 0x20 && ch <= 0x3f)
                        return true; /* parameter or intermediate byte */
                c->esc = ESC_NONE;
                return ch >= 0x40 && ch <= 0x7e; /* the final byte; anything else is text */
        case ESC_STRING:
                if (ch == 0x07)
                        c->esc = ESC_NONE;
                else if (ch == 0x1b)
                        c->esc = ESC_STR_ESC;
                return true;
        default: /* ESC_STR_ESC */
                c->esc = ch == '\\' ? ESC_NONE : ESC_STRING;
                return true;
        }
}

static void put_locked(struct vcons *c, uint8_t ch, struct spin_held h)
{
        c->tx_bytes++;
        if (in_escape(c, ch))
                return;
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

/*
 * Raw mode (vcons_raw_focus): on, and the raw VM's console (NULL: the focus is on a VM not
 * built now). raw_vm is stored under that VM's lock; writers compare, never dereference it.
 */
static bool raw_on;
static struct vcons *raw_vm;

/* Bytes of the raw VM's output, as they are: a piece of its line, which Keel's lines end. */
static void raw_piece(const void *writer, const uint8_t *buf, size_t n)
{
        bool end;

        if (!n) /* an empty write (print hypercall of length 0): nothing, and no buf[-1] */
                return;
        end = buf[n - 1] == '\n'; /* log_write_part writes that '\n' itself */
        log_write_part(writer, "", 0, (const char *)buf, n - end, end);
}

/* Raw mode: the raw VM's bytes go out as they are, the others' into their history. */
static __attribute__((noinline)) void put_raw(struct vcons *c, const uint8_t *buf, size_t n,
                                              struct spin_held h)
{
        struct vcons_hist *hs = c->hist;

        (void)h;
        c->tx_bytes += n;
        if (c == raw_vm) {
                raw_piece(c, buf, n);
                return;
        }
        if (!hs)
                return;
        for (size_t i = 0; i < n; i++) {
                hs->buf[hs->end] = buf[i];
                hs->end = (hs->end + 1) % VCONS_HIST_MAX;
                if (hs->len < VCONS_HIST_MAX)
                        hs->len++;
                else
                        hs->lost = true;
        }
}

void vcons_putc(struct vcons *c, uint8_t ch)
{
        struct spin_held h = spin_lock(&c->lock);

        if (__builtin_expect(__atomic_load_n(&raw_on, __ATOMIC_RELAXED), 0))
                put_raw(c, &ch, 1, h);
        else
                put_locked(c, ch, h);
        spin_unlock(h);
}

void vcons_write(struct vcons *c, const uint8_t *buf, size_t n)
{
        struct spin_held h = spin_lock(&c->lock);

        if (__atomic_load_n(&raw_on, __ATOMIC_RELAXED)) {
                put_raw(c, buf, n, h);
        } else {
                for (size_t i = 0; i < n; i++)
                        put_locked(c, buf[i], h);
        }
        spin_unlock(h);
}

struct vcons_hist *vcons_hist_alloc(void)
{
        hpa_t pa;

        _Static_assert(sizeof(struct vcons_hist) <= PAGE_SIZE, "one page of history");
        if (palloc_alloc(&keel_palloc, 1, PAGE_SIZE, &pa))
                return NULL;
        return hva_ptr(arch_hpa_to_hva(pa)); /* zeroed by the allocator */
}

/* Writes h out as a piece of `writer`'s line (its VM's console, or h itself) and empties it. */
static __attribute__((cold)) void replay(const void *writer, struct vcons_hist *h)
{
        uint32_t start = (h->end + VCONS_HIST_MAX - h->len) % VCONS_HIST_MAX;

        if (h->lost)
                LOG_INFO("console: older output of this VM was dropped (raw mode keeps "
                         "the last %u bytes)",
                         VCONS_HIST_MAX);
        if (h->len && start + h->len > VCONS_HIST_MAX) {
                raw_piece(writer, h->buf + start, VCONS_HIST_MAX - start);
                raw_piece(writer, h->buf, h->len - (VCONS_HIST_MAX - start));
        } else if (h->len) {
                raw_piece(writer, h->buf + start, h->len);
        }
        h->len = 0;
        h->lost = false;
}

/* The raw VM's unfinished line ends: its next bytes are prefixed, or kept. */
static void end_raw_line(void)
{
        if (raw_vm)
                log_end_part(raw_vm);
}

__attribute__((cold)) void vcons_raw_focus(struct vcons *c, struct vcons_hist *h)
{
        struct spin_held lk;

        if (raw_vm != c)
                end_raw_line();
        if (!c) {
                __atomic_store_n(&raw_vm, NULL, __ATOMIC_RELAXED);
                __atomic_store_n(&raw_on, true, __ATOMIC_RELAXED);
                if (h) { /* nobody writes to it: its VM is not built */
                        replay(h, h);
                        log_end_part(h);
                }
                return;
        }
        lk = spin_lock(&c->lock);
        if (c->len)
                vcons_out(c, true, lk);
        else if (c->line_open)
                log_end_part(c);
        c->line_open = false;
        c->esc = 0;
        if (h)
                replay(c, h);
        __atomic_store_n(&raw_vm, c, __ATOMIC_RELAXED);
        __atomic_store_n(&raw_on, true, __ATOMIC_RELAXED);
        spin_unlock(lk);
}

void vcons_raw_off(void)
{
        end_raw_line();
        __atomic_store_n(&raw_vm, NULL, __ATOMIC_RELAXED);
        __atomic_store_n(&raw_on, false, __ATOMIC_RELAXED);
}

__attribute__((cold)) void vcons_forget(struct vcons *c)
{
        struct spin_held lk = spin_lock(&c->lock);

        if (raw_vm == c) {
                log_end_part(c);
                __atomic_store_n(&raw_vm, NULL, __ATOMIC_RELAXED);
        }
        spin_unlock(lk);
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
