/*
 * Tests for keel/strlist.h: a table of names as one string of NUL-ended entries.
 */
#include <keel/strlist.h>

#include "test.h"

static const char list[] = "zero\0"
                           "\0"
                           "two\0"
                           "three";

TEST(entries_by_index)
{
        EXPECT_STREQ(keel_strlist_at(list, 4, 0), "zero");
        EXPECT_STREQ(keel_strlist_at(list, 4, 1), "");
        EXPECT_STREQ(keel_strlist_at(list, 4, 2), "two");
        EXPECT_STREQ(keel_strlist_at(list, 4, 3), "three");
}

TEST(past_the_count_is_null)
{
        EXPECT_TRUE(keel_strlist_at(list, 4, 4) == NULL);
        EXPECT_TRUE(keel_strlist_at(list, 4, 0xffffffffu) == NULL);
        EXPECT_TRUE(keel_strlist_at(list, 0, 0) == NULL);
        /* A count smaller than the list's entries hides the rest. */
        EXPECT_STREQ(keel_strlist_at(list, 2, 1), "");
        EXPECT_TRUE(keel_strlist_at(list, 2, 2) == NULL);
}

TEST_MAIN()
