/*
 * Tests of the x86 instruction decoder (arch/x86_64/decode.c).
 *
 * The table of known encodings was produced once by assembling each listed instruction with
 * the GNU assembler (as --64 / --32, .code16) and reading the bytes and lengths back with
 * objdump (a throw-away script, not part of the build); the expected lengths are therefore
 * the assembler's, not the decoder's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <keel/check.h>
#include <keel/errno.h>
#include <arch/decode.h>

#include "test.h"

struct known {
        enum x86_cpu_mode mode;
        const char *hex;
        unsigned len;
        const char *gas;
};

/* clang-format off */
static const struct known known[] = {
	{X86_MODE_LONG64, "0fa2", 2, "cpuid"},
	{X86_MODE_LONG64, "0f01d9", 3, "vmmcall"},
	{X86_MODE_LONG64, "0f01c1", 3, "vmcall"},
	{X86_MODE_LONG64, "0f32", 2, "rdmsr"},
	{X86_MODE_LONG64, "0f30", 2, "wrmsr"},
	{X86_MODE_LONG64, "f4", 1, "hlt"},
	{X86_MODE_LONG64, "0f31", 2, "rdtsc"},
	{X86_MODE_LONG64, "0f01f9", 3, "rdtscp"},
	{X86_MODE_LONG64, "0f01d1", 3, "xsetbv"},
	{X86_MODE_LONG64, "e460", 2, "in $0x60,%al"},
	{X86_MODE_LONG64, "e560", 2, "in $0x60,%eax"},
	{X86_MODE_LONG64, "e680", 2, "out %al,$0x80"},
	{X86_MODE_LONG64, "e780", 2, "out %eax,$0x80"},
	{X86_MODE_LONG64, "ec", 1, "in (%dx),%al"},
	{X86_MODE_LONG64, "ed", 1, "in (%dx),%eax"},
	{X86_MODE_LONG64, "ee", 1, "out %al,(%dx)"},
	{X86_MODE_LONG64, "ef", 1, "out %eax,(%dx)"},
	{X86_MODE_LONG64, "66ed", 2, "in (%dx),%ax"},
	{X86_MODE_LONG64, "66ef", 2, "outw %ax,(%dx)"},
	{X86_MODE_LONG64, "f36c", 2, "rep insb"},
	{X86_MODE_LONG64, "66f36f", 3, "rep outsw"},
	{X86_MODE_LONG64, "f390", 2, "pause"},
	{X86_MODE_LONG64, "660fa2", 3, "data16 cpuid"},
	{X86_MODE_LONG64, "640fa2", 3, "fs cpuid"},
	{X86_MODE_LONG64, "8b0500100000", 6, "mov 0x1000(%rip),%eax"},
	{X86_MODE_LONG64, "890578563412", 6, "mov %eax,0x12345678(%rip)"},
	{X86_MODE_LONG64, "48c7051000000012000000", 11, "movq $0x12,0x10(%rip)"},
	{X86_MODE_LONG64, "c605f8ffffff12", 7, "movb $0x12,-8(%rip)"},
	{X86_MODE_LONG64, "8b0c8500100000", 7, "mov 0x1000(,%rax,4),%ecx"},
	{X86_MODE_LONG64, "4e8b14cd00100000", 8, "mov 0x1000(,%r9,8),%r10"},
	{X86_MODE_LONG64, "488b0424", 4, "mov (%rsp),%rax"},
	{X86_MODE_LONG64, "498b0424", 4, "mov (%r12),%rax"},
	{X86_MODE_LONG64, "488b4500", 4, "mov (%rbp),%rax"},
	{X86_MODE_LONG64, "498b4500", 4, "mov (%r13),%rax"},
	{X86_MODE_LONG64, "668b945880000000", 8, "mov 0x80(%rax,%rbx,2),%dx"},
	{X86_MODE_LONG64, "8807", 2, "mov %al,(%rdi)"},
	{X86_MODE_LONG64, "668907", 3, "mov %ax,(%rdi)"},
	{X86_MODE_LONG64, "8907", 2, "mov %eax,(%rdi)"},
	{X86_MODE_LONG64, "488907", 3, "mov %rax,(%rdi)"},
	{X86_MODE_LONG64, "4d8907", 3, "mov %r8,(%r15)"},
	{X86_MODE_LONG64, "8a1e", 2, "mov (%rsi),%bl"},
	{X86_MODE_LONG64, "408a36", 3, "mov (%rsi),%sil"},
	{X86_MODE_LONG64, "c707efbeadde", 6, "movl $0xdeadbeef,(%rdi)"},
	{X86_MODE_LONG64, "48c707ffffffff", 7, "movq $-1,(%rdi)"},
	{X86_MODE_LONG64, "66c7073412", 5, "movw $0x1234,(%rdi)"},
	{X86_MODE_LONG64, "c643405a", 4, "movb $0x5a,0x40(%rbx)"},
	{X86_MODE_LONG64, "48b8f0debc9a78563412", 10, "movabs $0x123456789abcdef0,%rax"},
	{X86_MODE_LONG64, "49bbf0debc9a78563412", 10, "movabs $0x123456789abcdef0,%r11"},
	{X86_MODE_LONG64, "b878563412", 5, "mov $0x12345678,%eax"},
	{X86_MODE_LONG64, "66b83412", 4, "mov $0x1234,%ax"},
	{X86_MODE_LONG64, "b412", 2, "mov $0x12,%ah"},
	{X86_MODE_LONG64, "a08877665544332211", 9, "movabs 0x1122334455667788,%al"},
	{X86_MODE_LONG64, "a18877665544332211", 9, "movabs 0x1122334455667788,%eax"},
	{X86_MODE_LONG64, "48a38877665544332211", 10, "movabs %rax,0x1122334455667788"},
	{X86_MODE_LONG64, "67a144332211", 6, "addr32 mov 0x11223344,%eax"},
	{X86_MODE_LONG64, "0fb607", 3, "movzbl (%rdi),%eax"},
	{X86_MODE_LONG64, "0fb707", 3, "movzwl (%rdi),%eax"},
	{X86_MODE_LONG64, "480fb64610", 5, "movzbq 0x10(%rsi),%rax"},
	{X86_MODE_LONG64, "0fbe07", 3, "movsbl (%rdi),%eax"},
	{X86_MODE_LONG64, "4c0fbf07", 4, "movswq (%rdi),%r8"},
	{X86_MODE_LONG64, "486307", 3, "movslq (%rdi),%rax"},
	{X86_MODE_LONG64, "65488b042510000000", 9, "mov %gs:0x10,%rax"},
	{X86_MODE_LONG64, "648b00", 3, "mov %fs:(%rax),%eax"},
	{X86_MODE_LONG64, "f0830001", 4, "lock addl $1,(%rax)"},
	{X86_MODE_LONG64, "f00fb10a", 4, "lock cmpxchg %ecx,(%rdx)"},
	{X86_MODE_LONG64, "f0480fc70f", 5, "lock cmpxchg16b (%rdi)"},
	{X86_MODE_LONG64, "8703", 2, "xchg %eax,(%rbx)"},
	{X86_MODE_LONG64, "f60080", 3, "testb $0x80,(%rax)"},
	{X86_MODE_LONG64, "f70078563412", 6, "testl $0x12345678,(%rax)"},
	{X86_MODE_LONG64, "66f7003412", 5, "testw $0x1234,(%rax)"},
	{X86_MODE_LONG64, "a978563412", 5, "test $0x12345678,%eax"},
	{X86_MODE_LONG64, "f710", 2, "notl (%rax)"},
	{X86_MODE_LONG64, "69c800100000", 6, "imul $0x1000,%eax,%ecx"},
	{X86_MODE_LONG64, "6bc810", 3, "imul $0x10,%eax,%ecx"},
	{X86_MODE_LONG64, "6878563412", 5, "push $0x12345678"},
	{X86_MODE_LONG64, "6a12", 2, "push $0x12"},
	{X86_MODE_LONG64, "66683412", 4, "pushw $0x1234"},
	{X86_MODE_LONG64, "e8fb000000", 5, "call .+0x100"},
	{X86_MODE_LONG64, "e9fb000000", 5, "jmp .+0x100"},
	{X86_MODE_LONG64, "eb00", 2, "jmp .+2"},
	{X86_MODE_LONG64, "0f84fa010000", 6, "je .+0x200"},
	{X86_MODE_LONG64, "7500", 2, "jne .+2"},
	{X86_MODE_LONG64, "c3", 1, "ret"},
	{X86_MODE_LONG64, "c20800", 3, "ret $8"},
	{X86_MODE_LONG64, "cb", 1, "lret"},
	{X86_MODE_LONG64, "c8100002", 4, "enter $0x10,$2"},
	{X86_MODE_LONG64, "c9", 1, "leave"},
	{X86_MODE_LONG64, "cc", 1, "int3"},
	{X86_MODE_LONG64, "cd80", 2, "int $0x80"},
	{X86_MODE_LONG64, "0f05", 2, "syscall"},
	{X86_MODE_LONG64, "0f07", 2, "sysret"},
	{X86_MODE_LONG64, "48cf", 2, "iretq"},
	{X86_MODE_LONG64, "90", 1, "nop"},
	{X86_MODE_LONG64, "660f1f0400", 5, "nopw 0x0(%rax,%rax,1)"},
	{X86_MODE_LONG64, "0f1f00", 3, "nopl 0x0(%rax)"},
	{X86_MODE_LONG64, "f30f1efa", 4, "endbr64"},
	{X86_MODE_LONG64, "488d4cd810", 5, "lea 0x10(%rax,%rbx,8),%rcx"},
	{X86_MODE_LONG64, "488d0580ffffff", 7, "lea -0x80(%rip),%rax"},
	{X86_MODE_LONG64, "0f20c0", 3, "mov %cr0,%rax"},
	{X86_MODE_LONG64, "0f22d8", 3, "mov %rax,%cr3"},
	{X86_MODE_LONG64, "440f20c0", 4, "mov %cr8,%rax"},
	{X86_MODE_LONG64, "0f21f8", 3, "mov %dr7,%rax"},
	{X86_MODE_LONG64, "0f23c0", 3, "mov %rax,%dr0"},
	{X86_MODE_LONG64, "0f0138", 3, "invlpg (%rax)"},
	{X86_MODE_LONG64, "0f09", 2, "wbinvd"},
	{X86_MODE_LONG64, "0f08", 2, "invd"},
	{X86_MODE_LONG64, "0f06", 2, "clts"},
	{X86_MODE_LONG64, "0f01f0", 3, "lmsw %ax"},
	{X86_MODE_LONG64, "0f01e0", 3, "smsw %eax"},
	{X86_MODE_LONG64, "0f0110", 3, "lgdt (%rax)"},
	{X86_MODE_LONG64, "0f0118", 3, "lidt (%rax)"},
	{X86_MODE_LONG64, "0f01f8", 3, "swapgs"},
	{X86_MODE_LONG64, "0f01c8", 3, "monitor"},
	{X86_MODE_LONG64, "0f01c9", 3, "mwait"},
	{X86_MODE_LONG64, "0f01d8", 3, "vmrun"},
	{X86_MODE_LONG64, "0f01da", 3, "vmload"},
	{X86_MODE_LONG64, "0f01db", 3, "vmsave"},
	{X86_MODE_LONG64, "0f01dc", 3, "stgi"},
	{X86_MODE_LONG64, "0f01dd", 3, "clgi"},
	{X86_MODE_LONG64, "0f01df", 3, "invlpga"},
	{X86_MODE_LONG64, "0f01de", 3, "skinit"},
	{X86_MODE_LONG64, "0f01d0", 3, "xgetbv"},
	{X86_MODE_LONG64, "0f0b", 2, "ud2"},
	{X86_MODE_LONG64, "0f33", 2, "rdpmc"},
	{X86_MODE_LONG64, "0fc7f0", 3, "rdrand %eax"},
	{X86_MODE_LONG64, "480fc7f8", 4, "rdseed %rax"},
	{X86_MODE_LONG64, "f30fc7f8", 4, "rdpid %rax"},
	{X86_MODE_LONG64, "0fc8", 2, "bswap %eax"},
	{X86_MODE_LONG64, "490fcc", 3, "bswap %r12"},
	{X86_MODE_LONG64, "0fa40304", 4, "shld $4,%eax,(%rbx)"},
	{X86_MODE_LONG64, "0fad03", 3, "shrd %cl,%eax,(%rbx)"},
	{X86_MODE_LONG64, "0fba2003", 4, "bt $3,(%rax)"},
	{X86_MODE_LONG64, "480fba283f", 5, "btsq $63,(%rax)"},
	{X86_MODE_LONG64, "480f4508", 4, "cmovne (%rax),%rcx"},
	{X86_MODE_LONG64, "0f9400", 3, "sete (%rax)"},
	{X86_MODE_LONG64, "f3480fb800", 5, "popcnt (%rax),%rax"},
	{X86_MODE_LONG64, "f3480fbdd8", 5, "lzcnt %rax,%rbx"},
	{X86_MODE_LONG64, "f30fbc08", 4, "tzcnt (%rax),%ecx"},
	{X86_MODE_LONG64, "660f7ec0", 4, "movd %xmm0,%eax"},
	{X86_MODE_LONG64, "66480f7ec8", 5, "movq %xmm1,%rax"},
	{X86_MODE_LONG64, "660f6f00", 4, "movdqa (%rax),%xmm0"},
	{X86_MODE_LONG64, "f30f7f00", 4, "movdqu %xmm0,(%rax)"},
	{X86_MODE_LONG64, "440f280d10000000", 8, "movaps 0x10(%rip),%xmm9"},
	{X86_MODE_LONG64, "660f70c81b", 5, "pshufd $0x1b,%xmm0,%xmm1"},
	{X86_MODE_LONG64, "660f73da04", 5, "psrldq $4,%xmm2"},
	{X86_MODE_LONG64, "660f380018", 5, "pshufb (%rax),%xmm3"},
	{X86_MODE_LONG64, "660f3a0fd103", 6, "palignr $3,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "660f3a16c001", 6, "pextrd $1,%xmm0,%eax"},
	{X86_MODE_LONG64, "66480f3a22c001", 7, "pinsrq $1,%rax,%xmm0"},
	{X86_MODE_LONG64, "660f3a0bd104", 6, "roundsd $4,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "f20f38f0d8", 5, "crc32b %al,%ebx"},
	{X86_MODE_LONG64, "f2480f38f118", 6, "crc32q (%rax),%rbx"},
	{X86_MODE_LONG64, "0f38f000", 4, "movbe (%rax),%eax"},
	{X86_MODE_LONG64, "660f38dcd1", 5, "aesenc %xmm1,%xmm2"},
	{X86_MODE_LONG64, "660f3a44d111", 6, "pclmulqdq $0x11,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "0fc2d101", 4, "cmpps $1,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "0fc61844", 4, "shufps $0x44,(%rax),%xmm3"},
	{X86_MODE_LONG64, "660f78c10804", 6, "extrq $4,$8,%xmm1"},
	{X86_MODE_LONG64, "f20f78ca0804", 6, "insertq $4,$8,%xmm2,%xmm1"},
	{X86_MODE_LONG64, "660f79ca", 4, "extrq %xmm2,%xmm1"},
	{X86_MODE_LONG64, "0f0d08", 3, "prefetchw (%rax)"},
	{X86_MODE_LONG64, "0f1808", 3, "prefetcht0 (%rax)"},
	{X86_MODE_LONG64, "0fae38", 3, "clflush (%rax)"},
	{X86_MODE_LONG64, "0faee8", 3, "lfence"},
	{X86_MODE_LONG64, "0faef0", 3, "mfence"},
	{X86_MODE_LONG64, "0faef8", 3, "sfence"},
	{X86_MODE_LONG64, "0fae20", 3, "xsave (%rax)"},
	{X86_MODE_LONG64, "480fae00", 4, "fxsave64 (%rax)"},
	{X86_MODE_LONG64, "dd00", 2, "fldl (%rax)"},
	{X86_MODE_LONG64, "d8c1", 2, "fadd %st(1),%st"},
	{X86_MODE_LONG64, "dfe0", 2, "fnstsw %ax"},
	{X86_MODE_LONG64, "df4510", 3, "fild 0x10(%rbp)"},
	{X86_MODE_LONG64, "c5fd6f00", 4, "vmovdqa (%rax),%ymm0"},
	{X86_MODE_LONG64, "c5fe7f0f", 4, "vmovdqu %ymm1,(%rdi)"},
	{X86_MODE_LONG64, "c5e9fed9", 4, "vpaddd %xmm1,%xmm2,%xmm3"},
	{X86_MODE_LONG64, "c4412dfed9", 5, "vpaddd %ymm9,%ymm10,%ymm11"},
	{X86_MODE_LONG64, "c578283d00010000", 8, "vmovaps 0x100(%rip),%xmm15"},
	{X86_MODE_LONG64, "c5f877", 3, "vzeroupper"},
	{X86_MODE_LONG64, "c5fc77", 3, "vzeroall"},
	{X86_MODE_LONG64, "c5fd70c81b", 5, "vpshufd $0x1b,%ymm0,%ymm1"},
	{X86_MODE_LONG64, "c4e3fd00c84e", 6, "vpermq $0x4e,%ymm0,%ymm1"},
	{X86_MODE_LONG64, "c4e36d02d9f0", 6, "vpblendd $0xf0,%ymm1,%ymm2,%ymm3"},
	{X86_MODE_LONG64, "c5f1c4d002", 5, "vpinsrw $2,%eax,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "c5ecc2d901", 5, "vcmpps $1,%ymm1,%ymm2,%ymm3"},
	{X86_MODE_LONG64, "c4e26db8d9", 5, "vfmadd231ps %ymm1,%ymm2,%ymm3"},
	{X86_MODE_LONG64, "c4e27d1808", 5, "vbroadcastss (%rax),%ymm1"},
	{X86_MODE_LONG64, "c4e260f2c8", 5, "andn %eax,%ebx,%ecx"},
	{X86_MODE_LONG64, "c4e2f8f70b", 5, "bextr %rax,(%rbx),%rcx"},
	{X86_MODE_LONG64, "c4e2f9f7cb", 5, "shlx %rax,%rbx,%rcx"},
	{X86_MODE_LONG64, "c4e37bf0d805", 6, "rorx $5,%eax,%ebx"},
	{X86_MODE_LONG64, "c442b3f5d0", 5, "pdep %r8,%r9,%r10"},
	{X86_MODE_LONG64, "62f16d48fed9", 6, "vpaddd %zmm1,%zmm2,%zmm3"},
	{X86_MODE_LONG64, "62f16d49fe5801", 7, "vpaddd 0x40(%rax),%zmm2,%zmm3{%k1}"},
	{X86_MODE_LONG64, "6261fe486f3c24", 7, "vmovdqu64 (%rsp),%zmm31"},
	{X86_MODE_LONG64, "62f36d4825d9ff", 7, "vpternlogd $0xff,%zmm1,%zmm2,%zmm3"},
	{X86_MODE_LONG64, "62f17d4870c81b", 7, "vpshufd $0x1b,%zmm0,%zmm1"},
	{X86_MODE_LONG64, "c5f893c1", 4, "kmovw %k1,%eax"},
	{X86_MODE_LONG64, "62f56c4858d9", 6, "vaddph %zmm1,%zmm2,%zmm3"},
	{X86_MODE_LONG64, "62f67d4813d1", 6, "vcvtph2psx %ymm1,%zmm2"},
	{X86_MODE_LONG64, "0f0e", 2, "femms"},
	{X86_MODE_LONG64, "0f0fd19e", 4, "pfadd %mm1,%mm2"},
	{X86_MODE_LONG64, "0f0f180d", 4, "pi2fd (%rax),%mm3"},
	{X86_MODE_LONG64, "c7f8fa000000", 6, "xbegin .+0x100"},
	{X86_MODE_LONG64, "c6f803", 3, "xabort $3"},
	{X86_MODE_LONG64, "0f01d5", 3, "xend"},
	{X86_MODE_LONG64, "98", 1, "cwtl"},
	{X86_MODE_LONG64, "4899", 2, "cqto"},
	{X86_MODE_LONG64, "4898", 2, "cltq"},
	{X86_MODE_LONG64, "48ab", 2, "stosq"},
	{X86_MODE_LONG64, "a4", 1, "movsb"},
	{X86_MODE_LONG64, "48a7", 2, "cmpsq"},
	{X86_MODE_LONG64, "ae", 1, "scasb"},
	{X86_MODE_LONG64, "ad", 1, "lodsl"},
	{X86_MODE_LONG64, "9c", 1, "pushf"},
	{X86_MODE_LONG64, "9d", 1, "popf"},
	{X86_MODE_LONG64, "9e", 1, "sahf"},
	{X86_MODE_LONG64, "9f", 1, "lahf"},
	{X86_MODE_LONG64, "f5", 1, "cmc"},
	{X86_MODE_LONG64, "f8", 1, "clc"},
	{X86_MODE_LONG64, "f9", 1, "stc"},
	{X86_MODE_LONG64, "fa", 1, "cli"},
	{X86_MODE_LONG64, "fb", 1, "sti"},
	{X86_MODE_LONG64, "fc", 1, "cld"},
	{X86_MODE_LONG64, "fd", 1, "std"},
	{X86_MODE_LONG64, "f1", 1, "int1"},
	{X86_MODE_LONG64, "d7", 1, "xlat"},
	{X86_MODE_LONG64, "e200", 2, "loop .+2"},
	{X86_MODE_LONG64, "e300", 2, "jrcxz .+2"},
	{X86_MODE_LONG64, "0fa0", 2, "push %fs"},
	{X86_MODE_LONG64, "0fa9", 2, "pop %gs"},
	{X86_MODE_LONG64, "4157", 2, "push %r15"},
	{X86_MODE_LONG64, "5b", 1, "pop %rbx"},
	{X86_MODE_LONG64, "ff30", 2, "push (%rax)"},
	{X86_MODE_LONG64, "ff10", 2, "call *(%rax)"},
	{X86_MODE_LONG64, "ffd0", 2, "call *%rax"},
	{X86_MODE_LONG64, "ff2510000000", 6, "jmp *0x10(%rip)"},
	{X86_MODE_LONG64, "ff28", 2, "ljmp *(%rax)"},
	{X86_MODE_LONG64, "ff18", 2, "lcall *(%rax)"},
	{X86_MODE_LONG64, "ff00", 2, "incl (%rax)"},
	{X86_MODE_LONG64, "49ffc9", 3, "decq %r9"},
	{X86_MODE_LONG64, "f718", 2, "negl (%rax)"},
	{X86_MODE_LONG64, "c12004", 3, "shll $4,(%rax)"},
	{X86_MODE_LONG64, "48d338", 3, "sarq %cl,(%rax)"},
	{X86_MODE_LONG64, "d000", 2, "rolb $1,(%rax)"},
	{X86_MODE_LONG64, "d1d8", 2, "rcr $1,%eax"},
	{X86_MODE_LONG64, "4883d001", 4, "adc $1,%rax"},
	{X86_MODE_LONG64, "4881d900100000", 7, "sbb $0x1000,%rcx"},
	{X86_MODE_LONG64, "3c7f", 2, "cmp $0x7f,%al"},
	{X86_MODE_LONG64, "660d3412", 4, "or $0x1234,%ax"},
	{X86_MODE_LONG64, "4d31c1", 3, "xor %r8,%r9"},
	{X86_MODE_LONG64, "442a10", 3, "sub (%rax),%r10b"},
	{X86_MODE_LONG64, "4020e7", 3, "and %spl,%dil"},
	{X86_MODE_LONG64, "480fc103", 4, "xadd %rax,(%rbx)"},
	{X86_MODE_LONG64, "0fc708", 3, "cmpxchg8b (%rax)"},
	{X86_MODE_LONG64, "660f02d8", 4, "lar %ax,%bx"},
	{X86_MODE_LONG64, "0f0308", 3, "lsl (%rax),%ecx"},
	{X86_MODE_LONG64, "660f00c0", 4, "sldt %ax"},
	{X86_MODE_LONG64, "0f00c8", 3, "str %eax"},
	{X86_MODE_LONG64, "0f00e0", 3, "verr %ax"},
	{X86_MODE_LONG64, "0f00d8", 3, "ltr %ax"},
	{X86_MODE_LONG64, "0f34", 2, "sysenter"},
	{X86_MODE_LONG64, "0f35", 2, "sysexit"},
	{X86_MODE_LONG64, "0faa", 2, "rsm"},
	{X86_MODE_LONG64, "0f37", 2, "getsec"},
	{X86_MODE_LONG64, "0fb9d8", 3, "ud1 %eax,%ebx"},
	{X86_MODE_LONG64, "0f01fc", 3, "clzero"},
	{X86_MODE_LONG64, "0f01fb", 3, "mwaitx"},
	{X86_MODE_LONG64, "0f01fa", 3, "monitorx"},
	{X86_MODE_LONG64, "0f01fd", 3, "rdpru"},
	{X86_MODE_LONG64, "f30f09", 3, "wbnoinvd"},
	{X86_MODE_LONG64, "f3480faec0", 5, "rdfsbase %rax"},
	{X86_MODE_LONG64, "f3490faed8", 5, "wrgsbase %r8"},
	{X86_MODE_LONG64, "0fc303", 3, "movnti %eax,(%rbx)"},
	{X86_MODE_LONG64, "0ff7d1", 3, "maskmovq %mm1,%mm2"},
	{X86_MODE_LONG64, "660fd7c1", 4, "pmovmskb %xmm1,%eax"},
	{X86_MODE_LONG64, "660fc5c101", 5, "pextrw $1,%xmm1,%eax"},
	{X86_MODE_LONG64, "660fc40801", 5, "pinsrw $1,(%rax),%xmm1"},
	{X86_MODE_LONG64, "0f77", 2, "emms"},
	{X86_MODE_LONG64, "660f3817d1", 5, "ptest %xmm1,%xmm2"},
	{X86_MODE_LONG64, "660f3a0ed111", 6, "pblendw $0x11,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "0f3accd101", 5, "sha1rnds4 $1,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "0f38cbd1", 4, "sha256rnds2 %xmm0,%xmm1,%xmm2"},
	{X86_MODE_LONG64, "8cc0", 2, "mov %es,%eax"},
	{X86_MODE_LONG64, "8ed8", 2, "mov %eax,%ds"},
	{X86_MODE_LONG64, "8c10", 2, "mov %ss,(%rax)"},
	{X86_MODE_LONG64, "4990", 2, "xchg %r8,%rax"},
	{X86_MODE_LONG64, "4c63c0", 3, "movsxd %eax,%r8"},
	{X86_MODE_PROT32, "0fa2", 2, "cpuid"},
	{X86_MODE_PROT32, "0f01d9", 3, "vmmcall"},
	{X86_MODE_PROT32, "0f32", 2, "rdmsr"},
	{X86_MODE_PROT32, "f4", 1, "hlt"},
	{X86_MODE_PROT32, "e471", 2, "in $0x71,%al"},
	{X86_MODE_PROT32, "e670", 2, "out %al,$0x70"},
	{X86_MODE_PROT32, "66ed", 2, "in (%dx),%ax"},
	{X86_MODE_PROT32, "ef", 1, "out %eax,(%dx)"},
	{X86_MODE_PROT32, "f36e", 2, "rep outsb"},
	{X86_MODE_PROT32, "a100100000", 5, "mov 0x1000,%eax"},
	{X86_MODE_PROT32, "a378563412", 5, "mov %eax,0x12345678"},
	{X86_MODE_PROT32, "8b4510", 3, "mov 0x10(%ebp),%eax"},
	{X86_MODE_PROT32, "8b0424", 3, "mov (%esp),%eax"},
	{X86_MODE_PROT32, "8b148d00100000", 7, "mov 0x1000(,%ecx,4),%edx"},
	{X86_MODE_PROT32, "8807", 2, "mov %al,(%edi)"},
	{X86_MODE_PROT32, "66c7073412", 5, "movw $0x1234,(%edi)"},
	{X86_MODE_PROT32, "c744731078563412", 8, "movl $0x12345678,0x10(%ebx,%esi,2)"},
	{X86_MODE_PROT32, "a144332211", 5, "mov 0x11223344,%eax"},
	{X86_MODE_PROT32, "a244332211", 5, "mov %al,0x11223344"},
	{X86_MODE_PROT32, "67a12211", 4, "addr16 mov 0x1122,%eax"},
	{X86_MODE_PROT32, "678b00", 3, "addr16 mov (%bx,%si),%eax"},
	{X86_MODE_PROT32, "67668b4610", 5, "addr16 mov 0x10(%bp),%ax"},
	{X86_MODE_PROT32, "678a873412", 5, "addr16 mov 0x1234(%bx),%al"},
	{X86_MODE_PROT32, "66b83412", 4, "mov $0x1234,%ax"},
	{X86_MODE_PROT32, "bb78563412", 5, "mov $0x12345678,%ebx"},
	{X86_MODE_PROT32, "0fb608", 3, "movzbl (%eax),%ecx"},
	{X86_MODE_PROT32, "0fbf08", 3, "movswl (%eax),%ecx"},
	{X86_MODE_PROT32, "06", 1, "push %es"},
	{X86_MODE_PROT32, "07", 1, "pop %es"},
	{X86_MODE_PROT32, "0e", 1, "push %cs"},
	{X86_MODE_PROT32, "16", 1, "push %ss"},
	{X86_MODE_PROT32, "17", 1, "pop %ss"},
	{X86_MODE_PROT32, "1e", 1, "push %ds"},
	{X86_MODE_PROT32, "1f", 1, "pop %ds"},
	{X86_MODE_PROT32, "27", 1, "daa"},
	{X86_MODE_PROT32, "2f", 1, "das"},
	{X86_MODE_PROT32, "37", 1, "aaa"},
	{X86_MODE_PROT32, "3f", 1, "aas"},
	{X86_MODE_PROT32, "60", 1, "pusha"},
	{X86_MODE_PROT32, "61", 1, "popa"},
	{X86_MODE_PROT32, "6203", 2, "bound %eax,(%ebx)"},
	{X86_MODE_PROT32, "6303", 2, "arpl %ax,(%ebx)"},
	{X86_MODE_PROT32, "9a785634121000", 7, "lcall $0x10,$0x12345678"},
	{X86_MODE_PROT32, "ea785634121000", 7, "ljmp $0x10,$0x12345678"},
	{X86_MODE_PROT32, "ce", 1, "into"},
	{X86_MODE_PROT32, "d40a", 2, "aam"},
	{X86_MODE_PROT32, "d50a", 2, "aad $10"},
	{X86_MODE_PROT32, "c400", 2, "les (%eax),%eax"},
	{X86_MODE_PROT32, "c500", 2, "lds (%eax),%eax"},
	{X86_MODE_PROT32, "40", 1, "inc %eax"},
	{X86_MODE_PROT32, "4f", 1, "dec %edi"},
	{X86_MODE_PROT32, "6878563412", 5, "push $0x12345678"},
	{X86_MODE_PROT32, "6a05", 2, "push $5"},
	{X86_MODE_PROT32, "e8fb000000", 5, "call .+0x100"},
	{X86_MODE_PROT32, "e9fb000000", 5, "jmp .+0x100"},
	{X86_MODE_PROT32, "66e8fc00", 4, "data16 call .+0x100"},
	{X86_MODE_PROT32, "c8080000", 4, "enter $8,$0"},
	{X86_MODE_PROT32, "c20400", 3, "ret $4"},
	{X86_MODE_PROT32, "c5fd6f00", 4, "vmovdqa (%eax),%ymm0"},
	{X86_MODE_PROT32, "c5e9fed9", 4, "vpaddd %xmm1,%xmm2,%xmm3"},
	{X86_MODE_PROT32, "c5f877", 3, "vzeroupper"},
	{X86_MODE_PROT32, "c5f970c81b", 5, "vpshufd $0x1b,%xmm0,%xmm1"},
	{X86_MODE_PROT32, "62f16d48fed9", 6, "vpaddd %zmm1,%zmm2,%zmm3"},
	{X86_MODE_PROT32, "c4e260f2c8", 5, "andn %eax,%ebx,%ecx"},
	{X86_MODE_PROT32, "f0ff00", 3, "lock incl (%eax)"},
	{X86_MODE_PROT32, "0f20c0", 3, "mov %cr0,%eax"},
	{X86_MODE_PROT32, "0f22e0", 3, "mov %eax,%cr4"},
	{X86_MODE_PROT32, "0f0138", 3, "invlpg (%eax)"},
	{X86_MODE_PROT32, "0f0110", 3, "lgdtl (%eax)"},
	{X86_MODE_PROT32, "ff28", 2, "ljmp *(%eax)"},
	{X86_MODE_PROT32, "0f34", 2, "sysenter"},
	{X86_MODE_PROT32, "dd00", 2, "fldl (%eax)"},
	{X86_MODE_PROT32, "f60001", 3, "testb $1,(%eax)"},
	{X86_MODE_PROT32, "f70000000100", 6, "testl $0x10000,(%eax)"},
	{X86_MODE_PROT32, "69d878563412", 6, "imul $0x12345678,%eax,%ebx"},
	{X86_MODE_PROT32, "0f31", 2, "rdtsc"},
	{X86_MODE_PROT32, "0f01d8", 3, "vmrun"},
	{X86_MODE_REAL16, "0fa2", 2, "cpuid"},
	{X86_MODE_REAL16, "f4", 1, "hlt"},
	{X86_MODE_REAL16, "e460", 2, "in $0x60,%al"},
	{X86_MODE_REAL16, "e680", 2, "out %al,$0x80"},
	{X86_MODE_REAL16, "ec", 1, "in (%dx),%al"},
	{X86_MODE_REAL16, "ef", 1, "out %ax,(%dx)"},
	{X86_MODE_REAL16, "a13412", 3, "mov 0x1234,%ax"},
	{X86_MODE_REAL16, "a33412", 3, "mov %ax,0x1234"},
	{X86_MODE_REAL16, "8b00", 2, "mov (%bx,%si),%ax"},
	{X86_MODE_REAL16, "8a01", 2, "mov (%bx,%di),%al"},
	{X86_MODE_REAL16, "8b02", 2, "mov (%bp,%si),%ax"},
	{X86_MODE_REAL16, "8b03", 2, "mov (%bp,%di),%ax"},
	{X86_MODE_REAL16, "8b04", 2, "mov (%si),%ax"},
	{X86_MODE_REAL16, "8b05", 2, "mov (%di),%ax"},
	{X86_MODE_REAL16, "8b4610", 3, "mov 0x10(%bp),%ax"},
	{X86_MODE_REAL16, "8b07", 2, "mov (%bx),%ax"},
	{X86_MODE_REAL16, "8b803412", 4, "mov 0x1234(%bx,%si),%ax"},
	{X86_MODE_REAL16, "8b56fe", 3, "mov -2(%bp),%dx"},
	{X86_MODE_REAL16, "c7073412", 4, "movw $0x1234,(%bx)"},
	{X86_MODE_REAL16, "c6441012", 4, "movb $0x12,0x10(%si)"},
	{X86_MODE_REAL16, "b83412", 3, "mov $0x1234,%ax"},
	{X86_MODE_REAL16, "66b878563412", 6, "mov $0x12345678,%eax"},
	{X86_MODE_REAL16, "6766a178563412", 7, "addr32 mov 0x12345678,%eax"},
	{X86_MODE_REAL16, "67668b00", 4, "addr32 mov (%eax),%eax"},
	{X86_MODE_REAL16, "67668b449810", 6, "addr32 mov 0x10(%eax,%ebx,4),%eax"},
	{X86_MODE_REAL16, "268b05", 3, "mov %es:(%di),%ax"},
	{X86_MODE_REAL16, "0fb607", 3, "movzbw (%bx),%ax"},
	{X86_MODE_REAL16, "660fb607", 4, "movzbl (%bx),%eax"},
	{X86_MODE_REAL16, "683412", 3, "push $0x1234"},
	{X86_MODE_REAL16, "666878563412", 6, "pushl $0x12345678"},
	{X86_MODE_REAL16, "e8fd00", 3, "call .+0x100"},
	{X86_MODE_REAL16, "e9fd00", 3, "jmp .+0x100"},
	{X86_MODE_REAL16, "eb00", 2, "jmp .+2"},
	{X86_MODE_REAL16, "9a34121000", 5, "lcall $0x10,$0x1234"},
	{X86_MODE_REAL16, "ea5be000f0", 5, "ljmp $0xf000,$0xe05b"},
	{X86_MODE_REAL16, "66ea785634120800", 8, "ljmpl $0x8,$0x12345678"},
	{X86_MODE_REAL16, "cd10", 2, "int $0x10"},
	{X86_MODE_REAL16, "cf", 1, "iret"},
	{X86_MODE_REAL16, "0f0117", 3, "lgdtw (%bx)"},
	{X86_MODE_REAL16, "0f011c", 3, "lidt (%si)"},
	{X86_MODE_REAL16, "0f20c0", 3, "mov %cr0,%eax"},
	{X86_MODE_REAL16, "0f22c0", 3, "mov %eax,%cr0"},
	{X86_MODE_REAL16, "f3a4", 2, "rep movsb"},
	{X86_MODE_REAL16, "c407", 2, "les (%bx),%ax"},
	{X86_MODE_REAL16, "c57710", 3, "lds 0x10(%bx),%si"},
	{X86_MODE_REAL16, "6207", 2, "bound %ax,(%bx)"},
	{X86_MODE_REAL16, "c8040001", 4, "enter $4,$1"},
	{X86_MODE_REAL16, "c20200", 3, "ret $2"},
	{X86_MODE_REAL16, "f60701", 3, "testb $1,(%bx)"},
	{X86_MODE_REAL16, "f7070080", 4, "testw $0x8000,(%bx)"},
	{X86_MODE_REAL16, "69d83412", 4, "imul $0x1234,%ax,%bx"},
	{X86_MODE_REAL16, "0f30", 2, "wrmsr"},
	{X86_MODE_REAL16, "0f32", 2, "rdmsr"},
	{X86_MODE_REAL16, "0f01d9", 3, "vmmcall"},
	/* Hand-written: LOCK MOV CR0 is AMD's alias of MOV CR8 (not accepted by gas in .code32). */
	{X86_MODE_PROT32, "f00f20c0", 4, "lock mov %cr0,%eax (mov %cr8,%eax)"},
	/* 16-bit protected mode behaves like real mode for lengths. */
	{X86_MODE_PROT16, "8b803412", 4, "mov 0x1234(%bx,%si),%ax"},
	{X86_MODE_PROT16, "66b878563412", 6, "mov $0x12345678,%eax"},
	/* Maximum length: 14 prefixes and a one-byte opcode. */
	{X86_MODE_LONG64, "6666666666666666666666666666" "90", 15, "14 x data16 nop"},
	/* 3DNow! and XOP. */
	{X86_MODE_LONG64, "0f0f009e", 4, "pfadd (%rax),%mm0"},
	{X86_MODE_LONG64, "8fe878c0c001", 6, "vprotb $1,%xmm0,%xmm0"},
	{X86_MODE_LONG64, "8fe97890c0", 5, "vprotb %xmm0,%xmm0,%xmm0"},
	{X86_MODE_LONG64, "8fea78100000000010", 9, "bextr $0x10000000,(%rax),%eax"},
	/* AMD: 66 on a near branch in 64-bit mode gives rel16. */
	{X86_MODE_LONG64, "66e80001", 4, "callw .+0x104"},
	{X86_MODE_LONG64, "660f840001", 5, "jew .+0x105"},
};
/* clang-format on */

static size_t unhex(const char *hex, uint8_t *out, size_t max)
{
        size_t n = 0;

        while (hex[0] && hex[1] && n < max) {
                unsigned v;

                sscanf(hex, "%2x", &v);
                out[n++] = (uint8_t)v;
                hex += 2;
        }
        return n;
}

/* Decode exactly `n` bytes held in a heap buffer of that size, so that ASan catches any read
 * beyond `avail`. */
static int decode_exact(const uint8_t *bytes, size_t n, enum x86_cpu_mode mode,
                        struct x86_insn *out)
{
        uint8_t *copy = malloc(n ? n : 1);
        int r;

        memcpy(copy, bytes, n);
        r = x86_decode(copy, n, mode, out);
        free(copy);
        return r;
}

static int dec(enum x86_cpu_mode mode, const char *hex, struct x86_insn *out)
{
        uint8_t b[32];
        size_t n = unhex(hex, b, sizeof(b));

        return decode_exact(b, n, mode, out);
}

TEST(known_lengths)
{
        unsigned checked = 0;

        for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                const struct known *k = &known[i];
                uint8_t b[32];
                size_t n = unhex(k->hex, b, sizeof(b));
                struct x86_insn in;
                int r;

                ASSERT_TRUE(n == k->len);
                r = decode_exact(b, n, k->mode, &in);
                if (r != 0 || in.len != k->len) {
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s (%s, mode %d): r=%d len=%u want %u",
                                     k->gas, k->hex, k->mode, r, in.len, k->len);
                        continue;
                }
                /* Trailing bytes do not change the result. */
                memset(b + n, 0xcc, sizeof(b) - n);
                r = x86_decode(b, sizeof(b), k->mode, &in);
                EXPECT_EQ(r, 0);
                EXPECT_EQ(in.len, k->len);
                checked++;
        }
        EXPECT_TRUE(checked >= 80);
}

TEST(truncated_is_eagain_at_every_cut)
{
        for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
                const struct known *k = &known[i];
                uint8_t b[32];
                size_t n = unhex(k->hex, b, sizeof(b));
                struct x86_insn in;

                for (size_t cut = 0; cut < n; cut++) {
                        int r = decode_exact(b, cut, k->mode, &in);

                        if (r != -KEEL_EAGAIN)
                                TEST_FAIL_AT(__FILE__, __LINE__, "%s cut at %zu: r=%d", k->gas, cut,
                                             r);
                }
        }
}

