/*
 * The guest SDK's start-up, heap and exit (docs/guest-sdk.md). crt0 (arch/<arch>/crt0.S)
 * calls keel_sdk_early on Keel's initial stack, switches to the stack at the top of RAM and
 * calls keel_sdk_start, which runs main.
 *
 * Guest memory, from the load address up: the image (text, rodata, data, .bss), the TLS
 * block, the heap (malloc, through sbrk), then the stack (__keel_stack_size bytes, default
 * 64 KiB, STACK_SIZE of keel_add_guest) ending at the end of RAM.
 */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "sdk.h"

int main(int argc, char **argv);
void __libc_init_array(void);

static uint64_t ram_base, ram_size;
static uintptr_t heap_start, heap_cur, heap_end;
static struct keel_vm_info vm_info __attribute__((aligned(8)));

/* The least heap an image gets, or it is refused at start. */
#define MIN_HEAP 4096

static void early_say(const char *s)
{
        size_t n = 0;

        while (s[n])
                n++;
        keel_hypercall(KEEL_HC_PRINT, (uintptr_t)s, n, 0, 0);
}

uintptr_t keel_sdk_early(uint64_t size, uint64_t base)
{
        uintptr_t end = (uintptr_t)(base + size);
        uintptr_t image_end = sdk_align_up((uintptr_t)__image_end, 64);
        uintptr_t stack = (uintptr_t)__keel_stack_size;

        if (end < image_end || end - image_end < stack + MIN_HEAP) {
                early_say("keel-sdk: the image and its stack (STACK_SIZE of keel_add_guest) do "
                          "not fit in the VM's RAM: raise `memory =` in the VM's config\n");
                keel_exit(KEEL_EXIT_NO_ROOM);
        }
        /* Word stores: the image's end is page aligned and .bss 16-byte aligned. */
        for (volatile uint64_t *p = (uint64_t *)__bss_start; p < (uint64_t *)__bss_end; p++)
                *p = 0;
        sdk_arch_early(base, size);
        return end & ~(uintptr_t)15;
}

void sdk_tls_fill(uintptr_t block)
{
        volatile char *d = (char *)block;
        size_t data = (size_t)(__tdata_end - __tdata_start);

        for (size_t i = 0; i < data; i++)
                d[i] = __tdata_start[i];
        for (size_t i = data; i < sdk_tls_size(); i++)
                d[i] = 0;
}

_Noreturn void keel_sdk_start(uint64_t size, uint64_t base)
{
        char *argv[2] = {vm_info.name, NULL};

        ram_size = size;
        ram_base = base;
        heap_start = sdk_arch_tls_init(sdk_align_up((uintptr_t)__image_end, 64));
        heap_start = sdk_align_up(heap_start, 64);
        heap_cur = heap_start;
        heap_end = (uintptr_t)(base + size - (uintptr_t)__keel_stack_size) & ~(uintptr_t)63;
        if (keel_hypercall(KEEL_HC_VM_INFO, (uintptr_t)&vm_info, sizeof(vm_info), 0, 0) < 0)
                vm_info.name[0] = '\0';
        vm_info.name[sizeof(vm_info.name) - 1] = '\0';
        __libc_init_array();
        exit(main(1, argv));
}

void *sbrk(ptrdiff_t incr)
{
        uintptr_t old = heap_cur;

        if (incr > 0 ? (uintptr_t)incr > heap_end - heap_cur
                     : (uintptr_t)-incr > heap_cur - heap_start) {
                errno = ENOMEM;
                return (void *)-1;
        }
        heap_cur += (uintptr_t)incr;
        return (void *)old;
}

uint64_t keel_ram_base(void)
{
        return ram_base;
}

uint64_t keel_ram_size(void)
{
        return ram_size;
}

const char *keel_vm_name(void)
{
        return vm_info.name;
}

uintptr_t keel_heap_start(void)
{
        return heap_start;
}

uintptr_t keel_heap_end(void)
{
        return heap_end;
}

_Noreturn void keel_exit(int64_t code)
{
        keel_console_flush();
        keel_hypercall(KEEL_HC_EXIT, (uint64_t)code, 0, 0, 0);
        for (;;) /* Keel never returns from EXIT */
                ;
}
