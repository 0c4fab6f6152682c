/*
 * A gdb session on one VM (vmm/include/vmm/gdb.h, docs/debugging.md), served by the boot
 * CPU: the packet layer (vmm/gdbstub.c) on top of the VM table's pause machinery and the
 * arch's register, translation and trap hooks. Guest memory is touched only through gmem.
 *
 * Stopping: a breakpoint or a finished step (on the vCPU's CPU, vm_debug_break /
 * vm_debug_stepped) or Ctrl-C (here) pauses the VM and records why; gdb_poll kicks its vCPUs
 * off their CPUs and reports the stop once all have left (their registers are then still).
 * Breakpoints are written and removed only while the VM is stopped like that.
 */
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/time.h>
#include <vmm/gdb.h>
#include <vmm/gdbstub.h>
#include <vmm/vmm.h>

#define GDB_SWBP_MAX 32
#define SIGINT_      2
#define SIGTRAP_     5

struct swbp {
        uint64_t gva;
        gpa_t gpa;
        uint8_t len;
        uint8_t saved[8];
};

/* The session (boot CPU only, but for the fields the vCPUs' CPUs read, see below). */
struct session {
        struct gdb_stub stub;
        struct vm *vm;
        bool on_port;     /* the debug port; else Keel's console */
        bool stopped;     /* the stub was told the VM stopped */
        bool kicked;      /* its vCPUs were kicked since it was paused */
        bool interrupted; /* by Ctrl-C */
        bool acked;       /* ended on the console: gdb's '+' for the last reply has come */
        uint64_t end_by;  /* ended on the console: arch_tsc() by which it ends anyway */
        unsigned nbps;
        struct swbp bps[GDB_SWBP_MAX]; /* read by vCPUs' CPUs only while they run */
};

static const struct gdb_host *host;
static struct session *sess; /* palloc'd once, at the first attach */
static bool open_;           /* a session is on */
static int port_vm = 0;      /* the VM the debug port serves from its next connection */

static struct vcpu *thread(unsigned t)
{
        CHECK(t < sess->vm->vcpu_count);
        return &sess->vm->vcpus[t];
}

/* The vCPUs the guest has started, as a prefix (vCPU 0 always: its state is set up). */
static unsigned g_threads(void *ctx)
{
        struct vm *vm = sess->vm;
        unsigned n = 1;

        (void)ctx;
        while (n < vm->vcpu_count && vm->vcpus[n].started)
                n++;
        return n;
}

static size_t g_reg_read(void *ctx, unsigned t, unsigned reg, uint8_t *buf)
{
        (void)ctx;
        return arch_gdb_reg_read(thread(t), reg, buf);
}

static int g_reg_write(void *ctx, unsigned t, unsigned reg, const uint8_t *buf, size_t size)
{
        (void)ctx;
        return arch_gdb_reg_write(thread(t), reg, buf, size);
}

/* Guest memory a page at a time (a guest-virtual range may map anywhere page by page). */
static int mem_access(unsigned t, uint64_t addr, bool phys, uint8_t *buf, size_t n, bool write)
{
        const struct gmem *m = &sess->vm->mem;

        while (n) {
                size_t chunk = PAGE_SIZE - (addr & (PAGE_SIZE - 1));
                gpa_t where = gpa(addr);
                int err;

                if (chunk > n)
                        chunk = n;
                if (!phys) {
                        err = arch_gdb_translate(thread(t), addr, &where);
                        if (err)
                                return err;
                }
                err = write ? gmem_write(m, where, buf, chunk) : gmem_read(m, where, buf, chunk);
                if (err)
                        return err;
                addr += chunk;
                buf += chunk;
                n -= chunk;
        }
        return 0;
}

static int g_mem_read(void *ctx, unsigned t, uint64_t addr, bool phys, uint8_t *buf, size_t n)
{
        (void)ctx;
        return mem_access(t, addr, phys, buf, n, false);
}

static int g_mem_write(void *ctx, unsigned t, uint64_t addr, bool phys, const uint8_t *buf,
                       size_t n)
{
        (void)ctx;
        return mem_access(t, addr, phys, (uint8_t *)buf, n, true);
}

