/*
 * A VM's console front end: what every emulated serial device of the VM (the 16550A on x86,
 * the PL011 on arm64) and the print hypercall transmit ends up here. Bytes are collected into
 * lines; each complete line is written to Keel's console as "[<vm name>] <line>". '\r' is
 * dropped, other control and non-ASCII bytes except tab become '.' (a guest cannot send escape
 * sequences to Keel's console), a line longer than VCONS_LINE_MAX bytes is emitted in pieces.
 * docs/uart.md describes it.
 *
 * Device models hold a pointer to their VM's struct vcons and call vcons_putc directly for
 * each transmitted byte (no indirection on that path). Every vCPU of the VM and the boot CPU
 * (vm_stop's flush) write to it at once: the output side takes the console's own lock, a
 * leaf lock (only the log's lock is taken inside it), so callers need no other.
 */
#ifndef VMM_VCONS_H
#define VMM_VCONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <keel/spinlock.h>

#define VCONS_LINE_MAX 160
#define VCONS_IN_MAX   256  /* input ring; a power of two */
#define VCONS_HIST_MAX 4080 /* raw mode: a background VM's output kept, the latest bytes */

/*
 * Input typed for the VM: a single-producer, single-consumer ring. The console's input
 * router (one CPU) pushes, the VM's vCPU pops into its serial device; neither takes a lock.
 */
struct vcons_input {
        uint8_t buf[VCONS_IN_MAX];
        uint32_t head; /* next byte to pop (consumer) */
        uint32_t tail; /* next free slot (producer) */
};

struct vcons {
        const char *prefix;   /* VM name, owned by the VM; NULL reads as "" */
        struct spinlock lock; /* guards line, len, line_open, tx_bytes */
        char line[VCONS_LINE_MAX];
        unsigned len;            /* bytes of `line` not yet on the console */
        bool line_open;          /* part of the current line is on the console already */
        uint8_t esc;             /* inside a terminal escape sequence (vcons.c's ESC_* state) */
        uint16_t esc_len;        /* its bytes so far (a sequence is dropped whole, up to a bound) */
        uint64_t tx_bytes;       /* bytes the guest sent, as counted by vcons_putc */
        struct vcons_hist *hist; /* raw mode: kept output (owned by the VM's slot), or NULL */
        struct vcons_input in;
};

/* Raw mode: a VM's output while another VM has the console; one page, outliving the VM. */
struct vcons_hist {
        uint32_t len; /* bytes in buf, the oldest at (end - len) mod VCONS_HIST_MAX */
        uint32_t end; /* where the next byte goes */
        bool lost;    /* older bytes were overwritten since the last replay */
        uint8_t buf[VCONS_HIST_MAX];
};

/* Empty line buffer, counters zero; lines are prefixed with `prefix` (kept, not copied). */
void vcons_init(struct vcons *c, const char *prefix);
/* One byte transmitted by the guest (any device, or the print hypercall). */
void vcons_putc(struct vcons *c, uint8_t ch);
/* `n` bytes at once (the print hypercall, virtio-console): one lock for all of them. */
void vcons_write(struct vcons *c, const uint8_t *buf, size_t n);
/*
 * Show the bytes of an unfinished line now (a shell prompt, typed characters being echoed),
 * prefixed as usual; the rest of the line follows on the same console line later. Called
 * when the guest goes idle, so an interactive guest's console does not wait for a newline.
 */
void vcons_show_partial(struct vcons *c);
/* Finish a partial line (at VM stop), so nothing the guest wrote is lost. */
void vcons_flush(struct vcons *c);

/*
 * Raw mode (config `console = raw`, docs/console.md): the VM with input focus writes to Keel's
 * console as it is (no prefix, escape sequences and control bytes intact), so full-screen
 * programs and line editing work; every other VM's output goes to its history, the latest
 * VCONS_HIST_MAX bytes, written out when it gets the focus. Boot CPU (the console's input
 * router) only, but for vcons_putc / vcons_write.
 *
 * vcons_raw_focus: raw mode on, the focus on the VM whose console is `c` (NULL: a VM not
 * built now, e.g. stopped) and whose history is `h` (NULL: none). The previous raw VM's
 * unfinished line ends, c's unfinished prefixed line ends, then h is written out and emptied.
 * vcons_raw_off: prefixed lines again for every VM (the monitor has the focus).
 * vcons_forget: c is about to be freed; it is the raw VM no longer.
 */
void vcons_raw_focus(struct vcons *c, struct vcons_hist *h);
void vcons_raw_off(void);
void vcons_forget(struct vcons *c);
/* A zeroed history page from Keel's allocator, or NULL without memory (never freed). */
struct vcons_hist *vcons_hist_alloc(void);

/* Queue typed bytes for the VM (producer); returns how many fit, the rest is dropped. */
size_t vcons_input_push(struct vcons *c, const uint8_t *buf, size_t n);
/* Take up to `max` queued bytes (consumer, the VM's vCPU); returns how many. */
size_t vcons_input_pop(struct vcons *c, uint8_t *buf, size_t max);
/* Bytes waiting for the VM (either side; a snapshot). */
size_t vcons_input_pending(const struct vcons *c);
/* Drop what is queued (VM reset). Only while neither side runs. */
void vcons_input_clear(struct vcons *c);

#endif