TEST(intercepted_instructions_identified)
{
        static const struct {
                enum x86_cpu_mode mode;
                const char *hex;
                unsigned len;
                enum x86_insn_id id;
        } t[] = {
            {X86_MODE_LONG64, "0fa2", 2, X86_INSN_CPUID},
            {X86_MODE_LONG64, "660fa2", 3, X86_INSN_CPUID},
            {X86_MODE_LONG64, "2e480fa2", 4, X86_INSN_CPUID},
            {X86_MODE_REAL16, "0fa2", 2, X86_INSN_CPUID},
            {X86_MODE_LONG64, "0f01d9", 3, X86_INSN_VMMCALL},
            {X86_MODE_PROT32, "0f01d9", 3, X86_INSN_VMMCALL},
            {X86_MODE_LONG64, "0f01c1", 3, X86_INSN_VMCALL},
            {X86_MODE_LONG64, "0f32", 2, X86_INSN_RDMSR},
            {X86_MODE_LONG64, "0f30", 2, X86_INSN_WRMSR},
            {X86_MODE_LONG64, "f4", 1, X86_INSN_HLT},
            {X86_MODE_LONG64, "f390", 2, X86_INSN_PAUSE},
            {X86_MODE_LONG64, "90", 1, X86_INSN_OTHER},
            {X86_MODE_LONG64, "f34190", 3, X86_INSN_OTHER}, /* xchg r8d, eax */
            {X86_MODE_LONG64, "0f31", 2, X86_INSN_RDTSC},
            {X86_MODE_LONG64, "0f01f9", 3, X86_INSN_RDTSCP},
            {X86_MODE_LONG64, "0f01d1", 3, X86_INSN_XSETBV},
            {X86_MODE_LONG64, "0f0138", 3, X86_INSN_INVLPG},
            {X86_MODE_LONG64, "0f01f8", 3, X86_INSN_OTHER}, /* swapgs */
            {X86_MODE_LONG64, "f30f01d9", 4, X86_INSN_OTHER},
            {X86_MODE_LONG64, "0f09", 2, X86_INSN_WBINVD},
            {X86_MODE_LONG64, "0f08", 2, X86_INSN_INVD},
            {X86_MODE_LONG64, "e460", 2, X86_INSN_IN},
            {X86_MODE_LONG64, "ed", 1, X86_INSN_IN},
            {X86_MODE_LONG64, "e780", 2, X86_INSN_OUT},
            {X86_MODE_LONG64, "ee", 1, X86_INSN_OUT},
            {X86_MODE_LONG64, "f36c", 2, X86_INSN_INS},
            {X86_MODE_LONG64, "f36f", 2, X86_INSN_OUTS},
            {X86_MODE_LONG64, "0f22d8", 3, X86_INSN_MOV_TO_CR},
            {X86_MODE_LONG64, "0f20c0", 3, X86_INSN_MOV_FROM_CR},
            {X86_MODE_LONG64, "0f01d8", 3, X86_INSN_VMRUN},
            {X86_MODE_LONG64, "0f01dd", 3, X86_INSN_CLGI},
            {X86_MODE_LONG64, "0f01c8", 3, X86_INSN_MONITOR},
            {X86_MODE_LONG64, "0f01c9", 3, X86_INSN_MWAIT},
            {X86_MODE_LONG64, "cd80", 2, X86_INSN_INTN},
            {X86_MODE_LONG64, "c5f877", 3, X86_INSN_OTHER}, /* vzeroupper */
            {X86_MODE_LONG64, "0f05", 2, X86_INSN_OTHER},
        };

        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                struct x86_insn in;
                int r = dec(t[i].mode, t[i].hex, &in);

                EXPECT_EQ(r, 0);
                EXPECT_EQ(in.len, t[i].len);
                if (x86_insn_identify(&in) != t[i].id)
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s: id %d, want %d", t[i].hex,
                                     x86_insn_identify(&in), t[i].id);
        }
}