static int swbp_insert(unsigned t, uint64_t gva)
{
        struct swbp *b;
        uint8_t insn[8];
        size_t len = arch_gdb_break_insn(insn);
        gpa_t gpa;
        int err;

        CHECK(len && len <= sizeof(insn));
        for (unsigned i = 0; i < sess->nbps; i++)
                if (sess->bps[i].gva == gva)
                        return 0;
        if (sess->nbps == GDB_SWBP_MAX)
                return -KEEL_ENOSPC;
        if ((gva & (PAGE_SIZE - 1)) > PAGE_SIZE - len)
                return -KEEL_EINVAL; /* an instruction across a page: not supported */
        err = arch_gdb_translate(thread(t), gva, &gpa);
        if (err)
                return err;
        b = &sess->bps[sess->nbps];
        err = gmem_read(&sess->vm->mem, gpa, b->saved, len);
        if (!err)
                err = gmem_write(&sess->vm->mem, gpa, insn, len);
        if (err)
                return err;
        b->gva = gva;
        b->gpa = gpa;
        b->len = (uint8_t)len;
        sess->nbps++;
        return 0;
}

static void swbp_remove_at(unsigned i)
{
        struct swbp *b = &sess->bps[i];

        /* Inside RAM when inserted, and RAM does not change under a session. */
        CHECK(gmem_write(&sess->vm->mem, b->gpa, b->saved, b->len) == 0);
        *b = sess->bps[--sess->nbps];
}

static bool hw_same(const struct vm_debug_hw *h, enum gdb_bp type, uint64_t addr, uint64_t len)
{
        return h->type == (uint8_t)type && h->addr == addr && h->len == len;
}

/*
 * gdb's hardware breakpoints and watchpoints: the VM's list (vm->debug_hw), which the arch
 * loads into every vCPU at the start of its next run; the arch says whether it can take the
 * list as it would become (its kinds, slots, lengths and alignment).
 */
static int hwbp_change(unsigned t, enum gdb_bp type, bool insert, uint64_t addr, uint64_t len)
{
        struct vm *vm = sess->vm;
        struct vm_debug_hw next[VM_DEBUG_HW_MAX];
        unsigned n = vm->debug_hw_n;
        int err;

        for (unsigned i = 0; i < n; i++) {
                if (!hw_same(&vm->debug_hw[i], type, addr, len))
                        continue;
                if (!insert)
                        vm->debug_hw[i] = vm->debug_hw[--vm->debug_hw_n];
                return 0;
        }
        if (!insert)
                return 0;
        if (n == VM_DEBUG_HW_MAX)
                return -KEEL_ENOSPC;
        memcpy(next, vm->debug_hw, n * sizeof(next[0]));
        next[n] = (struct vm_debug_hw){.addr = addr, .len = len, .type = (uint8_t)type};
        err = arch_gdb_hw_check(thread(t), next, n + 1);
        if (err)
                return err;
        vm->debug_hw[n] = next[n];
        vm->debug_hw_n = n + 1;
        return 0;
}

static int g_bp(void *ctx, unsigned t, enum gdb_bp type, bool insert, uint64_t addr, uint64_t kind)
{
        (void)ctx;
        if (type != GDB_BP_SW)
                return hwbp_change(t, type, insert, addr, kind);
        if (insert)
                return swbp_insert(t, addr);
        for (unsigned i = 0; i < sess->nbps; i++)
                if (sess->bps[i].gva == addr) {
                        swbp_remove_at(i);
                        break;
                }
        return 0;
}

static void g_resume(void *ctx, int step)
{
        struct vm *vm = sess->vm;

        (void)ctx;
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                vm->vcpus[c].debug_step = (int)c == step;
        vm->debug_stop = 0;
        vm->debug_why = GDB_STOP_SIGNAL;
        sess->stopped = false;
        sess->kicked = false;
        sess->interrupted = false;
        if (vm->state == VM_PAUSED)
                CHECK(vm_set_state(vm, VM_RUNNING) == 0); /* vm_manage re-queues its vCPUs */
}

/* Pause the VM for gdb (a no-op if it is paused or stopped already). */
static void stop_vm(struct vm *vm)
{
        if (vm_set_state(vm, VM_PAUSED) == 0)
                host->kick(vm);
}

static void g_interrupt(void *ctx)
{
        (void)ctx;
        sess->interrupted = true;
        stop_vm(sess->vm);
}

