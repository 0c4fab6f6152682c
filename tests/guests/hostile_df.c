/*
 * hostile_df (x86_64): an exception that can never be delivered, so the CPU shuts down and
 * Keel must stop the VM with "triple-fault" (and nothing else: the other VMs run on).
 *
 * The guest installs its own page tables, GDT and IDT (hostile_x86.h), then breaks the IDT:
 *   - default: every handler lives in a page its page tables mark not present, so each
 *     exception's handler faults (#PF), whose handler faults again, each fault pushing a
 *     frame, until the stack runs out and the #DF cannot be delivered;
 *   - HOSTILE_DF_ABSENT_GATES: the gates themselves are not present (#NP, then #DF, whose
 *     gate is not present either).
 * Then ud2. Coming back is a failure (exit 1).
 */
#include "guest.h"
#include "hostile_x86.h"

int64_t guest_main(void)
{
        hx_paging_init();
        hx_gdt_init();
        hx_idt_init();
        for (unsigned v = 0; v < 32; v++) {
#ifdef HOSTILE_DF_ABSENT_GATES
                hx_idt[v].type &= 0x7f; /* P = 0 */
#else
                uint64_t h = HX_PT_BASE + 16 * v;

                hx_idt[v].off0 = (uint16_t)h;
                hx_idt[v].off1 = (uint16_t)(h >> 16);
                hx_idt[v].off2 = (uint32_t)(h >> 32);
#endif
        }
        hx_pt[0] = 0; /* HX_PT_BASE: not present */
        hx_flush_tlb();
#ifdef HOSTILE_DF_ABSENT_GATES
        guest_printf("hostile_df: IDT gates not present, executing ud2\n");
#else
        guest_printf("hostile_df: exception handlers in a page that is not present, executing "
                     "ud2\n");
#endif
        __asm__ volatile("ud2");
        guest_printf("FAIL: hostile_df: survived ud2\n");
        return 1;
}