TEST(rip_relative_mov)
{
        struct x86_insn in;

        /* mov 0x1000(%rip),%eax */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "8b0500100000", &in) == 0);
        EXPECT_EQ(in.len, 6);
        EXPECT_TRUE(in.has_modrm);
        EXPECT_EQ(in.mod, 0);
        EXPECT_EQ(in.rm, 5);
        EXPECT_EQ(in.modrm_reg, 0);
        EXPECT_TRUE(in.has_mem);
        EXPECT_TRUE(in.rip_relative);
        EXPECT_FALSE(in.has_sib);
        EXPECT_EQ(in.mem_base, X86_REG_NONE);
        EXPECT_EQ(in.mem_index, X86_REG_NONE);
        EXPECT_EQ(in.disp, 0x1000);
        EXPECT_EQ(in.disp_size, 4);
        EXPECT_EQ(in.disp_off, 2);
        EXPECT_EQ(in.op_size, 4);
        EXPECT_EQ(in.addr_size, 8);
        EXPECT_EQ(in.mem_seg, X86_SEG_DS);

        /* movb $0x12,-8(%rip): negative displacement, then imm8. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c605f8ffffff12", &in) == 0);
        EXPECT_EQ(in.len, 7);
        EXPECT_TRUE(in.rip_relative);
        EXPECT_EQ(in.disp, -8);
        EXPECT_EQ(in.imm, 0x12);
        EXPECT_EQ(in.imm_size, 1);
        EXPECT_EQ(in.imm_off, 6);
        EXPECT_EQ(in.op_size, 1);

        /* Same bytes in 32-bit mode: absolute disp32. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "8b0500100000", &in) == 0);
        EXPECT_FALSE(in.rip_relative);
        EXPECT_EQ(in.mem_base, X86_REG_NONE);
        EXPECT_EQ(in.disp, 0x1000);

        /* REX.B does not turn rm=101 into r13: still RIP-relative. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "418b0500100000", &in) == 0);
        EXPECT_TRUE(in.rip_relative);
        /* But with mod=01 it is r13 + disp8. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "498b4500", &in) == 0);
        EXPECT_FALSE(in.rip_relative);
        EXPECT_EQ(in.mem_base, 13);
        EXPECT_EQ(in.disp_size, 1);
        EXPECT_EQ(in.op_size, 8);
}

TEST(sib_forms)
{
        struct x86_insn in;

        /* mov 0x1000(,%rax,4),%ecx: SIB, base 101 with mod 00 = no base, disp32. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "8b0c8500100000", &in) == 0);
        EXPECT_EQ(in.len, 7);
        EXPECT_TRUE(in.has_sib);
        EXPECT_EQ(in.base, 5);
        EXPECT_EQ(in.mem_base, X86_REG_NONE);
        EXPECT_EQ(in.mem_index, 0);
        EXPECT_EQ(in.mem_scale, 4);
        EXPECT_EQ(in.disp, 0x1000);
        EXPECT_FALSE(in.rip_relative);
        EXPECT_EQ(in.modrm_reg, 1);

        /* mov 0x1000(,%r9,8),%r10: REX.WRX. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4e8b14cd00100000", &in) == 0);
        EXPECT_EQ(in.len, 8);
        EXPECT_EQ(in.rex, 0x4e);
        EXPECT_TRUE(in.rex_w && in.rex_r && in.rex_x && !in.rex_b);
        EXPECT_EQ(in.modrm_reg, 10);
        EXPECT_EQ(in.mem_index, 9);
        EXPECT_EQ(in.mem_scale, 8);
        EXPECT_EQ(in.op_size, 8);

        /* mov (%rsp),%rax: index 100 = none, SS. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "488b0424", &in) == 0);
        EXPECT_EQ(in.mem_base, 4);
        EXPECT_EQ(in.mem_index, X86_REG_NONE);
        EXPECT_EQ(in.mem_seg, X86_SEG_SS);

        /* mov (%r12,%r12,1),%rax: REX.X makes index 100 r12; base r12 uses DS. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4b8b0424", &in) == 0);
        EXPECT_EQ(in.mem_base, 12);
        EXPECT_EQ(in.mem_index, 12);
        EXPECT_EQ(in.mem_seg, X86_SEG_DS);

        /* mov 0x80(%rax,%rbx,2),%dx: 66, disp32. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "668b945880000000", &in) == 0);
        EXPECT_EQ(in.len, 8);
        EXPECT_EQ(in.op_size, 2);
        EXPECT_EQ(in.mem_base, 0);
        EXPECT_EQ(in.mem_index, 3);
        EXPECT_EQ(in.mem_scale, 2);
        EXPECT_EQ(in.disp, 0x80);
}

TEST(mov_family_fields)
{
        struct x86_insn in;

        /* mov %al,(%rdi) / mov %ax,(%rdi) / mov %rax,(%rdi) */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "8807", &in) == 0);
        EXPECT_EQ(in.opcode, 0x88);
        EXPECT_EQ(in.op_size, 1);
        EXPECT_EQ(in.mem_base, 7);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "668907", &in) == 0);
        EXPECT_EQ(in.op_size, 2);
        EXPECT_EQ(in.prefix_len, 1);
        EXPECT_EQ(in.prefixes, X86_PFX_OPSIZE);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "488907", &in) == 0);
        EXPECT_EQ(in.op_size, 8);
        /* mov %r8,(%r15) */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4d8907", &in) == 0);
        EXPECT_EQ(in.modrm_reg, 8);
        EXPECT_EQ(in.mem_base, 15);
        /* mov (%rsi),%sil: REX present, reg 6 is SIL not DH. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "408a36", &in) == 0);
        EXPECT_EQ(in.rex, 0x40);
        EXPECT_EQ(in.modrm_reg, 6);
        EXPECT_EQ(in.op_size, 1);

        /* movq $-1,(%rdi): imm32 sign-extended to 64. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "48c707ffffffff", &in) == 0);
        EXPECT_EQ(in.len, 7);
        EXPECT_EQ(in.imm_size, 4);
        EXPECT_EQ(in.imm, 0xffffffffu);
        EXPECT_EQ(x86_insn_imm_sext(&in), -1);
        EXPECT_EQ(in.op_size, 8);
        /* movw $0x1234,(%rdi) */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "66c7073412", &in) == 0);
        EXPECT_EQ(in.imm_size, 2);
        EXPECT_EQ(in.imm, 0x1234);

        /* movabs $0x123456789abcdef0,%r11 */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "49bbf0debc9a78563412", &in) == 0);
        EXPECT_EQ(in.len, 10);
        EXPECT_EQ(in.imm_size, 8);
        EXPECT_EQ(in.imm, 0x123456789abcdef0ull);
        EXPECT_FALSE(in.has_modrm);
        /* Without REX.W: imm32. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "bb78563412", &in) == 0);
        EXPECT_EQ(in.len, 5);
        EXPECT_EQ(in.imm_size, 4);

        /* movzbl (%rdi),%eax / movswq (%rdi),%r8 */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "0fb607", &in) == 0);
        EXPECT_EQ(in.map, X86_MAP_0F);
        EXPECT_EQ(in.opcode, 0xb6);
        EXPECT_EQ(in.escape_len, 1);
        EXPECT_EQ(in.opcode_off, 1);
        EXPECT_EQ(in.op_size, 4);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4c0fbf07", &in) == 0);
        EXPECT_EQ(in.opcode, 0xbf);
        EXPECT_EQ(in.op_size, 8);
        EXPECT_EQ(in.modrm_reg, 8);

        /* mov %gs:0x10,%rax -> 65 48 8b 04 25 10 00 00 00 */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "65488b042510000000", &in) == 0);
        EXPECT_EQ(in.len, 9);
        EXPECT_EQ(in.seg_override, X86_SEG_GS);
        EXPECT_EQ(in.mem_seg, X86_SEG_GS);
        EXPECT_EQ(in.mem_base, X86_REG_NONE);
        EXPECT_EQ(in.mem_index, X86_REG_NONE);
        EXPECT_EQ(in.disp, 0x10);
        /* CS override is ignored in 64-bit mode, honoured in 32-bit mode. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "2e8b00", &in) == 0);
        EXPECT_EQ(in.seg_override, X86_SEG_CS);
        EXPECT_EQ(in.mem_seg, X86_SEG_DS);
        ASSERT_TRUE(dec(X86_MODE_PROT32, "2e8b00", &in) == 0);
        EXPECT_EQ(in.mem_seg, X86_SEG_CS);
        /* 32-bit: mov 0x10(%ebp),%eax uses SS. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "8b4510", &in) == 0);
        EXPECT_EQ(in.mem_seg, X86_SEG_SS);
        EXPECT_EQ(in.disp, 0x10);
}

TEST(moffs)
{
        struct x86_insn in;

        /* 64-bit: 8-byte offset. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "a18877665544332211", &in) == 0);
        EXPECT_EQ(in.len, 9);
        EXPECT_TRUE(in.has_mem);
        EXPECT_FALSE(in.has_modrm);
        EXPECT_EQ(in.disp_size, 8);
        EXPECT_EQ(in.disp, 0x1122334455667788ll);
        EXPECT_EQ(in.op_size, 4);
        EXPECT_EQ(in.mem_base, X86_REG_NONE);
        /* 64-bit with 67: 4 bytes. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "67a144332211", &in) == 0);
        EXPECT_EQ(in.len, 6);
        EXPECT_EQ(in.disp_size, 4);
        EXPECT_EQ(in.addr_size, 4);
        /* mov %al,moffs8 with REX.W ignored for the byte form. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "a28877665544332211", &in) == 0);
        EXPECT_EQ(in.op_size, 1);
        /* 32-bit: 4; with 67: 2. 16-bit: 2; with 67: 4. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "a144332211", &in) == 0);
        EXPECT_EQ(in.len, 5);
        ASSERT_TRUE(dec(X86_MODE_PROT32, "67a12211", &in) == 0);
        EXPECT_EQ(in.len, 4);
        EXPECT_EQ(in.disp_size, 2);
        ASSERT_TRUE(dec(X86_MODE_REAL16, "a13412", &in) == 0);
        EXPECT_EQ(in.len, 3);
        ASSERT_TRUE(dec(X86_MODE_REAL16, "67a178563412", &in) == 0);
        EXPECT_EQ(in.len, 6);
}

TEST(sixteen_bit_addressing)
{
        static const struct {
                const char *hex;
                int base, index;
                unsigned disp_size;
                uint8_t seg;
        } t[] = {
            {"8b00", 3, 6, 0, X86_SEG_DS}, /* (bx,si) */
            {"8b01", 3, 7, 0, X86_SEG_DS}, /* (bx,di) */
            {"8b02", 5, 6, 0, X86_SEG_SS}, /* (bp,si) */
            {"8b03", 5, 7, 0, X86_SEG_SS}, /* (bp,di) */
            {"8b04", 6, X86_REG_NONE, 0, X86_SEG_DS},
            {"8b05", 7, X86_REG_NONE, 0, X86_SEG_DS},
            {"8b063412", X86_REG_NONE, X86_REG_NONE, 2, X86_SEG_DS}, /* disp16 */
            {"8b07", 3, X86_REG_NONE, 0, X86_SEG_DS},
            {"8b4610", 5, X86_REG_NONE, 1, X86_SEG_SS},   /* 0x10(bp) */
            {"8b803412", 3, 6, 2, X86_SEG_DS},            /* 0x1234(bx,si) */
            {"268b4610", 5, X86_REG_NONE, 1, X86_SEG_ES}, /* es:0x10(bp) */
        };
        struct x86_insn in;

        for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
                for (int mode = X86_MODE_REAL16; mode <= X86_MODE_PROT32; mode++) {
                        /* In 32-bit mode the same forms need 67. */
                        char hex[32];

                        snprintf(hex, sizeof(hex), "%s%s", mode == X86_MODE_PROT32 ? "67" : "",
                                 t[i].hex);
                        ASSERT_TRUE(dec(mode, hex, &in) == 0);
                        EXPECT_EQ(in.len, strlen(hex) / 2);
                        EXPECT_EQ(in.addr_size, 2);
                        EXPECT_FALSE(in.has_sib);
                        EXPECT_EQ(in.mem_base, t[i].base);
                        EXPECT_EQ(in.mem_index, t[i].index);
                        EXPECT_EQ(in.disp_size, t[i].disp_size);
                        EXPECT_EQ(in.mem_seg, t[i].seg);
                }
        }
        /* 0x10(bp) disp8 is sign-extended: -2(%bp). */
        ASSERT_TRUE(dec(X86_MODE_REAL16, "8b56fe", &in) == 0);
        EXPECT_EQ(in.disp, -2);
        /* rm=100 with 16-bit addressing is (si), not a SIB. */
        ASSERT_TRUE(dec(X86_MODE_REAL16, "8b0424", &in) == 0);
        EXPECT_EQ(in.len, 2);
        /* 32-bit addressing in real mode with 67: SIB and disp32. */
        ASSERT_TRUE(dec(X86_MODE_REAL16, "678b848b00100000", &in) == 0);
        EXPECT_EQ(in.len, 8);
        EXPECT_TRUE(in.has_sib);
        EXPECT_EQ(in.mem_base, 3);
        EXPECT_EQ(in.mem_index, 1);
        EXPECT_EQ(in.mem_scale, 4);
}

