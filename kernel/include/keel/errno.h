/*
 * Keel's error codes: functions that can fail return 0 (or a non-negative value) on success
 * and a negative code from this list on failure, as in Jailhouse and Linux. The numbers
 * follow Linux so that logs read familiarly; they are also the values the hypercall ABI
 * returns to guests (docs/hypercalls.md).
 */
#ifndef KEEL_ERRNO_H
#define KEEL_ERRNO_H

#define KEEL_EPERM   1  /* operation not permitted (e.g. illegal state transition) */
#define KEEL_ENOENT  2  /* no such file / object */
#define KEEL_EIO     5  /* I/O error */
#define KEEL_E2BIG   7  /* argument list / object too large */
#define KEEL_ENOEXEC 8  /* not an executable image */
#define KEEL_EBADF   9  /* bad handle */
#define KEEL_EAGAIN  11 /* try again (stale map key, ...) */
#define KEEL_ENOMEM  12 /* out of memory */
#define KEEL_EFAULT  14 /* bad (guest) address */
#define KEEL_EBUSY   16 /* resource busy / already in that state */
#define KEEL_EEXIST  17 /* already exists */
#define KEEL_ENODEV  19 /* no such device / feature missing */
#define KEEL_EINVAL  22 /* invalid argument */
#define KEEL_ENOSPC  28 /* no space left */
#define KEEL_ERANGE  34 /* out of range */
#define KEEL_ENOSYS  38 /* unknown call number */
#define KEEL_ENOTSUP 95 /* not supported */

/* Short human-readable name of an error code (positive or negative), never NULL. */
const char *keel_strerror(int err);

#endif