static void end_session(void)
{
        struct vm *vm = sess->vm;

        /* A VM that stopped may have been released already: its breakpoints went with it. */
        if (vm->state == VM_STOPPED || vm->state == VM_CREATED)
                sess->nbps = 0;
        while (sess->nbps)
                swbp_remove_at(sess->nbps - 1);
        vm->debug_hw_n = 0; /* each vCPU's next run gives the guest its own debug registers */
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                vm->vcpus[c].debug_step = false;
        vm->debug = false;
        if (vm->state == VM_PAUSED)
                CHECK(vm_set_state(vm, VM_RUNNING) == 0);
        open_ = false;
        LOG_INFO("gdb: detached from vm %s; it runs on", vm->name);
        if (!sess->on_port)
                host->console_done();
}

static void g_detach(void *ctx)
{
        (void)ctx;
        /* The VM is stopped: its breakpoints go now; end_session runs from gdb_poll. */
}

static const char *g_target_xml(void *ctx, size_t *len)
{
        (void)ctx;
        return arch_gdb_target_xml(len);
}

static void g_write(void *ctx, const char *s, size_t n)
{
        (void)ctx;
        if (sess->on_port)
                arch_gdb_port_write(s, n);
        else
                host->console_write(s, n);
}

static const struct gdb_ops ops = {
    .threads = g_threads,
    .reg_read = g_reg_read,
    .reg_write = g_reg_write,
    .mem_read = g_mem_read,
    .mem_write = g_mem_write,
    .bp = g_bp,
    .resume = g_resume,
    .interrupt = g_interrupt,
    .detach = g_detach,
    .target_xml = g_target_xml,
    .write = g_write,
};