TEST(invalid_in_64_bit_mode)
{
        /* Each is valid (with these operand bytes) in 32-bit mode, #UD in 64-bit mode. */
        static const char *const ops[] = {
            "06", "07",   "0e",   "16",     "17",
            "1e", "1f",   "27",   "2f",     "37",
            "3f", "60",   "61",   "820001", "9a785634121000",
            "ce", "d40a", "d50a", "d6",     "ea785634121000",
        };
        struct x86_insn in;

        for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
                int r32 = dec(X86_MODE_PROT32, ops[i], &in);

                EXPECT_EQ(r32, 0);
                EXPECT_EQ(in.len, strlen(ops[i]) / 2);
                if (dec(X86_MODE_LONG64, ops[i], &in) != -KEEL_EINVAL)
                        TEST_FAIL_AT(__FILE__, __LINE__, "%s accepted in 64-bit mode", ops[i]);
        }
        /* C4/C5 with mod != 11: LES/LDS in 32-bit mode, VEX in 64-bit mode. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "c400", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_LEGACY);
        EXPECT_EQ(in.len, 2);
        ASSERT_TRUE(dec(X86_MODE_PROT32, "c500", &in) == 0);
        EXPECT_EQ(in.len, 2);
        /* c5 00 58 c0: vaddps with R,vvvv bits set: VEX in 64-bit mode. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c50058c0", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_VEX2);
        EXPECT_EQ(in.len, 4);
        /* 62 that is no valid EVEX (P1 bit 2 clear, or P0 bit 3 set): #UD in 64-bit mode
         * (BOUND is gone); in 32-bit mode with mod != 11 it is BOUND. */
        EXPECT_EQ(dec(X86_MODE_LONG64, "62f16b48fed9", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "62f96d48fed9", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "62f46d48fed9", &in), -KEEL_EINVAL); /* map 4 */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "6203", &in) == 0);
        EXPECT_EQ(in.len, 2);
        /* inc/dec in 32-bit mode, REX in 64-bit mode. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "40", &in) == 0);
        EXPECT_EQ(in.len, 1);
        EXPECT_EQ(dec(X86_MODE_LONG64, "40", &in), -KEEL_EAGAIN);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4090", &in) == 0);
        EXPECT_EQ(in.len, 2);
}

TEST(rex_only_immediately_before_opcode)
{
        struct x86_insn in;

        /* 48 66 89 07: the REX is followed by a prefix, so it is ignored: 16-bit store. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "48668907", &in) == 0);
        EXPECT_EQ(in.len, 4);
        EXPECT_EQ(in.rex, 0);
        EXPECT_FALSE(in.rex_w);
        EXPECT_EQ(in.op_size, 2);
        EXPECT_EQ(in.prefix_len, 2);
        /* 66 48 89 07: REX.W wins over 66. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "66488907", &in) == 0);
        EXPECT_EQ(in.rex, 0x48);
        EXPECT_EQ(in.op_size, 8);
        /* 41 48 b8 imm64: the last REX counts (W, not B). */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4148b80100000000000000", &in) == 0);
        EXPECT_EQ(in.len, 11);
        EXPECT_EQ(in.rex, 0x48);
        EXPECT_FALSE(in.rex_b);
        /* 48 66 b8 imm: REX ignored, 66: imm16. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "4866b83412", &in) == 0);
        EXPECT_EQ(in.len, 5);
        EXPECT_EQ(in.imm_size, 2);
        /* REX right before VEX is #UD; a segment prefix in between cancels the REX. */
        EXPECT_EQ(dec(X86_MODE_LONG64, "40c5f877", &in), -KEEL_EINVAL);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "402ec5f877", &in) == 0);
        EXPECT_EQ(in.len, 5);
        EXPECT_EQ(in.encoding, X86_ENC_VEX2);
}

