/*
 * VMX guest entry and exit (vmx.c). unsigned vmx_run_guest(struct x86_gprs *g, unsigned launched)
 * saves Keel's callee-saved registers, records the stack in VMCS_HOST_RSP, loads the guest's
 * general-purpose registers (RSP, RIP and RFLAGS live in the VMCS) and runs VMRESUME (or
 * VMLAUNCH the first time). A VM exit lands at vmx_exit_point (VMCS_HOST_RIP) with the stack
 * as it was, stores the guest registers and returns 0. A VMLAUNCH/VMRESUME that fails
 * (VMfailValid/VMfailInvalid) falls through and returns 1; the VM-instruction error field
 * tells why. Offsets of struct x86_gprs are checked in vmx.c.
 */
#define VMCS_HOST_RSP 0x6c14

        .text
        .global vmx_run_guest
vmx_run_guest:
        push    %rbp
        push    %rbx
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        push    %rdi
        mov     $VMCS_HOST_RSP, %eax
        vmwrite %rsp, %rax
        test    %esi, %esi
        mov     (%rdi), %rax
        mov     8(%rdi), %rbx
        mov     16(%rdi), %rcx
        mov     24(%rdi), %rdx
        mov     32(%rdi), %rsi
        mov     48(%rdi), %rbp
        mov     56(%rdi), %r8
        mov     64(%rdi), %r9
        mov     72(%rdi), %r10
        mov     80(%rdi), %r11
        mov     88(%rdi), %r12
        mov     96(%rdi), %r13
        mov     104(%rdi), %r14
        mov     112(%rdi), %r15
        mov     40(%rdi), %rdi
        jnz     1f
        vmlaunch
        jmp     2f
1:      vmresume
2:      /* the entry failed: nothing of the guest's ran */
        pop     %rdi
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        mov     $1, %eax
        ret

        .global vmx_exit_point
vmx_exit_point:
        push    %rdi
        mov     8(%rsp), %rdi
        mov     %rax, (%rdi)
        mov     %rbx, 8(%rdi)
        mov     %rcx, 16(%rdi)
        mov     %rdx, 24(%rdi)
        mov     %rsi, 32(%rdi)
        mov     %rbp, 48(%rdi)
        mov     %r8, 56(%rdi)
        mov     %r9, 64(%rdi)
        mov     %r10, 72(%rdi)
        mov     %r11, 80(%rdi)
        mov     %r12, 88(%rdi)
        mov     %r13, 96(%rdi)
        mov     %r14, 104(%rdi)
        mov     %r15, 112(%rdi)
        pop     %rax
        mov     %rax, 40(%rdi)
        pop     %rdi
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %rbx
        pop     %rbp
        xor     %eax, %eax
        ret
        .section .note.GNU-stack,"",@progbits
