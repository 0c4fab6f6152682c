/*
 * The VM table: build every VM of the config and run them all at once under the vCPU
 * scheduler (keel/sched.h, docs/scheduler.md) on every CPU. A VM that fails to build or
 * misbehaves is stopped and reported; the others run regardless. When all have ended, a
 * summary compares each VM's outcome with what the config expected.
 *
 * The boot CPU (index 0) also manages: it builds and releases VMs (vmm/build.c; the page
 * allocator is its alone), reads the serial console and serves the monitor; the other CPUs
 * only run vCPUs.
 */
#include <stdio.h>
#include <string.h>

#include <drivers/blkdev.h>
#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/grace.h>
#include <keel/irq.h>
#include <keel/log.h>
#include <keel/palloc.h>
#include <keel/sched.h>
#include <keel/smp.h>
#include <keel/time.h>
#include <vmm/build.h>
#include <vmm/config.h>
#include <vmm/gdb.h>
#include <vmm/monitor.h>
#include <vmm/snapshot.h>
#include <vmm/vm.h>
#include <vmm/vmm.h>
#include <vmm/vmtable.h>
#ifdef KEEL_DEBUG_HYPERCALLS
#include <keel/debug_bench.h>
#endif

/* What the boot CPU does with a VM once it has been released (reaped). */
enum vm_next {
        VM_NEXT_NONE,
        VM_NEXT_CREATE, /* the monitor's reset: build it again, do not run it */
        VM_NEXT_RUN,    /* the monitor's start of a stopped VM: build it again and run it */
};

/*
 * Per VM of the config, for the boot CPU's management (only it reads and writes these). The
 * VM itself (struct vm and its vCPUs, one allocation) exists only while it is built: vm_create
 * allocates it, the reap releases it and retires it, and it is freed once no CPU can still
 * hold a pointer to it (all its vCPUs detached, then a grace period: keel/grace.h; and no gdb
 * session on it).
 */
struct vm_slot {
        struct vm *vm; /* while built (vm_release undoes the memory and devices) */
        size_t vm_pages;
        struct vm *old; /* reaped, to be freed after the grace period of ticket old_at */
        size_t old_pages;
        uint64_t old_at;
        enum vm_stop_reason stop_reason; /* how it ended, once released */
        int64_t exit_code;
        enum vm_next next; /* once released */
        uint64_t runtime;  /* ticks its vCPUs ran in earlier lives (before resets) */
        hpa_t trace_pa;    /* its vCPUs' exit trace rings (monitor: trace VM on), or 0 pages */
        size_t trace_pages;
        struct vcons_hist *hist;    /* console = raw: its output while another VM has the console */
        struct snapshot_store snap; /* monitor snapshot VM: kept across its resets */
        uint64_t keel_pages; /* Keel's own pages for the built VM beyond its RAM (vm_create) */
};

static void outcome(const struct vm_slot *vm, char *buf, size_t len)
{
        if (vm->stop_reason == VM_STOP_EXIT)
                snprintf(buf, len, "exit %lld", (long long)vm->exit_code);
        else
                snprintf(buf, len, "%s", vm_stop_reason_name(vm->stop_reason));
}

static bool as_expected(const struct vm_slot *vm, const struct vm_config *vc, char *buf, size_t len)
{
        if (vc->has_expect_exit) {
                snprintf(buf, len, "exit %lld", (long long)vc->expect_exit);
                return vm->stop_reason == VM_STOP_EXIT && vm->exit_code == vc->expect_exit;
        }
        if (vc->has_expect_stop) {
                snprintf(buf, len, "%s", vm_stop_reason_name(vc->expect_stop));
                return vm->stop_reason == vc->expect_stop;
        }
        /* No expectation: a clean exit with code 0 is the success. */
        snprintf(buf, len, "exit 0");
        return vm->stop_reason == VM_STOP_EXIT && vm->exit_code == 0;
}

/* The scheduler's time slice. */
#define SLICE_MS 10

static const struct boot_info *boot;
static struct sched sched;
static unsigned ncpus = 1;
static volatile bool cpus_go; /* set once the scheduler is ready: the APs may run vCPUs */

#define TRACE_RING_PAGES \
        (align_up(sizeof(struct exit_trace_entry) * EXIT_TRACE_LEN, PAGE_SIZE) / PAGE_SIZE)

