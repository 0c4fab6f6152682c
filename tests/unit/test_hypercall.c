/* Tests for vmm/hypercall.c: every call, its results and its refusals of bad arguments. */
#include <stddef.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/hypercall.h>
#include <vmm/vm.h>
#include <vmm/vuart.h>

#include "log_capture.h"
#include "test.h"

#define RAM_BASE 0x200000ull
#define RAM_SZ   (64 * 1024ull)
#define FILL     0xee

#include "guest_ram.h"
static struct vm vm;
static struct vcpu test_vcpus[VM_MAX_VCPUS];
static struct vuart uart; /* the VM's UART, transmitting to vm.console as on x86 */

/* VM "hc-guest", id 5, 64 KiB of RAM at 0x200000, a UART, running, log captured. */
static void setup(void)
{
        vm_init(&vm, 5, "hc-guest", test_vcpus, 1);
        vuart_init(&uart, &vm.console);
        ram_fill_map(&vm.mem, RAM_BASE);
        if (vm_set_state(&vm, VM_RUNNING))
                abort();
        capture_start();
}

static struct hc_call call(uint64_t nr, uint64_t a0, uint64_t a1)
{
        return (struct hc_call){.nr = nr, .arg = {a0, a1, 0x1111, 0x2222}, .ret = 0x5555};
}

TEST(abi_layout)
{
        EXPECT_EQ(sizeof(struct keel_vm_info), 64);
        EXPECT_EQ(offsetof(struct keel_vm_info, abi_version), 0);
        EXPECT_EQ(offsetof(struct keel_vm_info, vm_id), 4);
        EXPECT_EQ(offsetof(struct keel_vm_info, ram_base), 8);
        EXPECT_EQ(offsetof(struct keel_vm_info, ram_size), 16);
        EXPECT_EQ(offsetof(struct keel_vm_info, vcpu_count), 24);
        EXPECT_EQ(offsetof(struct keel_vm_info, reserved), 28);
        EXPECT_EQ(offsetof(struct keel_vm_info, name), 32);
}

TEST(version)
{
        struct hc_call c;

        setup();
        c = call(KEEL_HC_VERSION, 0, 0);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, KEEL_HC_ABI_VERSION);
        EXPECT_EQ(c.ret, 1);
        EXPECT_EQ(vm.state, VM_RUNNING);
        log_set_sink(NULL);
}

TEST(unknown_numbers)
{
        static const uint64_t nrs[] = {4, 5, 0x100, 0x80000000ull, UINT64_MAX};
        struct hc_call c;

        setup();
        for (unsigned i = 0; i < sizeof(nrs) / sizeof(nrs[0]); i++) {
                c = call(nrs[i], RAM_BASE, 16);
                EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
                EXPECT_EQ(c.ret, -KEEL_ENOSYS);
        }
        EXPECT_EQ(vm.state, VM_RUNNING);
        EXPECT_TRUE(ram_untouched());
        log_set_sink(NULL);
}

TEST(print_lines_get_vm_prefix)
{
        static const char msg[] = "hello from the guest\nsecond";
        struct hc_call c;

        setup();
        memcpy(ram + 0x100, msg, sizeof(msg) - 1);
        c = call(KEEL_HC_PRINT, RAM_BASE + 0x100, sizeof(msg) - 1);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, (int64_t)sizeof(msg) - 1);
        EXPECT_STREQ(logbuf, "[hc-guest] hello from the guest\n");
        /* The partial line shares the UART's buffer: a UART write completes it. */
        {
                uint32_t v = '\n';

                vuart_access(&uart, 0, true, &v);
        }
        EXPECT_STREQ(logbuf, "[hc-guest] hello from the guest\n[hc-guest] second\n");
        log_set_sink(NULL);
}

TEST(print_bypasses_uart_dlab_and_loopback)
{
        struct hc_call c;
        uint32_t v;

        setup();
        v = 0x80; /* DLAB on */
        vuart_access(&uart, 3, true, &v);
        v = 0x10; /* loopback */
        vuart_access(&uart, 4, true, &v);
        v = 0x0c;
        vuart_access(&uart, 0, true, &v); /* divisor latch low */
        memcpy(ram, "ok\n", 3);
        c = call(KEEL_HC_PRINT, RAM_BASE, 3);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, 3);
        EXPECT_STREQ(logbuf, "[hc-guest] ok\n");
        EXPECT_EQ(uart.lcr, 0x80);
        EXPECT_EQ(uart.mcr, 0x10);
        EXPECT_EQ(uart.dll, 0x0c);
        log_set_sink(NULL);
}

TEST(print_limits)
{
        struct hc_call c;

        setup();
        memset(ram, 'x', KEEL_HC_PRINT_MAX + 1);
        c = call(KEEL_HC_PRINT, RAM_BASE, KEEL_HC_PRINT_MAX + 1);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_E2BIG);
        c = call(KEEL_HC_PRINT, RAM_BASE, UINT64_MAX);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_E2BIG);
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(vm.console.tx_bytes, 0);

        c = call(KEEL_HC_PRINT, RAM_BASE, KEEL_HC_PRINT_MAX);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, KEEL_HC_PRINT_MAX);
        EXPECT_EQ(vm.console.tx_bytes, KEEL_HC_PRINT_MAX);

        c = call(KEEL_HC_PRINT, RAM_BASE, 0);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, 0);
        EXPECT_EQ(vm.state, VM_RUNNING);
        log_set_sink(NULL);
}

