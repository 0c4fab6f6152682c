/*
 * Hooks every arch implements for the generic kernel (declared once here, defined in
 * arch/<isa>/). The fake arch (arch/fake) implements them for host unit tests.
 */
#ifndef KEEL_ARCH_H
#define KEEL_ARCH_H

#include <stdnoreturn.h>

/* Stop this CPU for good (interrupts off, halt in a loop). */
noreturn void arch_halt(void);
/* Print the current CPU's registers on the console (used by panic). */
void arch_dump_state(void);

#endif