static struct vm_slot *slots; /* config->vm_count of them */
/*
 * Set when the boot CPU's upkeep of the VMs (all_ended: reaping, freeing, re-queueing) may
 * have something to do: a vCPU left the run queues (any CPU), the monitor acted, a VM was
 * built; all_ended keeps it set while a VM waits (stopped but not yet reaped, a retired one
 * in its grace period, a gdb session). So a scheduling round with nothing to do costs no scan
 * of the VM table (docs/benchmarks.md: costs by VM count).
 */
static bool upkeep_due = true;

static void upkeep_wanted(void)
{
        __atomic_store_n(&upkeep_due, true, __ATOMIC_RELEASE);
}
static struct grace grace;
static struct monitor monitor;

/* The struct vm's part of its allocation; its vCPUs follow. */
#define VCPUS_OFF align_up(sizeof(struct vm), _Alignof(struct vcpu))

/* A table of n entries of `size` from the page allocator, zeroed; NULL without memory. */
static void *table_alloc(size_t n, size_t size, size_t *pages)
{
        hpa_t pa;

        *pages = align_up(n * size, PAGE_SIZE) / PAGE_SIZE;
        if (palloc_alloc(&keel_palloc, *pages, PAGE_SIZE, &pa))
                return NULL;
        return hva_ptr(arch_hpa_to_hva(pa));
}

static uint64_t tsc_ms(uint64_t ticks)
{
        uint64_t khz = arch_tsc_khz();

        return khz ? ticks / khz : 0;
}

/* Scheduler's question for a blocked vCPU: may it run? A VM that left the running state
 * may too, so that its CPU gives it back (SCHED_DONE). */
static bool vcpu_ready(struct sched_entity *e)
{
        struct vcpu *v = e->owner;

        return v->vm->state != VM_RUNNING || arch_vcpu_ready(v);
}

/* Build VM `i` from its config; it stays created (or stopped, if it cannot be built). */
static void vm_create(unsigned i)
{
        const struct vm_config *vc = &boot->config->vms[i];
        struct vm_slot *sl = &slots[i];
        uint64_t free0 = palloc_free_pages(&keel_palloc), ram = 0;
        struct vm *vm;

        CHECK(!sl->vm);
        upkeep_wanted(); /* a VM that cannot be built is reaped at once */
        /* Fresh memory: nothing of an earlier life (reset). */
        vm = table_alloc(1, VCPUS_OFF + vc->vcpus * sizeof(struct vcpu), &sl->vm_pages);
        if (!vm) {
                sl->stop_reason = VM_STOP_LOAD_FAILED;
                LOG_INFO("vm %s stopped: %s: no memory for its control blocks (%llu KiB): "
                         "give the machine more memory or the config fewer VMs",
                         vc->name, vm_stop_reason_name(VM_STOP_LOAD_FAILED),
                         (unsigned long long)(sl->vm_pages * PAGE_SIZE / 1024));
                return;
        }
        /* The parser keeps vcpus in 1..VM_MAX_VCPUS. */
        vm_init(vm, i, vc->name, (struct vcpu *)((uint8_t *)vm + VCPUS_OFF), vc->vcpus);
        LOG_INFO("vm %s: starting", vm->name);
        sl->vm = vm;
        vm->console.hist = sl->hist;
        if (boot->config->console_raw && monitor_focus(&monitor) == (int)i)
                vcons_raw_focus(&vm->console, sl->hist); /* built again while it has the focus */
        if (vc->cpu != SCHED_NO_PIN && (unsigned)vc->cpu >= ncpus)
                vm_stop(vm, VM_STOP_LOAD_FAILED,
                        "its config pins it to CPU %d, but this machine has %u CPU%s online "
                        "(cpu = 0 to %u, or no cpu = line)",
                        vc->cpu, ncpus, ncpus == 1 ? "" : "s", ncpus - 1);
        else if (vc->vcpus > VM_OVERCOMMIT_VCPUS && vc->cpu != SCHED_NO_PIN)
                vm_stop(vm, VM_STOP_LOAD_FAILED,
                        "its config gives it %u vCPUs pinned to CPU %d (more than %u vCPUs "
                        "need a CPU each: no cpu = line, or vcpus = %u at most)",
                        vc->vcpus, vc->cpu, VM_OVERCOMMIT_VCPUS, VM_OVERCOMMIT_VCPUS);
        else if (vc->vcpus > VM_OVERCOMMIT_VCPUS && vc->vcpus > ncpus)
                vm_stop(vm, VM_STOP_LOAD_FAILED,
                        "its config gives it %u vCPUs, but this machine has %u CPU%s online "
                        "(more than %u vCPUs need a CPU each: vcpus = %u at most here)",
                        vc->vcpus, ncpus, ncpus == 1 ? "" : "s", VM_OVERCOMMIT_VCPUS,
                        ncpus > VM_OVERCOMMIT_VCPUS ? ncpus : VM_OVERCOMMIT_VCPUS);
        vm->unbacked_stop = vc->unbacked_stop;
        vm->pc_testdev = vc->pc_testdev;
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                vm->vcpus[c].sched = (struct sched_entity){
                    .weight = vc->weight, .pin = vc->cpu, .owner = &vm->vcpus[c]};
        if (vm->state != VM_STOPPED)
                vm_build(vm, vc, &boot->vm_files[i]); /* stops it on failure */
        /* Keel's memory for it beyond its RAM: control blocks, arch state, second-level tables,
         * devices. Only this CPU allocates pages for VMs, so the free count's drop is the VM's. */
        for (unsigned r = 0; r < vm->mem.count; r++)
                ram += vm->mem.regions[r].size / PAGE_SIZE;
        sl->keel_pages = free0 - palloc_free_pages(&keel_palloc) - ram;
#ifdef KEEL_DEBUG_HYPERCALLS
        static bool benched; /* once, on the first VM built (test builds only) */
        if (!benched && vm->state != VM_STOPPED) {
                benched = true;
                debug_bench(&vm->mem);
        }
#endif
}

