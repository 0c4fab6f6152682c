/*
 * Snapshots of a paused VM and their restore (vmm/include/vmm/snapshot.h, docs/snapshot.md):
 * the format's generic part (header, RAM, each vCPU's generic part, the order of sections, the
 * checksum) and Keel's in-memory snapshot store. The arch's registers and device state come
 * from arch_snapshot_*.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <keel/arch.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/hash.h>
#include <keel/palloc.h>
#include <keel/time.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>

void snap_put(struct snap_buf *b, const void *p, size_t n)
{
        if (b->overflow || n > b->cap - b->len) {
                b->overflow = true;
                return;
        }
        memcpy(b->buf + b->len, p, n);
        b->len += n;
}

int snap_fail(struct snap_rd *r, const char *fmt, ...)
{
        va_list ap;

        if (r->why_len && !r->why[0]) { /* the first reason counts */
                va_start(ap, fmt);
                vsnprintf(r->why, r->why_len, fmt, ap);
                va_end(ap);
        }
        return -KEEL_EINVAL;
}

bool snap_get(struct snap_rd *r, void *p, size_t n)
{
        if (n > r->len - r->pos) {
                snap_fail(r, "a section ends %zu bytes early", n - (r->len - r->pos));
                return false;
        }
        memcpy(p, r->p + r->pos, n);
        r->pos += n;
        return true;
}

/* A section header whose length is patched by sec_end; returns where it is. */
static size_t sec_begin(struct snap_buf *b, uint32_t tag, uint32_t index)
{
        struct snap_section s = {.tag = tag, .index = index};
        size_t at = b->len;

        snap_put(b, &s, sizeof(s));
        return at;
}

static void sec_end(struct snap_buf *b, size_t at)
{
        uint64_t len = b->len - at - sizeof(struct snap_section);

        if (!b->overflow)
                memcpy(b->buf + at + offsetof(struct snap_section, len), &len, sizeof(len));
}

uint64_t snapshot_max_size(const struct vm *vm)
{
        uint64_t sec = sizeof(struct snap_section), arch = arch_snapshot_max(vm);

        return sizeof(struct snap_header) + sec + gmem_total(&vm->mem) +
               vm->vcpu_count * (sec + 1 + arch) + sec + arch + vm_devices_snap_max(vm) + sec +
               sizeof(uint64_t);
}

int snapshot_save(struct vm *vm, struct snap_buf *b, char *why, size_t why_len)
{
        const struct gmem_region *ram = &vm->mem.regions[0];
        struct snap_header h = {.version = SNAP_VERSION, .arch = arch_elf_machine()};
        uint64_t sum;
        size_t at;
        int err;

        why[0] = '\0';
        err = arch_snapshot_check(vm, why, why_len);
        if (err)
                return err;
        if (vm->mem.count != 1) {
                snprintf(why, why_len, "its RAM is %u regions; snapshots hold one", vm->mem.count);
                return -KEEL_ENOTSUP;
        }
        memcpy(h.magic, SNAP_MAGIC, sizeof(h.magic));
        h.ram_base = gpa_raw(ram->base);
        h.ram_size = ram->size;
        h.vcpus = vm->vcpu_count;
        h.devices = arch_snapshot_devices(vm) | vm_devices_snap_set(vm);
        snprintf(h.name, sizeof(h.name), "%s", vm->name);
        h.counter = arch_tsc(); /* the vCPUs are paused: their counters' offsets are fixed */
        b->len = 0;
        b->overflow = false;
        snap_put(b, &h, sizeof(h));

        at = sec_begin(b, SNAP_TAG_RAM, 0);
        if (!b->overflow && ram->size <= b->cap - b->len) {
                CHECK(gmem_read(&vm->mem, ram->base, b->buf + b->len, ram->size) == 0);
                b->len += ram->size;
        } else {
                b->overflow = true;
        }
        sec_end(b, at);
        for (unsigned c = 0; c < vm->vcpu_count; c++) {
                uint8_t started = vm->vcpus[c].started;

                at = sec_begin(b, SNAP_TAG_VCPU, c);
                snap_put(b, &started, 1);
                arch_snapshot_vcpu_save(&vm->vcpus[c], b);
                sec_end(b, at);
        }
        at = sec_begin(b, SNAP_TAG_DEVICES, 0);
        arch_snapshot_vm_save(vm, b);
        vm_devices_save(vm, b);
        sec_end(b, at);
        sec_end(b, sec_begin(b, SNAP_TAG_END, 0));
        if (b->overflow) {
                snprintf(why, why_len, "it needs more than the %zu bytes set aside", b->cap);
                return -KEEL_ENOSPC;
        }
        h.size = b->len + sizeof(sum);
        memcpy(b->buf + offsetof(struct snap_header, size), &h.size, sizeof(h.size));
        sum = snap_checksum(b->buf, b->len + sizeof(sum));
        snap_put(b, &sum, sizeof(sum));
        return b->overflow ? -KEEL_ENOSPC : 0;
}

