/*
 * Test builds only (CMake option KEEL_DEBUG_HYPERCALLS builds keel-debug.efi with this file;
 * keel.efi never has it): the faults behind KEEL_HC_DEBUG_FAULT. Each is a Keel bug made on
 * purpose, and each must end in Keel's panic report naming it (docs/memory.md, the
 * integration cases wx_*): writing Keel's text, executing Keel's data, running a stack into
 * its guard page, and overrunning a stack buffer past the stack protector's canary.
 */
#include <string.h>

#include <keel/debug_fault.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/hypercall.h>

/* Data, never code: the protections must refuse to execute it. */
static uint8_t not_code[64] = {0xff};

static __attribute__((noinline)) void write_text(void)
{
        volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)debug_fault;

        LOG_INFO("debug fault: writing Keel's text at %p", (void *)(uintptr_t)p);
        *p = *p;
}

static __attribute__((noinline)) void exec_data(void)
{
        void (*volatile fn)(void) = (void (*)(void))(uintptr_t)not_code;

        LOG_INFO("debug fault: calling Keel's data at %p", (void *)(uintptr_t)not_code);
        fn();
}

/* Not a tail call (the frame is used after the call), bounded only to keep GCC quiet. */
static __attribute__((noinline)) unsigned recurse(unsigned depth)
{
        volatile uint8_t frame[512];

        frame[0] = (uint8_t)depth;
        frame[511] = (uint8_t)depth;
        if (depth > (1u << 24))
                return 0;
        return recurse(depth + 1) + frame[0] + frame[511];
}

static __attribute__((noinline)) void smash(void)
{
        char buf[16];
        volatile size_t n = sizeof(buf) + 48;

        LOG_INFO("debug fault: writing %u bytes into a %u-byte stack buffer", (unsigned)n,
                 (unsigned)sizeof(buf));
        memset(buf, 0x5a, n);
        __asm__ volatile("" ::"r"(buf) : "memory");
}

int64_t debug_fault(uint64_t what)
{
        switch (what) {
        case KEEL_DEBUG_FAULT_WRITE_TEXT:
                write_text();
                break;
        case KEEL_DEBUG_FAULT_EXEC_DATA:
                exec_data();
                break;
        case KEEL_DEBUG_FAULT_STACK:
                LOG_INFO("debug fault: recursing until the stack runs out");
                recurse(0);
                break;
        case KEEL_DEBUG_FAULT_SMASH:
                smash();
                break;
        default:
                return -KEEL_EINVAL;
        }
        LOG_ERR("keel: debug fault %llu did not fault: a protection is missing",
                (unsigned long long)what);
        return -KEEL_EFAULT;
}