/* Run a created VM: vCPU 0 joins the run queues, the others when the guest starts them. */
static int vm_run(unsigned i)
{
        struct vm *vm = slots[i].vm;
        int err = vm ? vm_set_state(vm, VM_RUNNING) : -KEEL_EPERM;

        if (err)
                return err;
        vm->vcpus[0].started = true;
        CHECK(sched_add(&sched, &vm->vcpus[0].sched, arch_tsc()) == 0);
        return 0;
}

void vm_vcpu_started(struct vcpu *vcpu)
{
        int err;

        vcpu->started = true;
        err = sched_add(&sched, &vcpu->sched, arch_tsc());
        CHECK(err == 0 || err == -KEEL_EBUSY);
}

/* Make every CPU that runs one of the VM's vCPUs leave it (it was paused or stopped). */
static void vm_kick(struct vm *vm)
{
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                if (vm->vcpus[c].sched.state == SCHED_RUNNING)
                        arch_cpu_kick(vm->vcpus[c].sched.cpu);
}

/* A stopped VM whose vCPUs all left the scheduler: report it and give its memory back. */
static void vm_reap(unsigned i)
{
        struct vm_slot *sl = &slots[i];
        struct vm *vm = sl->vm;
        char desc[200], probes[400]; /* 16 ports and 16 MSRs with their words: about 350 */

        for (unsigned c = 0; c < vm->vcpu_count; c++) {
                const struct vcpu *v = &vm->vcpus[c];
                char who[16] = ""; /* "vCPU N: " when the VM has several */

                if (vm->vcpu_count > 1)
                        snprintf(who, sizeof(who), "vCPU %u: ", c);
                slots[i].runtime += v->sched.runtime;
                arch_vcpu_exit_summary(v, desc, sizeof(desc));
                LOG_INFO("vm %s: %s%llu exits (%s), %llu ms of CPU in %llu runs", vm->name, who,
                         (unsigned long long)v->exits, desc,
                         (unsigned long long)tsc_ms(v->sched.runtime),
                         (unsigned long long)v->sched.switches);
        }
        if (arch_vm_probe_summary(vm, probes, sizeof(probes)))
                LOG_INFO("vm %s: %s", vm->name, probes);
        if (slots[i].trace_pages) /* no vCPU of it runs any more */
                CHECK(palloc_free(&keel_palloc, slots[i].trace_pa, slots[i].trace_pages) == 0);
        slots[i].trace_pages = 0;
        vm_release(vm);
        /* No run queue holds it any more; CPUs may still hold pointers from their last round. */
        sl->stop_reason = vm->stop_reason;
        sl->exit_code = vm->exit_code;
        sl->old = vm;
        sl->old_pages = sl->vm_pages;
        sl->old_at = grace_begin(&grace);
        sl->vm = NULL;
        if (slots[i].next != VM_NEXT_NONE) {
                enum vm_next next = slots[i].next;

                slots[i].next = VM_NEXT_NONE;
                vm_create(i);
                if (next == VM_NEXT_RUN && sl->vm && sl->vm->state == VM_CREATED)
                        CHECK(vm_run(i) == 0);
        }
}