/* Called on a vCPU's CPU (its VM has a session, so sess is set and its table is still). */
bool vm_debug_break(struct vcpu *v, uint64_t pc)
{
        struct vm *vm = v->vm;
        unsigned expected = 0;

        if (!vm->debug)
                return false;
        for (unsigned i = 0; i < sess->nbps; i++) {
                if (sess->bps[i].gva != pc)
                        continue;
                if (__atomic_compare_exchange_n(&vm->debug_stop, &expected, v->id + 1, false,
                                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                        vm->debug_why = GDB_STOP_SWBREAK;
                (void)vm_set_state(vm, VM_PAUSED);
                return true;
        }
        return false;
}

void vm_debug_hw_hit(struct vcpu *v, unsigned i, uint64_t addr)
{
        struct vm *vm = v->vm;
        unsigned expected = 0;

        CHECK(i < vm->debug_hw_n);
        if (__atomic_compare_exchange_n(&vm->debug_stop, &expected, v->id + 1, false,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                /* GDB_BP_HW .. GDB_WP_ACCESS map onto GDB_STOP_HWBREAK .. GDB_STOP_AWATCH. */
                vm->debug_why = (uint8_t)(GDB_STOP_HWBREAK + (vm->debug_hw[i].type - GDB_BP_HW));
                vm->debug_addr = addr;
        }
        (void)vm_set_state(vm, VM_PAUSED);
}

void vm_debug_stepped(struct vcpu *v)
{
        unsigned expected = 0;

        v->debug_step = false;
        (void)__atomic_compare_exchange_n(&v->vm->debug_stop, &expected, v->id + 1, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        (void)vm_set_state(v->vm, VM_PAUSED);
}

void gdb_setup(const struct gdb_host *h)
{
        host = h;
}

static int open_session(unsigned i, bool on_port)
{
        struct vm *vm = host->vm(i);
        hpa_t pa;

        if (open_)
                return -KEEL_EBUSY;
        if (!vm || (vm->state != VM_RUNNING && vm->state != VM_PAUSED))
                return -KEEL_EPERM;
        if (!arch_gdb_supported(&vm->vcpus[0]))
                return -KEEL_ENOTSUP;
        if (!sess) {
                size_t pages = align_up(sizeof(*sess), PAGE_SIZE) / PAGE_SIZE;

                if (palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &pa))
                        return -KEEL_ENOMEM;
                sess = hva_ptr(arch_hpa_to_hva(pa));
        }
        memset(sess, 0, sizeof(*sess));
        sess->vm = vm;
        sess->on_port = on_port;
        gdb_init(&sess->stub, &ops, NULL);
        vm->debug_stop = 0;
        vm->debug_why = GDB_STOP_SIGNAL;
        vm->debug_hw_n = 0;
        vm->debug = true;
        open_ = true;
        stop_vm(vm);
        LOG_INFO("gdb: attached to vm %s (%s); it is stopped while gdb has it", vm->name,
                 on_port ? "debug port" : "console");
        return 0;
}

int gdb_attach(unsigned i, bool port)
{
        struct vm *vm = host->vm(i);

        if (!port)
                return open_session(i, false);
        if (!arch_gdb_port_present())
                return -KEEL_ENODEV;
        if (!vm)
                return -KEEL_EINVAL;
        port_vm = (int)i;
        return 0;
}

bool gdb_holds(const struct vm *vm)
{
        return open_ && sess->vm == vm;
}

void gdb_console_input(const uint8_t *buf, size_t n)
{
        if (!open_ || sess->on_port)
                return;
        if (!gdb_ended(&sess->stub)) {
                gdb_input(&sess->stub, buf, n);
                return;
        }
        /* Ended: gdb still acknowledges the last reply (OK, W); that '+' is gdb's, not the VM's. */
        for (size_t i = 0; i < n; i++)
                sess->acked |= buf[i] == '+';
}

/*
 * On the console a session ends once gdb has acknowledged its last reply, or after half a
 * second (gdb sends no ack after `kill`): else that '+' reaches the VM the console goes back to.
 */
#define GDB_ACK_WAIT_MS 500

static bool console_settled(void)
{
        uint64_t now = arch_tsc(), khz = arch_tsc_khz();

        if (sess->on_port || sess->acked || !khz)
                return true;
        if (!sess->end_by)
                sess->end_by = now + khz * GDB_ACK_WAIT_MS;
        return now >= sess->end_by;
}

/* All of the VM's vCPUs off their CPUs: its registers are still. */
static bool vcpus_out(struct vm *vm)
{
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                if (__atomic_load_n(&vm->vcpus[c].sched.state, __ATOMIC_ACQUIRE) == SCHED_RUNNING)
                        return false;
        return true;
}

void gdb_poll(void)
{
        uint8_t buf[64];
        size_t n = 0;
        int ch;

        if (!open_) {
                /* The port's first byte opens a session on its VM. */
                if (!arch_gdb_port_present())
                        return;
                /* Bytes before a packet or Ctrl-C (the ack of a detach's reply) are dropped. */
                while (n < sizeof(buf) && (ch = arch_gdb_port_getc()) >= 0)
                        if (n || ch == '$' || ch == 0x03)
                                buf[n++] = (uint8_t)ch;
                if (!n || open_session((unsigned)port_vm, true))
                        return;
                gdb_input(&sess->stub, buf, n);
                return;
        }
        if (sess->on_port) {
                while (n < sizeof(buf) && (ch = arch_gdb_port_getc()) >= 0)
                        buf[n++] = (uint8_t)ch;
                if (n)
                        gdb_input(&sess->stub, buf, n);
        }
        /* Ended (or reset from the monitor): gdb hears the exit status, 0xff if not an exit. */
        if (!gdb_ended(&sess->stub) &&
            (sess->vm->state == VM_STOPPED || sess->vm->state == VM_CREATED)) {
                gdb_exited(
                    &sess->stub,
                    (uint8_t)(sess->vm->stop_reason == VM_STOP_EXIT ? sess->vm->exit_code : 0xff));
        }
        if (!gdb_ended(&sess->stub) && !sess->stopped && sess->vm->state == VM_PAUSED) {
                unsigned who = __atomic_load_n(&sess->vm->debug_stop, __ATOMIC_ACQUIRE);

                if (!sess->kicked)
                        host->kick(sess->vm);
                sess->kicked = true;
                if (vcpus_out(sess->vm)) {
                        sess->stopped = true;
                        gdb_stopped(&sess->stub, who ? who - 1 : 0,
                                    sess->interrupted ? SIGINT_ : SIGTRAP_,
                                    who ? (enum gdb_stop)sess->vm->debug_why : GDB_STOP_SIGNAL,
                                    sess->vm->debug_addr);
                }
        }
        if (gdb_ended(&sess->stub) && (sess->vm->state != VM_PAUSED || vcpus_out(sess->vm)) &&
            console_settled())
                end_session();
}
