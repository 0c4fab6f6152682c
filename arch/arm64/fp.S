/*
 * A vCPU's FP/SIMD registers across its runs (several vCPUs share a CPU): V0-V31, FPCR and
 * FPSR saved into struct arm64_fp_regs (arch/vm.h: q[32] at 0, fpcr at 512, fpsr at 520)
 * when a run ends and loaded when the next starts. Writing a V register clears the upper
 * bits of its SVE Z register, so a vCPU never sees another's SVE state beyond 128 bits
 * (docs/arm64.md: SVE state wider than that is not kept across switches).
 */
        .text
        .global arm64_fp_save
arm64_fp_save:
        stp     q0, q1, [x0, #0]
        stp     q2, q3, [x0, #32]
        stp     q4, q5, [x0, #64]
        stp     q6, q7, [x0, #96]
        stp     q8, q9, [x0, #128]
        stp     q10, q11, [x0, #160]
        stp     q12, q13, [x0, #192]
        stp     q14, q15, [x0, #224]
        stp     q16, q17, [x0, #256]
        stp     q18, q19, [x0, #288]
        stp     q20, q21, [x0, #320]
        stp     q22, q23, [x0, #352]
        stp     q24, q25, [x0, #384]
        stp     q26, q27, [x0, #416]
        stp     q28, q29, [x0, #448]
        stp     q30, q31, [x0, #480]
        mrs     x1, fpcr
        mrs     x2, fpsr
        str     x1, [x0, #512]
        str     x2, [x0, #520]
        ret

        .global arm64_fp_load
arm64_fp_load:
        ldp     q0, q1, [x0, #0]
        ldp     q2, q3, [x0, #32]
        ldp     q4, q5, [x0, #64]
        ldp     q6, q7, [x0, #96]
        ldp     q8, q9, [x0, #128]
        ldp     q10, q11, [x0, #160]
        ldp     q12, q13, [x0, #192]
        ldp     q14, q15, [x0, #224]
        ldp     q16, q17, [x0, #256]
        ldp     q18, q19, [x0, #288]
        ldp     q20, q21, [x0, #320]
        ldp     q22, q23, [x0, #352]
        ldp     q24, q25, [x0, #384]
        ldp     q26, q27, [x0, #416]
        ldp     q28, q29, [x0, #448]
        ldp     q30, q31, [x0, #480]
        ldr     x1, [x0, #512]
        ldr     x2, [x0, #520]
        msr     fpcr, x1
        msr     fpsr, x2
        ret

/*
 * SVE state, where the CPU has it (Linux's user space uses it: glibc's string functions):
 * Z0-Z31, P0-P15 and FFR at the EL2 vector length (ZCR_EL2 is the longest, so a guest's
 * shorter length loses nothing). Layout of the area (arm64_sve_area_size bytes): Z at 0,
 * P after 32 * VL bytes, FFR after 16 more predicate slots (VL / 8 bytes each).
 * x0 = area.
 */
        .arch_extension sve
        .global arm64_sve_vl
arm64_sve_vl:
        rdvl    x0, #1
        ret

        .global arm64_sve_save
arm64_sve_save:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        str     z\n, [x0, #\n, mul vl]
        .endr
        rdvl    x1, #16
        lsl     x1, x1, #1              /* 32 * VL */
        add     x1, x0, x1              /* predicates */
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        str     p\n, [x1, #\n, mul vl]
        .endr
        rdffr   p0.b
        str     p0, [x1, #16, mul vl]
        ldr     p0, [x1, #0, mul vl]    /* P0 as it was */
        ret

        .global arm64_sve_load
arm64_sve_load:
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        ldr     z\n, [x0, #\n, mul vl]
        .endr
        rdvl    x1, #16
        lsl     x1, x1, #1              /* 32 * VL */
        add     x1, x0, x1
        ldr     p0, [x1, #16, mul vl]
        wrffr   p0.b
        .irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
        ldr     p\n, [x1, #\n, mul vl]
        .endr
        ret