/* Free a reaped VM's structures once nothing can touch them (struct vm_slot). */
static void vm_free_old(struct vm_slot *sl)
{
        struct vm *vm = sl->old;

        if (!vm || !grace_done(&grace, sl->old_at, arch_cpu_index()) || gdb_holds(vm))
                return;
        CHECK(vm->state == VM_STOPPED && !vm->mem.count && !vm->devices);
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                CHECK(__atomic_load_n(&vm->vcpus[c].sched.state, __ATOMIC_ACQUIRE) ==
                      SCHED_DETACHED);
        vcons_forget(&vm->console);
        CHECK(palloc_free(&keel_palloc, arch_hva_to_hpa(hva_from_ptr(vm)), sl->old_pages) == 0);
        sl->old = NULL;
}

/* Give a run's vCPU back to the scheduler (the boot CPU reaps a VM that has stopped). */
static void vcpu_put(struct sched_entity *e, uint64_t ran, enum vcpu_run_result r)
{
        struct vm *vm = ((struct vcpu *)e->owner)->vm;
        enum sched_put_how how = r == VCPU_RUN_BLOCKED ? SCHED_BLOCK : SCHED_PREEMPTED;

        if (r == VCPU_RUN_LEFT || vm->state != VM_RUNNING)
                how = SCHED_DONE;
        sched_put(&sched, e, ran, how);
        if (how == SCHED_DONE) /* after the put: the upkeep finds it detached */
                upkeep_wanted();
}

/* One scheduling round on `cpu`: run the next vCPU for a slice, or idle. */
static void cpu_round(unsigned cpu)
{
        uint64_t now = arch_tsc();
        struct sched_entity *e;
        enum vcpu_run_result r;

        grace_quiescent(&grace, cpu); /* holds nothing from its last round */
        irq_poll_all(); /* drivers' completions that no interrupt reported (keel/irq.h) */
#ifdef KEEL_DEBUG_HYPERCALLS
        uint64_t t0 = arch_tsc();
        e = sched_pick(&sched, cpu, now);
        debug_scale_pick(cpu, arch_tsc() - t0);
#else
        e = sched_pick(&sched, cpu, now);
#endif
        if (!e) {
#ifdef KEEL_DEBUG_HYPERCALLS
                debug_scale_idle(cpu);
#endif
                if (!blkdev_poll_wanted()) /* a disk without interrupts has requests out */
                        arch_cpu_idle();
                return;
        }
        /* A vCPU of a VM that left the running state (maybe never set up) does not run. */
        if (((struct vcpu *)e->owner)->vm->state != VM_RUNNING) {
                r = VCPU_RUN_LEFT;
        } else {
#ifdef KEEL_DEBUG_HYPERCALLS
                struct vcpu *dv = e->owner;

                debug_scale_run(cpu, dv == &dv->vm->vcpus[0] && e->switches == 1, arch_tsc());
#endif
                r = arch_vcpu_run(e->owner, now + sched_slice(&sched, e));
#ifdef KEEL_DEBUG_HYPERCALLS
                debug_scale_run_end(cpu, arch_tsc());
#endif
        }
        vcpu_put(e, arch_tsc() - now, r);
}

_Noreturn void vmm_ap_main(unsigned cpu)
{
        while (!__atomic_load_n(&cpus_go, __ATOMIC_ACQUIRE))
                arch_cpu_idle();
        for (;;)
                cpu_round(cpu);
}

