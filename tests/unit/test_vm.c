/* Tests for vmm/vm.c: init, the lifecycle table, stop/exit records and names. */
#include <pthread.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/vm.h>
#include <vmm/vuart.h>

#include "log_capture.h"
#include "test.h"

static unsigned count_lines(const char *s)
{
        unsigned n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

static struct vm vm;
static struct vcpu test_vcpus[VM_MAX_VCPUS];

TEST(init_sets_generic_part)
{
        memset(&vm, 0xa5, sizeof(vm));
        vm_init(&vm, 3, "alpha", test_vcpus, 1);
        EXPECT_STREQ(vm.name, "alpha");
        EXPECT_EQ(vm.id, 3);
        EXPECT_EQ(vm.state, VM_CREATED);
        EXPECT_EQ(vm.mem.count, 0);
        EXPECT_EQ(gmem_total(&vm.mem), 0);
        EXPECT_TRUE(vm.console.prefix == vm.name);
        EXPECT_EQ(vm.console.len, 0);
        EXPECT_FALSE(vm.console.line_open);
        EXPECT_EQ(vm.console.tx_bytes, 0);
        EXPECT_EQ(vm.vcpu_count, 1);
        EXPECT_TRUE(vm.vcpus[0].vm == &vm);
        EXPECT_EQ(vm.vcpus[0].id, 0);
        EXPECT_EQ(vm.vcpus[0].exits, 0);
        EXPECT_EQ(vm.stop_reason, VM_STOP_NONE);
        EXPECT_EQ(vm.exit_code, 0);
        EXPECT_STREQ(vm.stop_detail, "");
}

TEST(init_truncates_long_name)
{
        const char *longname = "a-very-long-virtual-machine-name-that-does-not-fit";

        vm_init(&vm, 0, longname, test_vcpus, 1);
        EXPECT_EQ(strlen(vm.name), VM_NAME_MAX - 1);
        EXPECT_EQ(memcmp(vm.name, longname, VM_NAME_MAX - 1), 0);
}

/* The lifecycle from vmm/vm.h, written out pair by pair. */
static bool expected_allowed(enum vm_state from, enum vm_state to)
{
        static const struct {
                enum vm_state from, to;
        } ok[] = {
            {VM_CREATED, VM_RUNNING}, {VM_RUNNING, VM_PAUSED},  {VM_PAUSED, VM_RUNNING},
            {VM_CREATED, VM_STOPPED}, {VM_RUNNING, VM_STOPPED}, {VM_PAUSED, VM_STOPPED},
            {VM_PAUSED, VM_CREATED},  {VM_STOPPED, VM_CREATED},
        };

        for (unsigned i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
                if (ok[i].from == from && ok[i].to == to)
                        return true;
        return false;
}

TEST(transition_table_exhaustive)
{
        static const char *const names[] = {"created", "running", "paused", "stopped"};
        unsigned allowed_count = 0;

        for (int from = VM_CREATED; from <= VM_STOPPED; from++) {
                for (int to = VM_CREATED; to <= VM_STOPPED; to++) {
                        char want[128];
                        int r;

                        vm_init(&vm, 1, "tbl", test_vcpus, 1);
                        vm.state = (enum vm_state)from;
                        capture_start();
                        r = vm_set_state(&vm, (enum vm_state)to);
                        if (expected_allowed((enum vm_state)from, (enum vm_state)to)) {
                                allowed_count++;
                                EXPECT_EQ(r, 0);
                                EXPECT_EQ(vm.state, to);
                                EXPECT_STREQ(logbuf, "");
                        } else {
                                EXPECT_EQ(r, -KEEL_EPERM);
                                EXPECT_EQ(vm.state, from);
                                snprintf(want, sizeof(want), "%s -> %s", names[from], names[to]);
                                EXPECT_TRUE(strncmp(logbuf, "W ", 2) == 0);
                                EXPECT_CONTAINS(logbuf, "tbl");
                                EXPECT_CONTAINS(logbuf, want);
                                EXPECT_EQ(count_lines(logbuf), 1);
                        }
                }
        }
        EXPECT_EQ(allowed_count, 8);
        log_set_sink(NULL);
}

TEST(transition_to_invalid_state_refused)
{
        vm_init(&vm, 1, "bad", test_vcpus, 1);
        capture_start();
        EXPECT_EQ(vm_set_state(&vm, (enum vm_state)4), -KEEL_EPERM);
        EXPECT_EQ(vm.state, VM_CREATED);
        EXPECT_CONTAINS(logbuf, "unknown");
        log_set_sink(NULL);
}

TEST(full_lifecycle_walk)
{
        vm_init(&vm, 1, "walk", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        EXPECT_EQ(vm_set_state(&vm, VM_PAUSED), 0);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        EXPECT_EQ(vm_set_state(&vm, VM_STOPPED), 0);
        EXPECT_EQ(vm_set_state(&vm, VM_CREATED), 0);
        EXPECT_EQ(vm.state, VM_CREATED);
}

TEST(state_names)
{
        EXPECT_STREQ(vm_state_name(VM_CREATED), "created");
        EXPECT_STREQ(vm_state_name(VM_RUNNING), "running");
        EXPECT_STREQ(vm_state_name(VM_PAUSED), "paused");
        EXPECT_STREQ(vm_state_name(VM_STOPPED), "stopped");
        EXPECT_STREQ(vm_state_name((enum vm_state)99), "unknown");
}

TEST(stop_reason_names_round_trip)
{
        static const char *const names[VM_STOP_REASON_COUNT] = {
            "none",          "exit",        "triple-fault",    "outside-ram",
            "bad-hypercall", "halted",      "bad-instruction", "unhandled-exit",
            "entry-failed",  "load-failed", "poweroff",        "reboot",
            "monitor",
        };

        for (unsigned r = 0; r < VM_STOP_REASON_COUNT; r++) {
                enum vm_stop_reason got = VM_STOP_NONE;

                EXPECT_STREQ(vm_stop_reason_name((enum vm_stop_reason)r), names[r]);
                if (r == VM_STOP_NONE) {
                        EXPECT_EQ(vm_stop_reason_parse(names[r], &got), -KEEL_EINVAL);
                        continue;
                }
                EXPECT_EQ(vm_stop_reason_parse(names[r], &got), 0);
                EXPECT_EQ(got, r);
        }
        EXPECT_STREQ(vm_stop_reason_name(VM_STOP_REASON_COUNT), "unknown");
}

TEST(stop_reason_parse_rejects_unknown)
{
        enum vm_stop_reason got = VM_STOP_HALTED;

        EXPECT_EQ(vm_stop_reason_parse("", &got), -KEEL_EINVAL);
        EXPECT_EQ(vm_stop_reason_parse("Exit", &got), -KEEL_EINVAL);
        EXPECT_EQ(vm_stop_reason_parse("exit ", &got), -KEEL_EINVAL);
        EXPECT_EQ(vm_stop_reason_parse("triple", &got), -KEEL_EINVAL);
        EXPECT_EQ(vm_stop_reason_parse("unknown", &got), -KEEL_EINVAL);
        EXPECT_EQ(vm_stop_reason_parse(NULL, &got), -KEEL_EINVAL);
        EXPECT_EQ(got, VM_STOP_HALTED);
}

TEST(stop_prints_one_warning_line)
{
        vm_init(&vm, 2, "beta", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        capture_start();
        vm_stop(&vm, VM_STOP_TRIPLE_FAULT, "rip 0x%x", 0x1234);
        EXPECT_STREQ(logbuf, "W keel: vm beta stopped: triple-fault: rip 0x1234\n");
        EXPECT_EQ(vm.state, VM_STOPPED);
        EXPECT_EQ(vm.stop_reason, VM_STOP_TRIPLE_FAULT);
        EXPECT_STREQ(vm.stop_detail, "rip 0x1234");
        log_set_sink(NULL);
}

TEST(stop_keeps_first_reason)
{
        vm_init(&vm, 2, "beta", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        capture_start();
        vm_stop(&vm, VM_STOP_OUTSIDE_RAM, "gpa 0x%llx", 0x80000000ull);
        capture_start();
        vm_stop(&vm, VM_STOP_HALTED, "later");
        vm_exit(&vm, 5);
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(vm.stop_reason, VM_STOP_OUTSIDE_RAM);
        EXPECT_STREQ(vm.stop_detail, "gpa 0x80000000");
        EXPECT_EQ(vm.exit_code, 0);
        EXPECT_EQ(vm.state, VM_STOPPED);
        log_set_sink(NULL);
}

TEST(stop_from_created_and_paused)
{
        vm_init(&vm, 2, "c", test_vcpus, 1);
        capture_start();
        vm_stop(&vm, VM_STOP_LOAD_FAILED, "image missing");
        EXPECT_EQ(vm.state, VM_STOPPED);
        EXPECT_STREQ(logbuf, "W keel: vm c stopped: load-failed: image missing\n");

        vm_init(&vm, 2, "p", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        EXPECT_EQ(vm_set_state(&vm, VM_PAUSED), 0);
        vm_stop(&vm, VM_STOP_UNHANDLED, "exit code 0x7b");
        EXPECT_EQ(vm.state, VM_STOPPED);
        EXPECT_EQ(vm.stop_reason, VM_STOP_UNHANDLED);
        log_set_sink(NULL);
}

TEST(stop_flushes_uart_first)
{
        struct vuart uart;
        uint32_t v;

        vm_init(&vm, 2, "u", test_vcpus, 1);
        vuart_init(&uart, &vm.console); /* as the arch does */
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        capture_start();
        v = 'h';
        vuart_access(&uart, 0, true, &v);
        v = 'i';
        vuart_access(&uart, 0, true, &v);
        EXPECT_STREQ(logbuf, "");
        vm_stop(&vm, VM_STOP_HALTED, "hlt with interrupts off");
        EXPECT_STREQ(logbuf, "[u] hi\nW keel: vm u stopped: halted: hlt with interrupts off\n");
        log_set_sink(NULL);
}

TEST(exit_records_code_at_info_level)
{
        vm_init(&vm, 4, "gamma", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        capture_start();
        vm_exit(&vm, -3);
        EXPECT_STREQ(logbuf, "keel: vm gamma stopped: exit: code -3\n");
        EXPECT_EQ(vm.stop_reason, VM_STOP_EXIT);
        EXPECT_EQ(vm.exit_code, -3);
        EXPECT_STREQ(vm.stop_detail, "code -3");
        EXPECT_EQ(vm.state, VM_STOPPED);

        /* At warning level the exit line is dropped, a fault line is not. */
        vm_init(&vm, 4, "gamma", test_vcpus, 1);
        capture_start();
        log_set_level(LOG_LEVEL_WARN);
        vm_exit(&vm, 0);
        EXPECT_STREQ(logbuf, "");
        vm_init(&vm, 4, "delta", test_vcpus, 1);
        vm_stop(&vm, VM_STOP_BAD_INSN, "at 0x1000");
        EXPECT_STREQ(logbuf, "W keel: vm delta stopped: bad-instruction: at 0x1000\n");
        log_set_level(LOG_LEVEL_INFO);
        log_set_sink(NULL);
}

TEST(detail_is_bounded)
{
        char big[300];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        vm_init(&vm, 4, "d", test_vcpus, 1);
        vm_stop(&vm, VM_STOP_ENTRY_FAILED, "%s", big);
        EXPECT_EQ(strlen(vm.stop_detail), sizeof(vm.stop_detail) - 1);
}

TEST(reset_clears_stop_record)
{
        vm_init(&vm, 4, "r", test_vcpus, 1);
        EXPECT_EQ(vm_set_state(&vm, VM_RUNNING), 0);
        vm_exit(&vm, 42);
        EXPECT_EQ(vm.exit_code, 42);
        EXPECT_EQ(vm_set_state(&vm, VM_CREATED), 0);
        EXPECT_EQ(vm.stop_reason, VM_STOP_NONE);
        EXPECT_EQ(vm.exit_code, 0);
        EXPECT_STREQ(vm.stop_detail, "");
        /* After a reset the VM can stop again, for a new reason. */
        vm_stop(&vm, VM_STOP_TRIPLE_FAULT, "again");
        EXPECT_EQ(vm.stop_reason, VM_STOP_TRIPLE_FAULT);
        EXPECT_EQ(vm.state, VM_STOPPED);
}

/* Every vCPU reports at once: the table never grows past `max` (the guard word stays). */
#define SEEN_MAX     16
#define SEEN_THREADS 4

static struct {
        uint32_t seen[SEEN_MAX];
        uint32_t guard;
        unsigned count;
} seen_race;
static unsigned seen_new;
static pthread_barrier_t seen_start;

static void *seen_thread(void *arg)
{
        unsigned id = (unsigned)(uintptr_t)arg;

        pthread_barrier_wait(&seen_start);
        for (unsigned k = 0; k < 2000; k++)
                if (!vm_report_seen(seen_race.seen, &seen_race.count, SEEN_MAX, id * 100000 + k))
                        __atomic_add_fetch(&seen_new, 1, __ATOMIC_RELAXED);
        return NULL;
}

TEST(report_seen_on_every_vcpu_at_once)
{
        for (unsigned round = 0; round < 3000; round++) {
                pthread_t t[SEEN_THREADS];

                memset(&seen_race, 0, sizeof(seen_race));
                seen_race.guard = 0x600d600d;
                seen_new = 0;
                pthread_barrier_init(&seen_start, NULL, SEEN_THREADS);
                for (unsigned i = 0; i < SEEN_THREADS; i++)
                        ASSERT_TRUE(
                            pthread_create(&t[i], NULL, seen_thread, (void *)(uintptr_t)i) == 0);
                for (unsigned i = 0; i < SEEN_THREADS; i++)
                        pthread_join(t[i], NULL);
                pthread_barrier_destroy(&seen_start);
                EXPECT_EQ(seen_race.guard, 0x600d600d);
                EXPECT_EQ(seen_race.count, SEEN_MAX);
                EXPECT_EQ(seen_new, SEEN_MAX); /* distinct keys: exactly one report per slot */
                if (test_failed_current)
                        break;
        }
}

TEST_MAIN()