static const char *tag_name(uint32_t tag)
{
        switch (tag) {
        case SNAP_TAG_RAM:
                return "RAM";
        case SNAP_TAG_VCPU:
                return "vCPU";
        case SNAP_TAG_DEVICES:
                return "devices";
        case SNAP_TAG_END:
                return "end";
        default:
                return "unknown";
        }
}

/* The next section, which must be `tag` `index`: its payload as a reader of its own. */
static int section(struct snap_rd *r, uint32_t tag, uint32_t index, struct snap_rd *sub)
{
        struct snap_section s;

        if (!snap_get(r, &s, sizeof(s)))
                return -KEEL_EINVAL;
        if (s.tag != tag || s.index != index)
                return snap_fail(r, "expected section %s %u at byte %zu, found %s (tag %#x) %u",
                                 tag_name(tag), index, r->pos - sizeof(s), tag_name(s.tag), s.tag,
                                 s.index);
        if (s.len > r->len - r->pos)
                return snap_fail(r, "section %s %u of %llu bytes runs past the end", tag_name(tag),
                                 index, (unsigned long long)s.len);
        *sub = (struct snap_rd){.p = r->p + r->pos,
                                .len = s.len,
                                .apply = r->apply,
                                .shift = r->shift,
                                .why = r->why,
                                .why_len = r->why_len};
        r->pos += s.len;
        return 0;
}

/* A section's reader once its loader is done: it must have read all of it. */
static int section_done(struct snap_rd *sub, int err, uint32_t tag, uint32_t index)
{
        if (!err && sub->pos != sub->len)
                err = snap_fail(sub, "section %s %u has %zu bytes more than this Keel reads",
                                tag_name(tag), index, sub->len - sub->pos);
        return err;
}

/* One pass over the sections after the header (the checksum excluded). */
static int load_pass(struct vm *vm, struct snap_rd *r)
{
        const struct gmem_region *ram = &vm->mem.regions[0];
        struct snap_rd s;
        int err;

        err = section(r, SNAP_TAG_RAM, 0, &s);
        if (err)
                return err;
        if (s.len != ram->size)
                return snap_fail(r, "its RAM section is %zu bytes, the VM has %llu", s.len,
                                 (unsigned long long)ram->size);
        if (r->apply)
                CHECK(gmem_write(&vm->mem, ram->base, s.p, s.len) == 0);
        for (unsigned c = 0; c < vm->vcpu_count; c++) {
                uint8_t started;

                err = section(r, SNAP_TAG_VCPU, c, &s);
                if (err)
                        return err;
                if (!snap_get(&s, &started, 1))
                        return -KEEL_EINVAL;
                if (started > 1 || (c == 0 && !started))
                        return snap_fail(
                            r, "vCPU %u: started flag %u (vCPU 0 must be 1, others 0 or 1)", c,
                            started);
                if (s.apply)
                        vm->vcpus[c].started = started;
                err =
                    section_done(&s, arch_snapshot_vcpu_load(&vm->vcpus[c], &s), SNAP_TAG_VCPU, c);
                if (err)
                        return err;
        }
        err = section(r, SNAP_TAG_DEVICES, 0, &s);
        if (!err) {
                err = arch_snapshot_vm_load(vm, &s);
                if (!err)
                        err = vm_devices_load(vm, &s);
                err = section_done(&s, err, SNAP_TAG_DEVICES, 0);
        }
        if (!err)
                err = section(r, SNAP_TAG_END, 0, &s);
        if (!err && (s.len || r->pos != r->len))
                err = snap_fail(r, "%zu bytes after its end section", r->len - r->pos + s.len);
        return err;
}

static const char *arch_name(uint32_t machine)
{
        return machine == 62 ? "x86_64" : machine == 183 ? "arm64" : "an unknown arch";
}

uint64_t snap_checksum(const uint8_t *data, size_t len)
{
        return hash64_final(hash64_update(HASH64_INIT, data, len - 8), len - 8);
}

int snap_header_check(const struct snap_header *h, char *why, size_t n)
{
        struct snap_rd r = {.why = why, .why_len = n};

        why[0] = '\0';
        if (memcmp(h->magic, SNAP_MAGIC, sizeof(h->magic)) != 0)
                return snap_fail(&r, "not a Keel snapshot (no %s magic)", SNAP_MAGIC);
        if (h->version != SNAP_VERSION)
                return snap_fail(&r, "format version %u; this Keel reads version %u only",
                                 h->version, SNAP_VERSION);
        if (h->arch != arch_elf_machine())
                return snap_fail(&r, "taken on %s (machine %u); this Keel runs %s VMs",
                                 arch_name(h->arch), h->arch, arch_name(arch_elf_machine()));
        return 0;
}