/* The boot CPU's upkeep of VM `i`: reap it once stopped, re-queue its vCPUs once resumed. */
static void vm_manage(unsigned i)
{
        struct vm *vm = slots[i].vm;
        bool detached = true;

        vm_free_old(&slots[i]);
        if (!vm)
                return;
        for (unsigned c = 0; c < vm->vcpu_count; c++) {
                struct vcpu *v = &vm->vcpus[c];

                /* Acquire: pairs with the run queue lock's release in sched_put (SCHED_DONE), the
                 * vCPU's CPU's last touch of it, so nothing it wrote comes after the reap. */
                detached &= __atomic_load_n(&v->sched.state, __ATOMIC_ACQUIRE) == SCHED_DETACHED;
                /* Resumed while a CPU was giving it back: it joins again (EBUSY: it is in). */
                if (vm->state == VM_RUNNING && v->started && v->sched.state == SCHED_DETACHED)
                        (void)sched_add(&sched, &v->sched, arch_tsc());
        }
        if (vm->state == VM_STOPPED && detached && !slots[i].old) /* one retired VM at a time */
                vm_reap(i);
}

/* Bytes typed on Keel's console go to the monitor, which routes them (docs/console.md). */
static void console_poll(void)
{
        uint8_t buf[32];
        size_t n = 0;
        int ch;

        while (n < sizeof(buf) && (ch = arch_console_getc()) >= 0)
                buf[n++] = (uint8_t)ch;
        if (n)
                monitor_input(&monitor, buf, n);
}

/* True once every VM has stopped and been released. */
static bool all_ended(void)
{
        bool ended = true, waiting = false;

        for (unsigned i = 0; i < boot->config->vm_count; i++) {
                const struct vm *vm;

                vm_manage(i);
                vm = slots[i].vm;
                ended &= !vm && !slots[i].old;
                waiting |= slots[i].old || (vm && (vm->state == VM_STOPPED || gdb_holds(vm)));
        }
        if (waiting)
                upkeep_wanted();
        return ended;
}

/* The monitor's view of the VM table (vmm/monitor.h). */
static unsigned mon_count(void *ctx)
{
        (void)ctx;
        return boot->config->vm_count;
}

static void mon_info(void *ctx, unsigned i, struct monitor_vm_info *out)
{
        const struct vm *vm = slots[i].vm;
        enum vm_stop_reason stop = vm ? vm->stop_reason : slots[i].stop_reason;
        uint64_t run = slots[i].runtime, khz = arch_tsc_khz();

        (void)ctx;
        out->name = boot->config->vms[i].name;
        out->state = vm_state_name(vm ? vm->state : VM_STOPPED);
        out->stop = stop != VM_STOP_NONE ? vm_stop_reason_name(stop) : "";
        out->vcpus = boot->config->vms[i].vcpus;
        for (unsigned c = 0; vm && c < vm->vcpu_count; c++) {
                out->exits += vm->vcpus[c].exits;
                run += vm->vcpus[c].sched.runtime;
        }
        out->run_us = khz ? run * 1000 / khz : 0;
        out->counter_khz = khz;
        out->keel_bytes = ((vm ? slots[i].keel_pages : 0) + slots[i].trace_pages +
                           slots[i].snap.pages + (slots[i].hist ? 1 : 0)) *
                          PAGE_SIZE;
}

static struct exit_stats *mon_vcpu_stats(void *ctx, unsigned i, unsigned c)
{
        (void)ctx;
        const struct vm *vm = slots[i].vm;

        (void)ctx;
        return vm && c < vm->vcpu_count ? &vm->vcpus[c].stats : NULL;
}

/* Exit tracing on or off; the rings are allocated at the first `on`, freed with the VM. */
static int mon_trace(void *ctx, unsigned i, bool on)
{
        struct vm *vm = slots[i].vm;
        struct exit_trace_entry *rings;
        int err;

        (void)ctx;
        if (!vm)
                return -KEEL_EPERM;
        for (unsigned c = 0; c < vm->vcpu_count && !on; c++)
                exit_trace_disable(&vm->vcpus[c].stats);
        if (!on)
                return 0;
        if (!slots[i].trace_pages) {
                size_t pages = TRACE_RING_PAGES * vm->vcpu_count;

                err = palloc_alloc(&keel_palloc, pages, PAGE_SIZE, &slots[i].trace_pa);
                if (err)
                        return err;
                slots[i].trace_pages = pages;
        }
        rings = hva_ptr(arch_hpa_to_hva(slots[i].trace_pa));
        for (unsigned c = 0; c < vm->vcpu_count; c++)
                exit_trace_enable(&vm->vcpus[c].stats, rings + (size_t)c * TRACE_RING_PAGES *
                                                                   PAGE_SIZE / sizeof(*rings));
        return 0;
}

