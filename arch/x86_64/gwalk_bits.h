/*
 * What the guest page-table walker's two files share (gwalk.c: the full walk, built for
 * size; code_peek.c: x86_code_peek, on the exit path): the entry bits and the CPU's 1 GiB
 * pages.
 */
#ifndef ARCH_X86_GWALK_BITS_H
#define ARCH_X86_GWALK_BITS_H

#include <stdbool.h>

#define PTE_P    (1ull << 0)
#define PTE_RW   (1ull << 1)
#define PTE_US   (1ull << 2)
#define PTE_A    (1ull << 5)
#define PTE_D    (1ull << 6)
#define PTE_PS   (1ull << 7)
#define PTE_NX   (1ull << 63)
#define PTE_ADDR 0x000ffffffffff000ull /* bits 51:12 */
#define LIN32    0xffffffffull

/* 1 GiB pages on this CPU (x86_gwalk_set_cpu; true until then). */
extern bool x86_gwalk_gbpages;

#endif
