/* Host-physical <-> host-virtual: the identity (see keel/mm_identity.h). */
#ifndef ARCH_MM_H
#define ARCH_MM_H

#include <keel/mm_identity.h>

#endif