/*
 * Build VM `i` again from its config (monitor start/reset of a stopped VM), then run it if
 * `run`: at once if it has been released, else once its vCPUs have left (vm_manage).
 */
static void vm_rebuild(unsigned i, bool run)
{
        if (slots[i].vm) { /* a retired one (old) is separate memory: no need to wait */
                slots[i].next = run ? VM_NEXT_RUN : VM_NEXT_CREATE;
                vm_manage(i);
                return;
        }
        vm_create(i);
        if (run && slots[i].vm && slots[i].vm->state == VM_CREATED)
                CHECK(vm_run(i) == 0);
}

static int mon_action(void *ctx, unsigned i, enum monitor_action a)
{
        struct vm *vm = slots[i].vm;
        int err;

        (void)ctx;
        upkeep_wanted();
        if (!vm) { /* stopped and released: it can only be built again */
                if (a != MONITOR_START && a != MONITOR_RESET)
                        return -KEEL_EPERM;
                vm_rebuild(i, a == MONITOR_START);
                return 0;
        }
        switch (a) {
        case MONITOR_START:
                if (vm->state != VM_STOPPED)
                        return vm_run(i); /* created: runs; running or paused: refused */
                vm_rebuild(i, true);
                return 0;
        case MONITOR_STOP:
                if (vm->state == VM_STOPPED)
                        return -KEEL_EPERM;
                vm_stop(vm, VM_STOP_MONITOR, "stopped from the monitor");
                vm_kick(vm);
                return 0;
        case MONITOR_PAUSE:
                err = vm_set_state(vm, VM_PAUSED);
                if (!err)
                        vm_kick(vm);
                return err;
        case MONITOR_RESUME:
                if (vm->state != VM_PAUSED)
                        return -KEEL_EPERM;
                if (vm->debug)
                        return -KEEL_EBUSY; /* gdb has it stopped: gdb's continue resumes it */
                return vm_set_state(vm, VM_RUNNING); /* vm_manage re-queues its vCPUs */
        case MONITOR_RESET:
                if (vm->state != VM_PAUSED && vm->state != VM_STOPPED)
                        return -KEEL_EPERM;
                if (vm->state == VM_PAUSED)
                        vm_stop(vm, VM_STOP_MONITOR, "reset from the monitor");
                vm_rebuild(i, false);
                return 0;
        default:
                return -KEEL_EINVAL;
        }
}

static void mon_input(void *ctx, unsigned i, const uint8_t *buf, size_t n)
{
        struct vm *vm = slots[i].vm;

        (void)ctx;
        if (vm && (vm->state == VM_RUNNING || vm->state == VM_PAUSED))
                vcons_input_push(&vm->console, buf, n); /* what does not fit is dropped */
}

/*
 * Monitor output is a console writer of its own, like a VM's: its prompt and the echo of a
 * line being typed stay unfinished, and are ended before anyone else's line (log.h).
 */
static void mon_write(void *ctx, const char *s, size_t n)
{
        bool end = n && s[n - 1] == '\n';

        (void)ctx;
        log_write_part(&monitor, "", 0, s, end ? n - 1 : n, end);
}

static int mon_gdb(void *ctx, unsigned i, bool port)
{
        (void)ctx;
        return gdb_attach(i, port);
}

static void mon_gdb_input(void *ctx, const uint8_t *buf, size_t n)
{
        (void)ctx;
        gdb_console_input(buf, n);
}

/*
 * console = raw: the focused VM's console goes out as it is (vmm/vcons.h). Its history lives
 * in its slot, so it outlives the VM's control blocks (freed when it stops).
 */
