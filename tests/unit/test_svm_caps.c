/* svm_check_caps: every refusal names what is missing; a good CPU yields its features. */
#include "test.h"

#include <keel/errno.h>

#include "../../arch/x86_64/svm/svm.h"

static const struct svm_cpuid good = {
    .max_ext_leaf = 0x8000001f,
    .ext1_ecx = SVM_CPUID_SVM,
    .svm_eax = 1,
    .svm_ebx = 16,
    .svm_edx = SVM_FEAT_NPT,
};

static int check(const struct svm_cpuid *id, struct svm_caps *caps, char *why)
{
        return svm_check_caps(id, caps, why, 240);
}

TEST(qemu_tcg_like_cpu_is_accepted)
{
        struct svm_caps caps;
        char why[240];

        EXPECT_EQ(check(&good, &caps, why), 0);
        EXPECT_EQ(caps.asids, 16);
        EXPECT_EQ(caps.revision, 1);
        EXPECT_TRUE(caps.npt);
        EXPECT_FALSE(caps.npt_1g); /* qemu64 has no Page1GB */
        EXPECT_FALSE(caps.nrips);
        EXPECT_FALSE(caps.decode_assists);
}

TEST(features_are_reported)
{
        struct svm_cpuid id = good;
        struct svm_caps caps;
        char why[240];

        id.svm_edx |= SVM_FEAT_NRIPS | SVM_FEAT_DECODE | SVM_FEAT_CLEAN | SVM_FEAT_FLUSH_ASID;
        EXPECT_EQ(check(&id, &caps, why), 0);
        EXPECT_TRUE(caps.nrips);
        EXPECT_TRUE(caps.decode_assists);
        EXPECT_TRUE(caps.clean_bits);
        EXPECT_TRUE(caps.flush_by_asid);
        EXPECT_FALSE(caps.npt_1g);
        id.ext1_edx = 1u << 26; /* Page1GB: nested tables may use 1 GiB leaves */
        EXPECT_EQ(check(&id, &caps, why), 0);
        EXPECT_TRUE(caps.npt_1g);
}

TEST(no_svm)
{
        struct svm_cpuid id = good;
        struct svm_caps caps;
        char why[240];

        id.ext1_ecx = 0;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "no AMD SVM");
        id = good;
        id.max_ext_leaf = 0x80000000; /* no extended leaves at all */
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "no AMD SVM");
}

TEST(disabled_by_firmware)
{
        struct svm_cpuid id = good;
        struct svm_caps caps;
        char why[240];

        id.vm_cr = VM_CR_SVMDIS;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "disabled by the firmware");
        EXPECT_CONTAINS(why, "firmware setup");
        id.vm_cr = VM_CR_SVMDIS | VM_CR_LOCK;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "locked");
}

TEST(no_nested_paging)
{
        struct svm_cpuid id = good;
        struct svm_caps caps;
        char why[240];

        id.svm_edx = SVM_FEAT_NRIPS;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "no nested paging");
        id = good;
        id.max_ext_leaf = 0x80000008;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "no nested paging");
}

TEST(too_few_asids)
{
        struct svm_cpuid id = good;
        struct svm_caps caps;
        char why[240];

        id.svm_ebx = 1;
        EXPECT_EQ(check(&id, &caps, why), -KEEL_ENODEV);
        EXPECT_CONTAINS(why, "ASIDs");
}

TEST_MAIN()