TEST(prefixes_and_length_limit)
{
        uint8_t b[32];
        struct x86_insn in;

        /* 14 prefixes + nop = 15 bytes: fine. 15 + nop = 16: invalid, whatever avail says. */
        memset(b, 0x66, sizeof(b));
        b[14] = 0x90;
        ASSERT_TRUE(decode_exact(b, 15, X86_MODE_LONG64, &in) == 0);
        EXPECT_EQ(in.len, 15);
        EXPECT_EQ(in.prefix_len, 14);
        b[14] = 0x66;
        b[15] = 0x90;
        EXPECT_EQ(decode_exact(b, 16, X86_MODE_LONG64, &in), -KEEL_EINVAL);
        EXPECT_EQ(decode_exact(b, 15, X86_MODE_LONG64, &in), -KEEL_EINVAL);
        EXPECT_EQ(decode_exact(b, 14, X86_MODE_LONG64, &in), -KEEL_EAGAIN);
        /* 16 bytes of mixed prefixes in every mode. */
        for (int mode = X86_MODE_REAL16; mode <= X86_MODE_LONG64; mode++) {
                static const uint8_t p[] = {0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67,
                                            0xf2, 0xf3, 0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65};

                EXPECT_EQ(decode_exact(p, sizeof(p), mode, &in), -KEEL_EINVAL);
        }
        /* A long instruction pushed over 15 by prefixes: 11 x 66 + REX.W + B8 + imm64 = 21. */
        memset(b, 0x66, 11);
        b[11] = 0x48;
        b[12] = 0xb8;
        memset(b + 13, 0x11, 8);
        EXPECT_EQ(decode_exact(b, 21, X86_MODE_LONG64, &in), -KEEL_EINVAL);
        /* 4 prefixes + 48 c7 84 24 disp32 imm32 = 16: invalid; with 3 prefixes: 15. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "2e3e6448c7842400010000ffffffff", &in) == 0);
        EXPECT_EQ(in.len, 15);
        EXPECT_EQ(dec(X86_MODE_LONG64, "2e3e646548c7842400010000ffffffff", &in), -KEEL_EINVAL);
        /* Prefix bookkeeping. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f2f3670fa2", &in) == 0);
        EXPECT_EQ(in.last_rep, 0xf3);
        EXPECT_EQ(in.prefixes, X86_PFX_REPNE | X86_PFX_REP | X86_PFX_ADSIZE);
        EXPECT_EQ(in.addr_size, 4);
        EXPECT_EQ(in.prefix_len, 3);
        EXPECT_EQ(in.opcode_off, 4);
        /* Bad mode. */
        EXPECT_EQ(dec((enum x86_cpu_mode)7, "90", &in), -KEEL_EINVAL);
        /* Nothing at all. */
        EXPECT_EQ(decode_exact(b, 0, X86_MODE_LONG64, &in), -KEEL_EAGAIN);
}