static void mon_focus(void *ctx, int i)
{
        (void)ctx;
        if (!boot->config->console_raw)
                return;
        if (i < 0)
                vcons_raw_off();
        else
                vcons_raw_focus(slots[i].vm ? &slots[i].vm->console : NULL, slots[i].hist);
}

#define OFF_CPU_WAIT_MS 200 /* what a snapshot or restore waits for a vCPU to leave its CPU */

/*
 * Takes a paused VM's vCPUs off every CPU, for a snapshot or restore, from the boot CPU's
 * monitor (outside its scheduling round: no vCPU runs here). One still queued is taken off
 * its run queue here, which is all a CPU picking it would do (a paused VM's vCPU leaves
 * without running: cpu_round, VCPU_RUN_LEFT). One running on another CPU, kicked when the
 * VM was paused, gives itself back at its exit: waited for, at most OFF_CPU_WAIT_MS.
 * Without this a `restore` typed right after `pause` was refused now and then (a script's,
 * integration.arm64_snapdisk in a CI run of 2026-12-07).
 */
static bool vm_off_cpus(struct vm *vm)
{
        uint64_t until = arch_tsc() + arch_tsc_khz() * OFF_CPU_WAIT_MS;

        for (;;) {
                bool off = true;

                for (unsigned c = 0; c < vm->vcpu_count; c++) {
                        struct sched_entity *e = &vm->vcpus[c].sched;

                        /* Acquire: pairs with sched_put's release (SCHED_DONE), as in vm_manage. */
                        if (__atomic_load_n(&e->state, __ATOMIC_ACQUIRE) != SCHED_DETACHED &&
                            sched_remove(&sched, e) != 0)
                                off = false; /* running on another CPU */
                }
                if (off)
                        return true;
                if (arch_tsc() >= until)
                        return false;
                arch_cpu_relax();
        }
}

/* snapshot / restore (vmm/snapshot.h): the VM paused (restore: or created), off every CPU. */
static int mon_snapshot(void *ctx, unsigned i, bool restore, char *msg, size_t len)
{
        const char *name = boot->config->vms[i].name, *what = restore ? "restore" : "snapshot";
        struct vm *vm = slots[i].vm;
        struct snap_part part;
        char names[2 * 160];
        int err;

        (void)ctx;
        upkeep_wanted();
        if (!vm || vm->debug || !(vm->state == VM_PAUSED || (restore && vm->state == VM_CREATED))) {
                snprintf(msg, len, "cannot %s vm %s (%s%s): %s", what, name,
                         vm ? vm_state_name(vm->state) : "stopped",
                         vm && vm->debug ? ", in gdb" : "",
                         restore ? "pause it, or reset it, first" : "pause it first");
                return -KEEL_EPERM;
        }
        if (!vm_off_cpus(vm)) {
                snprintf(msg, len,
                         "cannot %s vm %s yet: its vCPUs are still leaving their CPUs; try "
                         "again",
                         what, name);
                return -KEEL_EBUSY;
        }
        vm_disks_quiesce(vm); /* no disk request in flight into RAM being saved or restored */
        if (vm_snap_part(vm, &boot->config->vms[i], &part, names, sizeof(names)))
                err = restore ? snapshot_restore_part(&slots[i].snap, vm, &part, msg, len)
                              : snapshot_take_part(&slots[i].snap, vm, &part, msg, len);
        else if (!restore)
                return snapshot_take(&slots[i].snap, vm, msg, len);
        else
                err = snapshot_restore(&slots[i].snap, vm, msg, len);
        if (!restore)
                return err;
        if (!err && vm->state == VM_CREATED) { /* restored: paused, as it was when taken */
                CHECK(vm_set_state(vm, VM_RUNNING) == 0);
                CHECK(vm_set_state(vm, VM_PAUSED) == 0);
        }
        return err;
}

static const struct monitor_ops monitor_ops = {
    .count = mon_count,
    .info = mon_info,
    .action = mon_action,
    .input = mon_input,
    .write = mon_write,
    .gdb = mon_gdb,
    .gdb_input = mon_gdb_input,
    .focus = mon_focus,
    .vcpu_stats = mon_vcpu_stats,
    .trace = mon_trace,
    .snapshot = mon_snapshot,
};

