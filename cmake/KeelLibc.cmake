# The image's C library (docs/lib.md): picolibc on arm64 (Debian's picolibc-aarch64-linux-gnu),
# newlib on x86_64 (tools/build-newlib: a part of Debian's newlib-source, built once with the
# host gcc into ~/.cache/keel/newlib). Sets, for keel_image() and for anything else that wants
# the same library (the guest SDK, sdk/keel-guest.cmake, links the same libraries whole):
#
#   KEEL_LIBC_NAME     picolibc or newlib
#   KEEL_LIBC_INCLUDE  the library's include directory
#   KEEL_LIBC_ARCHIVE  its libc.a
#   KEEL_LIBC_GLUE     lib/<name>.c: Keel's snprintf / vsnprintf over the library's integer-only
#                      printf core (compiled against the library's headers)
#   KEEL_LIBC_OVERRIDES  lib/ files the image links before the library, replacing its members
#                      (arm64: lib/mem_words.c's memcpy / memset)
if(KEEL_ARCH STREQUAL "arm64")
  set(KEEL_LIBC_NAME picolibc)
  set(KEEL_PICOLIBC_DIR /usr/lib/picolibc/aarch64-linux-gnu CACHE PATH "picolibc for aarch64")
  set(KEEL_LIBC_INCLUDE ${KEEL_PICOLIBC_DIR}/include)
  # The default (-Os) build: its string functions are C without FP/SIMD. release/libc.a has
  # Arm's optimized routines, which use the SIMD registers (a guest's, at EL2).
  set(KEEL_LIBC_ARCHIVE ${KEEL_PICOLIBC_DIR}/lib/libc.a)
  if(NOT EXISTS ${KEEL_LIBC_ARCHIVE} OR NOT EXISTS ${KEEL_LIBC_INCLUDE}/stdio.h)
    message(FATAL_ERROR "picolibc for arm64 not found (${KEEL_LIBC_ARCHIVE}): install Debian's "
                        "picolibc-aarch64-linux-gnu (tools/setup does)")
  endif()
  set(KEEL_LIBC_OVERRIDES ${CMAKE_SOURCE_DIR}/lib/mem_words.c)
else()
  set(KEEL_LIBC_NAME newlib)
  # Re-run (a no-op when cached) whenever the script changes: its hash keys the cache.
  set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
               ${CMAKE_SOURCE_DIR}/tools/build-newlib)
  execute_process(COMMAND ${CMAKE_SOURCE_DIR}/tools/build-newlib
                  OUTPUT_VARIABLE newlib_dir OUTPUT_STRIP_TRAILING_WHITESPACE
                  RESULT_VARIABLE newlib_rc)
  if(NOT newlib_rc EQUAL 0 OR NOT EXISTS ${newlib_dir}/lib/libc.a)
    message(FATAL_ERROR "newlib for keel.efi could not be built (tools/build-newlib failed, "
                        "see above): install Debian's newlib-source (tools/setup does)")
  endif()
  set(KEEL_LIBC_INCLUDE ${newlib_dir}/include)
  set(KEEL_LIBC_ARCHIVE ${newlib_dir}/lib/libc.a)
  set(KEEL_LIBC_OVERRIDES)
endif()
set(KEEL_LIBC_GLUE ${CMAKE_SOURCE_DIR}/lib/${KEEL_LIBC_NAME}.c)
message(STATUS "keel.efi's C library: ${KEEL_LIBC_NAME} (${KEEL_LIBC_ARCHIVE})")