int snapshot_load(struct vm *vm, const uint8_t *data, size_t len, char *why, size_t why_len)
{
        struct snap_rd r = {.why = why, .why_len = why_len};
        const struct gmem_region *ram = &vm->mem.regions[0];
        struct snap_header h;
        uint64_t stored, sum;
        uint32_t devs = arch_snapshot_devices(vm) | vm_devices_snap_set(vm);
        int err;

        why[0] = '\0';
        if (len < sizeof(h) + sizeof(sum))
                return snap_fail(&r, "%zu bytes are too few for a snapshot", len);
        memcpy(&h, data, sizeof(h));
        err = snap_header_check(&h, why, why_len);
        if (err)
                return err;
        if (h.size != len)
                return snap_fail(&r, "its header says %llu bytes, there are %zu",
                                 (unsigned long long)h.size, len);
        len -= sizeof(sum);
        memcpy(&stored, data + len, sizeof(stored));
        sum = snap_checksum(data, len + sizeof(sum));
        if (sum != stored)
                return snap_fail(&r,
                                 "checksum %016llx, computed %016llx: the snapshot is corrupted",
                                 (unsigned long long)stored, (unsigned long long)sum);
        if (vm->mem.count != 1 || h.ram_base != gpa_raw(ram->base) || h.ram_size != ram->size)
                return snap_fail(&r, "its RAM is %llu MiB at %#llx, vm %s has %llu MiB at %#llx",
                                 (unsigned long long)(h.ram_size >> 20),
                                 (unsigned long long)h.ram_base, vm->name,
                                 (unsigned long long)(ram->size >> 20),
                                 (unsigned long long)gpa_raw(ram->base));
        if (h.vcpus != vm->vcpu_count || h.devices != devs)
                return snap_fail(&r, "it has %u vCPUs and devices %#x, vm %s has %u and %#x",
                                 h.vcpus, h.devices, vm->name, vm->vcpu_count, devs);
        r.p = data + sizeof(h);
        r.len = len - sizeof(h);
        r.shift = arch_tsc() - h.counter; /* modulo 2^64: the counter may have started anew */
        err = load_pass(vm, &r);
        if (err)
                return err;
        r.pos = 0;
        r.apply = true;
        vcons_flush(&vm->console);     /* a line the VM left unfinished is not the snapshot's */
        CHECK(load_pass(vm, &r) == 0); /* everything was checked by the first pass */
        return 0;
}

static void slot_free(struct snapshot_store *s)
{
        if (s->pages)
                CHECK(palloc_free(&keel_palloc, s->pa, s->pages) == 0);
        s->pages = s->len = 0;
}

int snapshot_take(struct snapshot_store *s, struct vm *vm, char *msg, size_t len)
{
        struct snapshot_store n = {0};
        uint64_t max = snapshot_max_size(vm);
        char why[160];
        struct snap_buf b;
        int err;

        n.pages = (max + PAGE_SIZE - 1) / PAGE_SIZE;
        err = arch_snapshot_check(vm, why, sizeof(why));
        if (!err) {
                err = palloc_alloc(&keel_palloc, n.pages, PAGE_SIZE, &n.pa);
                if (err == -KEEL_ENOMEM && s->pages) { /* the old one's room, then */
                        slot_free(s);
                        err = palloc_alloc(&keel_palloc, n.pages, PAGE_SIZE, &n.pa);
                }
                if (err)
                        snprintf(why, sizeof(why), "no %llu KiB run of free memory for it",
                                 (unsigned long long)(n.pages * PAGE_SIZE >> 10));
        }
        if (!err) {
                b = (struct snap_buf){.buf = hva_ptr(arch_hpa_to_hva(n.pa)), .cap = max};
                err = snapshot_save(vm, &b, why, sizeof(why));
                if (err)
                        CHECK(palloc_free(&keel_palloc, n.pa, n.pages) == 0);
        }
        if (err) {
                snprintf(msg, len, "cannot snapshot vm %s: %s", vm->name, why);
                return err;
        }
        slot_free(s);
        n.len = b.len;
        *s = n;
        snprintf(msg, len,
                 "vm %s: snapshot in memory, %llu KiB (RAM %llu KiB); restore %s brings it back",
                 vm->name, (unsigned long long)(n.len >> 10),
                 (unsigned long long)(gmem_total(&vm->mem) >> 10), vm->name);
        return 0;
}

int snapshot_restore(const struct snapshot_store *s, struct vm *vm, char *msg, size_t len)
{
        char why[200];
        int err;

        if (!s->pages) {
                snprintf(msg, len, "vm %s has no snapshot (snapshot %s takes one)", vm->name,
                         vm->name);
                return -KEEL_ENOENT;
        }
        err = snapshot_load(vm, hva_ptr(arch_hpa_to_hva(s->pa)), s->len, why, sizeof(why));
        if (err)
                snprintf(msg, len, "cannot restore vm %s: snapshot refused: %s", vm->name, why);
        else
                snprintf(msg, len, "vm %s: restored from its snapshot; it is paused (resume %s)",
                         vm->name, vm->name);
        return err;
}