TEST(lock_prefix)
{
        struct x86_insn in;

        EXPECT_EQ(dec(X86_MODE_LONG64, "f00100", &in), 0);                /* lock add %eax,(%rax) */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0830001", &in), 0);              /* lock addl $1,(%rax) */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0833801", &in), -KEEL_EINVAL);   /* lock cmpl */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f001c0", &in), -KEEL_EINVAL);     /* register dest */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f08b00", &in), -KEEL_EINVAL);     /* lock mov */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f00fa2", &in), -KEEL_EINVAL);     /* lock cpuid */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f00fb10a", &in), 0);              /* lock cmpxchg */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0480fc70f", &in), 0);            /* cmpxchg16b */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f00fba2803", &in), 0);            /* lock btsl */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f00fba2003", &in), -KEEL_EINVAL); /* lock bt */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0f610", &in), 0);                /* lock notb */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0f60001", &in), -KEEL_EINVAL);   /* lock testb */
        EXPECT_EQ(dec(X86_MODE_PROT32, "f00f20c0", &in), 0);              /* AMD mov cr8 */
        EXPECT_EQ(dec(X86_MODE_LONG64, "f0c5f877", &in), -KEEL_EINVAL);   /* lock vzeroupper */
}

TEST(vex_evex_xop)
{
        struct x86_insn in;

        /* vmovdqa (%rax),%ymm0: C5 FD 6F 00 */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c5fd6f00", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_VEX2);
        EXPECT_EQ(in.map, X86_MAP_0F);
        EXPECT_EQ(in.opcode, 0x6f);
        EXPECT_EQ(in.vex_l, 1);
        EXPECT_EQ(in.vex_pp, 1);
        EXPECT_EQ(in.escape_len, 2);
        EXPECT_EQ(in.len, 4);
        /* vpermq $0x4e,%ymm0,%ymm1: C4 E3 FD 00 C8 4E: map 0F3A, W1, imm8. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c4e3fd00c84e", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_VEX3);
        EXPECT_EQ(in.map, X86_MAP_0F3A);
        EXPECT_TRUE(in.rex_w);
        EXPECT_EQ(in.imm, 0x4e);
        EXPECT_EQ(in.len, 6);
        /* VEX map 0 and map 4 do not exist. */
        EXPECT_EQ(dec(X86_MODE_LONG64, "c4e07d00c8", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "c4e47d00c8", &in), -KEEL_EINVAL);
        /* 66 / F2 / F3 before VEX are #UD. */
        EXPECT_EQ(dec(X86_MODE_LONG64, "66c5fd6f00", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "f3c5fd6f00", &in), -KEEL_EINVAL);
        /* vzeroupper has no ModRM. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c5f877", &in) == 0);
        EXPECT_EQ(in.len, 3);
        EXPECT_FALSE(in.has_modrm);
        /* In 32-bit mode, C4/C5 are VEX only with the top two bits of the next byte set. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "c5f877", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_VEX2);
        ASSERT_TRUE(dec(X86_MODE_PROT32, "c57877", &in) == 0); /* lds 0x77(%eax),%edi */
        EXPECT_EQ(in.encoding, X86_ENC_LEGACY);
        EXPECT_EQ(in.len, 3);
        /* Real mode has no VEX: C5 F8 is LDS with a register operand, #UD. */
        EXPECT_EQ(dec(X86_MODE_REAL16, "c5f877", &in), -KEEL_EINVAL);
        /* EVEX: vpaddd 0x40(%rax),%zmm2,%zmm3{%k1}: disp8 (compressed, raw value kept). */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "62f16d49fe5801", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_EVEX);
        EXPECT_EQ(in.map, X86_MAP_0F);
        EXPECT_EQ(in.opcode, 0xfe);
        EXPECT_EQ(in.vex_l, 2);
        EXPECT_EQ(in.disp, 1);
        EXPECT_EQ(in.len, 7);
        /* EVEX in 32-bit mode needs mod=11 in P0; otherwise BOUND. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "62f16d48fed9", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_EVEX);
        EXPECT_EQ(in.len, 6);
        /* XOP (AMD): 8F with mmmmm >= 8; 8F /0 is POP. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "8fe878c0c001", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_XOP);
        EXPECT_EQ(in.map, X86_MAP_XOP8);
        EXPECT_EQ(in.imm_size, 1);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "8f00", &in) == 0);
        EXPECT_EQ(in.encoding, X86_ENC_LEGACY);
        EXPECT_EQ(in.op_size, 8);
        EXPECT_EQ(dec(X86_MODE_LONG64, "8fe378c0c0", &in), -KEEL_EINVAL); /* map 3 */
        EXPECT_EQ(dec(X86_MODE_LONG64, "8f20", &in), -KEEL_EINVAL);       /* pop, reg=4 */
        /* 3DNow!: the opcode comes last. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "0f0f40109e", &in) == 0);
        EXPECT_EQ(in.map, X86_MAP_3DNOW);
        EXPECT_EQ(in.opcode, 0x9e);
        EXPECT_EQ(in.opcode_off, 4);
        EXPECT_EQ(in.disp, 0x10);
        EXPECT_EQ(in.len, 5);
}

TEST(odd_opcodes)
{
        struct x86_insn in;

        /* F6/F7: only /0 and /1 (TEST) take an immediate. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f610", &in) == 0); /* notb (%rax) */
        EXPECT_EQ(in.len, 2);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f60012", &in) == 0);
        EXPECT_EQ(in.len, 3);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f70878563412", &in) == 0); /* test /1 alias */
        EXPECT_EQ(in.len, 6);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "66f7003412", &in) == 0);
        EXPECT_EQ(in.len, 5);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f738", &in) == 0); /* idivl (%rax) */
        EXPECT_EQ(in.len, 2);
        /* enter: imm16 + imm8. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "c8100002", &in) == 0);
        EXPECT_EQ(in.imm, 0x10);
        EXPECT_EQ(in.imm2, 2);
        EXPECT_EQ(in.imm2_size, 1);
        /* Far pointers: offset + selector. */
        ASSERT_TRUE(dec(X86_MODE_PROT32, "ea785634121000", &in) == 0);
        EXPECT_EQ(in.imm, 0x12345678);
        EXPECT_EQ(in.imm2, 0x10);
        ASSERT_TRUE(dec(X86_MODE_REAL16, "ea5be000f0", &in) == 0);
        EXPECT_EQ(in.imm, 0xe05b);
        EXPECT_EQ(in.imm2, 0xf000);
        /* mov cr/dr ignore mod: always a register operand, never a displacement. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "0f2000", &in) == 0);
        EXPECT_EQ(in.len, 3);
        EXPECT_FALSE(in.has_mem);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "440f20c0", &in) == 0); /* mov %cr8,%rax */
        EXPECT_EQ(in.modrm_reg, 8);
        /* SSE4a EXTRQ/INSERTQ immediates; VMREAD form has none. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "660f78c00408", &in) == 0);
        EXPECT_EQ(in.imm, 4);
        EXPECT_EQ(in.imm2, 8);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "0f78c0", &in) == 0);
        EXPECT_EQ(in.len, 3);
        /* Near branches: 64-bit operand size, rel32 / rel8. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "e800010000", &in) == 0);
        EXPECT_EQ(in.op_size, 8);
        EXPECT_EQ(in.imm_size, 4);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "48e800010000", &in) == 0);
        EXPECT_EQ(in.len, 6);
        ASSERT_TRUE(dec(X86_MODE_REAL16, "e80001", &in) == 0);
        EXPECT_EQ(in.len, 3);
        ASSERT_TRUE(dec(X86_MODE_REAL16, "66e800010000", &in) == 0);
        EXPECT_EQ(in.len, 6);
        /* push imm in 64-bit mode: Iz stays 32 bits with a 64-bit operand size. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "6878563412", &in) == 0);
        EXPECT_EQ(in.op_size, 8);
        EXPECT_EQ(in.imm_size, 4);
        /* Invalid group members. */
        EXPECT_EQ(dec(X86_MODE_LONG64, "ff38", &in), -KEEL_EINVAL);   /* ff /7 */
        EXPECT_EQ(dec(X86_MODE_LONG64, "ffd8", &in), -KEEL_EINVAL);   /* lcall reg */
        EXPECT_EQ(dec(X86_MODE_LONG64, "fe10", &in), -KEEL_EINVAL);   /* fe /2 */
        EXPECT_EQ(dec(X86_MODE_LONG64, "8dc0", &in), -KEEL_EINVAL);   /* lea reg */
        EXPECT_EQ(dec(X86_MODE_LONG64, "c60801", &in), -KEEL_EINVAL); /* c6 /1 */
        EXPECT_EQ(dec(X86_MODE_LONG64, "8ec8", &in), -KEEL_EINVAL);   /* mov to cs */
        EXPECT_EQ(dec(X86_MODE_LONG64, "0f04", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "0f0a", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "0f2400", &in), -KEEL_EINVAL);
        EXPECT_EQ(dec(X86_MODE_LONG64, "0fb800", &in), -KEEL_EINVAL); /* jmpe */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "f30fb800", &in) == 0);      /* popcnt */
        EXPECT_EQ(in.len, 4);
        /* 0F 38 / 0F 3A maps: ModRM always, imm8 in 0F 3A. */
        ASSERT_TRUE(dec(X86_MODE_LONG64, "660f3a0fca03", &in) == 0);
        EXPECT_EQ(in.map, X86_MAP_0F3A);
        EXPECT_EQ(in.opcode, 0x0f);
        EXPECT_EQ(in.escape_len, 2);
        EXPECT_EQ(in.len, 6);
        ASSERT_TRUE(dec(X86_MODE_LONG64, "0f38f000", &in) == 0);
        EXPECT_EQ(in.map, X86_MAP_0F38);
        EXPECT_EQ(in.len, 4);
}

