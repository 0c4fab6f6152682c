/*
 * The canary of -fstack-protector-strong (kernel/stack_protector.c). stack_protector_init must
 * run before any protected function that returns after it: efi_main, itself unprotected, calls
 * it first.
 */
#ifndef KEEL_STACK_PROTECTOR_H
#define KEEL_STACK_PROTECTOR_H

#include <stdint.h>

void stack_protector_init(uint64_t seed);

#endif
