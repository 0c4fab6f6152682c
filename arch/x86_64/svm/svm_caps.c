/*
 * SVM feature check (pure C, host-tested in tests/unit/test_svm_caps.c): turns CPUID and
 * VM_CR into either Keel's view of the CPU's SVM or one clear sentence for the user.
 */
#include <stdio.h>

#include <keel/errno.h>

#include "svm.h"

int svm_check_caps(const struct svm_cpuid *id, struct svm_caps *caps, char *why, size_t len)
{
        if (id->max_ext_leaf < 0x80000001 || !(id->ext1_ecx & SVM_CPUID_SVM)) {
                snprintf(why, len,
                         "this CPU has no AMD SVM (AMD-V): Keel needs AMD-V with nested paging or "
                         "Intel VT-x with EPT; under QEMU use -cpu qemu64,+svm,+npt or an EPYC "
                         "model");
                return -KEEL_ENODEV;
        }
        if (id->vm_cr & VM_CR_SVMDIS) {
                snprintf(
                    why, len,
                    "SVM is disabled by the firmware (VM_CR.SVMDIS=1%s): enable \"SVM mode\" / "
                    "AMD-V in the firmware setup and boot Keel again",
                    (id->vm_cr & VM_CR_LOCK) ? ", locked" : "");
                return -KEEL_ENODEV;
        }
        if (id->max_ext_leaf < 0x8000000a || !(id->svm_edx & SVM_FEAT_NPT)) {
                snprintf(why, len,
                         "this CPU has AMD SVM but no nested paging (NPT), which Keel needs; under "
                         "QEMU add +npt to -cpu");
                return -KEEL_ENODEV;
        }
        if (id->svm_ebx < 2) {
                snprintf(why, len, "this CPU's SVM reports %u ASIDs; Keel needs at least 2",
                         id->svm_ebx);
                return -KEEL_ENODEV;
        }
        *caps = (struct svm_caps){
            .revision = id->svm_eax & 0xff,
            .asids = id->svm_ebx,
            .npt = true,
            /* Nested tables take 1 GiB leaves where the CPU has them (Page1GB). */
            .npt_1g = id->ext1_edx & (1u << 26),
            .nrips = id->svm_edx & SVM_FEAT_NRIPS,
            .decode_assists = id->svm_edx & SVM_FEAT_DECODE,
            .clean_bits = id->svm_edx & SVM_FEAT_CLEAN,
            .flush_by_asid = id->svm_edx & SVM_FEAT_FLUSH_ASID,
        };
        return 0;
}