/* Invariants every decode must satisfy (the same ones tests/fuzz/fuzz_decode.c checks). */
static bool is_prefix(uint8_t b, enum x86_cpu_mode mode)
{
        switch (b) {
        case 0x26:
        case 0x2e:
        case 0x36:
        case 0x3e:
        case 0x64:
        case 0x65:
        case 0x66:
        case 0x67:
        case 0xf0:
        case 0xf2:
        case 0xf3:
                return true;
        }
        return mode == X86_MODE_LONG64 && (b & 0xf0) == 0x40;
}

static int check_invariants(const uint8_t *b, size_t n, enum x86_cpu_mode mode)
{
        struct x86_insn a, c;
        int r = x86_decode(b, n, mode, &a);

        if (r != 0 && r != -KEEL_EINVAL && r != -KEEL_EAGAIN)
                return 1;
        if (r == -KEEL_EAGAIN && n >= 15)
                return 2;
        if (x86_decode(b, n, mode, &c) != r || memcmp(&a, &c, sizeof(a)) != 0)
                return 3;
        if (r != 0)
                return 0;
        if (a.len < 1 || a.len > 15 || a.len > n)
                return 4;
        if (a.len != a.prefix_len + a.escape_len + (a.map != X86_MAP_3DNOW) + a.has_modrm +
                         a.has_sib + a.disp_size + a.imm_size + a.imm2_size)
                return 5;
        for (unsigned i = 0; i < a.prefix_len; i++)
                if (!is_prefix(b[i], mode))
                        return 6;
        if (a.opcode_off >= a.len || b[a.opcode_off] != a.opcode)
                return 7;
        if (a.has_modrm && (a.modrm != b[a.opcode_off + 1] && a.map != X86_MAP_3DNOW))
                return 8;
        for (size_t k = 0; k < a.len; k++)
                if (x86_decode(b, k, mode, &c) != -KEEL_EAGAIN)
                        return 9;
        return 0;
}