/* The VM table's side of a gdb session (vmm/gdb.h). */
static struct vm *gdb_vm(unsigned i)
{
        return i < boot->config->vm_count ? slots[i].vm : NULL;
}

static void gdb_console_write(const char *s, size_t n)
{
        arch_console_write(s, n);
}

static void gdb_console_done(void)
{
        monitor_gdb_done(&monitor);
}

static const struct gdb_host gdb_host = {
    .vm = gdb_vm,
    .kick = vm_kick,
    .console_write = gdb_console_write,
    .console_done = gdb_console_done,
};

static void summary(void)
{
        const struct keel_config *cfg = boot->config;
        unsigned unexpected = 0;
        uint64_t total = 0;

        for (unsigned i = 0; i < cfg->vm_count; i++)
                total += slots[i].runtime;
        LOG_INFO("summary");
        for (unsigned i = 0; i < cfg->vm_count; i++) {
                char got[48], want[48];
                bool ok;

                outcome(&slots[i], got, sizeof(got));
                ok = as_expected(&slots[i], &cfg->vms[i], want, sizeof(want));
                unexpected += !ok;
                LOG_INFO("  %s: %s (expected %s), %llu%% of the CPU time: %s", cfg->vms[i].name,
                         got, want,
                         (unsigned long long)(total ? slots[i].runtime * 100 / total : 0),
                         ok ? "ok" : "UNEXPECTED");
        }
        if (unexpected)
                LOG_INFO("result: FAIL (%u of %u VM%s not as expected)", unexpected, cfg->vm_count,
                         cfg->vm_count == 1 ? "" : "s");
        else
                LOG_INFO("result: PASS (%u VM%s as expected)", cfg->vm_count,
                         cfg->vm_count == 1 ? "" : "s");
        LOG_INFO("%llu MiB free after all VMs ended",
                 (unsigned long long)(palloc_free_pages(&keel_palloc) * PAGE_SIZE >> 20));
#ifdef KEEL_DEBUG_HYPERCALLS
        debug_scale_report(boot->entry_tsc, cfg->vm_count);
#endif
        if (cfg->finish == FINISH_DEBUG_EXIT)
                arch_test_finish(unexpected == 0);
        LOG_INFO("all VMs ended; the monitor (Ctrl-] m) can start them again");
}

_Noreturn void vmm_main(const struct boot_info *bi, unsigned cpus)
{
        const struct keel_config *cfg = bi->config;
        bool ended = false;
        size_t pages;

        boot = bi;
        ncpus = cpus;
        slots = table_alloc(cfg->vm_count, sizeof(*slots), &pages);
        if (!slots)
                panic("no memory for the table of %u VMs (%zu pages)", cfg->vm_count, pages);
        grace_init(&grace, percpu_table(sizeof(uint64_t), "quiescent points"), ncpus);
        sched_init(&sched, percpu_table(sizeof(struct sched_cpu), "run queues"), ncpus,
                   arch_tsc_khz() * SLICE_MS, vcpu_ready);
        LOG_INFO("scheduler: %u CPU%s, %u ms slices", ncpus, ncpus == 1 ? "" : "s", SLICE_MS);

        vm_disks_plan(bi);
        for (unsigned i = 0; cfg->console_raw && i < cfg->vm_count; i++)
                if (!(slots[i].hist = vcons_hist_alloc()))
                        LOG_WARN("console: no memory for vm %s's history: its output "
                                 "while another VM has the raw console is dropped",
                                 cfg->vms[i].name);
        for (unsigned i = 0; i < cfg->vm_count; i++) {
                vm_create(i);
                if (slots[i].vm && slots[i].vm->state == VM_CREATED)
                        CHECK(vm_run(i) == 0);
        }
        monitor_init(&monitor, &monitor_ops, NULL);
        gdb_setup(&gdb_host);
        monitor_announce(&monitor);
        __atomic_store_n(&cpus_go, true, __ATOMIC_RELEASE);
        for (;;) {
                console_poll();
                gdb_poll();
                if (__atomic_exchange_n(&upkeep_due, false, __ATOMIC_ACQUIRE)) {
                        if (all_ended()) {
                                if (!ended)
                                        summary();
                                ended = true;
                        } else {
                                ended = false;
                        }
                }
                cpu_round(0);
        }
}
