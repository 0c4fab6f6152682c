/* Names of Keel's error codes, for messages. */
#include <keel/check.h>
#include <keel/errno.h>

static const struct {
        int code;
        const char *name;
} errors[] = {
    {KEEL_EPERM, "not permitted"},
    {KEEL_ENOENT, "not found"},
    {KEEL_EIO, "I/O error"},
    {KEEL_E2BIG, "too large"},
    {KEEL_ENOEXEC, "not a valid image"},
    {KEEL_EBADF, "bad handle"},
    {KEEL_EAGAIN, "try again"},
    {KEEL_ENOMEM, "out of memory"},
    {KEEL_EFAULT, "bad address"},
    {KEEL_EBUSY, "busy"},
    {KEEL_EEXIST, "already exists"},
    {KEEL_ENODEV, "no such device"},
    {KEEL_EINVAL, "invalid argument"},
    {KEEL_ENOSPC, "no space left"},
    {KEEL_ERANGE, "out of range"},
    {KEEL_ENOSYS, "unknown call"},
    {KEEL_ENOTSUP, "not supported"},
};

const char *keel_strerror(int err)
{
        if (err < 0)
                err = -err;
        for (unsigned i = 0; i < ARRAY_SIZE(errors); i++)
                if (errors[i].code == err)
                        return errors[i].name;
        return "unknown error";
}