TEST(print_bad_address)
{
        static const struct {
                uint64_t gpa, len;
        } bad[] = {
            {0, 4},                     /* below RAM */
            {RAM_BASE - 2, 4},          /* straddles the start */
            {RAM_BASE + RAM_SZ - 2, 4}, /* straddles the end */
            {RAM_BASE + RAM_SZ, 1},     /* one past the end */
            {RAM_BASE + RAM_SZ, 0},     /* empty, but not in RAM */
            {UINT64_MAX, 2},            /* wraps */
            {UINT64_MAX - 10, 100},     /* wraps */
        };
        struct hc_call c;

        setup();
        for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                c = call(KEEL_HC_PRINT, bad[i].gpa, bad[i].len);
                EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
                EXPECT_EQ(c.ret, -KEEL_EFAULT);
        }
        EXPECT_EQ(vm.console.tx_bytes, 0);
        EXPECT_STREQ(logbuf, "");
        EXPECT_EQ(vm.state, VM_RUNNING);
        log_set_sink(NULL);
}

TEST(exit_stops_vm)
{
        struct hc_call c;

        setup();
        c = call(KEEL_HC_EXIT, 7, 0);
        EXPECT_FALSE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(vm.state, VM_STOPPED);
        EXPECT_EQ(vm.stop_reason, VM_STOP_EXIT);
        EXPECT_EQ(vm.exit_code, 7);
        EXPECT_STREQ(logbuf, "keel: vm hc-guest stopped: exit: code 7\n");
        log_set_sink(NULL);
}

TEST(exit_code_is_signed)
{
        struct hc_call c;

        setup();
        c = call(KEEL_HC_EXIT, UINT64_MAX, 0);
        EXPECT_FALSE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(vm.exit_code, -1);
        EXPECT_CONTAINS(logbuf, "exit: code -1");
        log_set_sink(NULL);
}

TEST(exit_flushes_pending_print)
{
        struct hc_call c;

        setup();
        memcpy(ram, "bye", 3);
        c = call(KEEL_HC_PRINT, RAM_BASE, 3);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        c = call(KEEL_HC_EXIT, 0, 0);
        EXPECT_FALSE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_STREQ(logbuf, "[hc-guest] bye\nkeel: vm hc-guest stopped: exit: code 0\n");
        log_set_sink(NULL);
}

TEST(vm_info)
{
        struct keel_vm_info info;
        struct hc_call c;
        static uint8_t ram2[4096] __attribute__((aligned(4096)));

        setup();
        /* A second region below the first: ram_base is the lowest base, ram_size the sum. */
        ASSERT_TRUE(gmem_add_region(&vm.mem, gpa(0x1000), sizeof(ram2),
                                    hpa((uint64_t)(uintptr_t)ram2)) == 0);
        c = call(KEEL_HC_VM_INFO, RAM_BASE + 0x40, 4096);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, 64);
        memcpy(&info, ram + 0x40, sizeof(info));
        EXPECT_EQ(info.abi_version, KEEL_HC_ABI_VERSION);
        EXPECT_EQ(info.vm_id, 5);
        EXPECT_EQ(info.ram_base, 0x1000);
        EXPECT_EQ(info.ram_size, RAM_SZ + 4096);
        EXPECT_EQ(info.vcpu_count, 1);
        EXPECT_EQ(info.reserved, 0);
        EXPECT_STREQ(info.name, "hc-guest");
        for (size_t i = strlen("hc-guest"); i < sizeof(info.name); i++)
                EXPECT_EQ(info.name[i], 0);
        /* Exactly 64 bytes written. */
        EXPECT_EQ(ram[0x3f], FILL);
        EXPECT_EQ(ram[0x40 + 64], FILL);
        log_set_sink(NULL);
}

TEST(vm_info_long_name_terminated)
{
        struct keel_vm_info info;
        struct hc_call c;

        setup();
        vm_init(&vm, 6, "0123456789abcdef0123456789abcdefXYZ", test_vcpus, 1);
        ASSERT_TRUE(
            gmem_add_region(&vm.mem, gpa(RAM_BASE), RAM_SZ, hpa((uint64_t)(uintptr_t)ram)) == 0);
        c = call(KEEL_HC_VM_INFO, RAM_BASE, sizeof(info));
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, 64);
        memcpy(&info, ram, sizeof(info));
        EXPECT_EQ(info.name[31], 0);
        EXPECT_STREQ(info.name, "0123456789abcdef0123456789abcde");
        EXPECT_EQ(info.ram_base, RAM_BASE);
        EXPECT_EQ(info.vm_id, 6);
        log_set_sink(NULL);
}

TEST(vm_info_refusals)
{
        struct hc_call c;

        setup();
        c = call(KEEL_HC_VM_INFO, RAM_BASE, sizeof(struct keel_vm_info) - 1);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_EINVAL);
        c = call(KEEL_HC_VM_INFO, RAM_BASE, 0);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_EINVAL);
        c = call(KEEL_HC_VM_INFO, RAM_BASE + RAM_SZ - 32, 64); /* straddles the end */
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_EFAULT);
        c = call(KEEL_HC_VM_INFO, 0, 64);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_EFAULT);
        c = call(KEEL_HC_VM_INFO, UINT64_MAX - 8, UINT64_MAX);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, -KEEL_EFAULT);
        EXPECT_TRUE(ram_untouched());
        EXPECT_EQ(vm.state, VM_RUNNING);
        /* The last 64 bytes of RAM are fine. */
        c = call(KEEL_HC_VM_INFO, RAM_BASE + RAM_SZ - 64, 64);
        EXPECT_TRUE(hypercall_dispatch(&vm.vcpus[0], &c));
        EXPECT_EQ(c.ret, 64);
        log_set_sink(NULL);
}

TEST_MAIN()