TEST(random_bytes_invariants)
{
        uint64_t s = 0x9e3779b97f4a7c15ull;
        uint8_t b[15];
        unsigned ok = 0;

        for (unsigned iter = 0; iter < 200000; iter++) {
                for (size_t i = 0; i < sizeof(b); i++) {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        b[i] = (uint8_t)s;
                        /* Bias towards prefixes and escapes to reach deep paths. */
                        if ((s >> 40) % 5 == 0)
                                b[i] =
                                    (uint8_t[]){0x66, 0x67, 0xf3, 0x48, 0x0f, 0x0f,
                                                0x38, 0x3a, 0xc4, 0xc5, 0x62, 0x8f}[(s >> 48) % 12];
                }
                enum x86_cpu_mode mode = (enum x86_cpu_mode)(iter % 4);
                size_t n = (iter / 4) % 16;
                int why = check_invariants(b, n, mode);

                if (why) {
                        char hex[40] = "";

                        for (size_t i = 0; i < n; i++)
                                snprintf(hex + 2 * i, 3, "%02x", b[i]);
                        TEST_FAIL_AT(__FILE__, __LINE__, "invariant %d broken: mode %d bytes %s",
                                     why, mode, hex);
                        return;
                }
                struct x86_insn in;

                ok += x86_decode(b, n, mode, &in) == 0;
        }
        EXPECT_TRUE(ok > 10000);
}

TEST_MAIN()
