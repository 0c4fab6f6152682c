/* Offsets into struct vcpu_arch used by entry.S (assembler-safe; checked in vcpu.c). */
#ifndef ARCH_VCPU_CTX_H
#define ARCH_VCPU_CTX_H

#define VCPU_CTX_PC  248 /* after x0..x30 */
#define VCPU_CTX_ESR 264 /* after pc, pstate */

#endif
