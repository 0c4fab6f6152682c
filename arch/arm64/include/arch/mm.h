/* arm64: Keel runs on an identity map of its own (arch/arm64/mmu.c), like x86. */
#ifndef ARCH_MM_H
#define ARCH_MM_H

#include <keel/mm_identity.h>

#endif
