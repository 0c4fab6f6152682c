# keel_image(): the part of building keel.so that every arch shares: the generic core,
# boot/efi_main.c and kernel/main.c with the arch's own sources and drivers, freestanding
# (GCC's own stdint/stddef/stdarg, lib/include/freestanding for string.h and stdio.h), linked
# with the arch's C library (cmake/KeelLibc.cmake, docs/lib.md), general-purpose registers
# only (Keel does not save a guest's FP/SIMD state around its own code), with
# -fstack-protector-strong (the arch makes GCC read the canary from the global
# __stack_chk_guard; kernel/stack_protector.c), -Os except for the
# VM-exit path (FAST files, -O2; docs/benchmarks.md). The arch adds its GNU-EFI link and the
# conversion to a PE file.
#
# Size (keel.efi <= 256 KiB): every function and object in its own section, none exported
# (-fvisibility=hidden), link-time optimisation in one partition, --gc-sections; the FAST
# files stay outside LTO, compiled exactly as before it. Branch size, on main 69ddc95:
# x86_64 260,608 -> 250,880 bytes, arm64 229,376 -> 193,536 (docs/benchmarks.md, "Image size").
#
#   keel_image(TARGET keel.so ARCH_NAME name [DEBUG] SOURCES ... INCLUDES ... FAST ...
#              OPTIONS ... DEFINES ...)
#
# DEBUG makes a test build (keel-debug.efi, CMake option KEEL_DEBUG_HYPERCALLS): it adds
# kernel/debug_fault.c and the hypercall KEEL_HC_DEBUG_FAULT, which faults inside Keel on
# purpose (docs/hypercalls.md), and kernel/debug_bench.c, which times the C library's
# memset / memcpy once at boot (tools/bench --only copy). keel.efi, the release image, is never built with it.
include(${CMAKE_CURRENT_LIST_DIR}/KeelLibc.cmake)

function(keel_image)
  cmake_parse_arguments(K "DEBUG" "TARGET;ARCH_NAME" "SOURCES;INCLUDES;FAST;OPTIONS;DEFINES" ${ARGN})
  set(tgt ${K_TARGET})
  if(K_DEBUG)
    list(APPEND K_SOURCES ${CMAKE_SOURCE_DIR}/kernel/debug_fault.c
                          ${CMAKE_SOURCE_DIR}/kernel/debug_bench.c)
    list(APPEND K_DEFINES KEEL_DEBUG_HYPERCALLS=1)
  endif()
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
                  OUTPUT_VARIABLE cc_include OUTPUT_STRIP_TRAILING_WHITESPACE)
  # Code generation, given to the compiler and again to the link: with -flto the code is
  # generated at link time, where GCC takes each function's optimisation options (-Os, or a
  # FAST file's -O2) from the object it came from, and the target options (
  # -mgeneral-regs-only, -mstack-protector-guard, ...) from the link line.
  # -fno-partial-inlining: LTO split functions such as log_write_part into a head and a body
  # inlined back into it, which gdb shows as two breakpoint locations ("break log_write_part",
  # integration.keel_gdb); no size cost on x86.
  set(code_options
    -fpic -fstack-protector-strong -fno-strict-aliasing -fshort-wchar -mgeneral-regs-only
    -fno-builtin -fno-tree-loop-distribute-patterns -Os -g
    -ffunction-sections -fdata-sections -fvisibility=hidden -flto -fno-partial-inlining
    ${K_OPTIONS})
  set(image_options -ffreestanding -nostdinc -isystem ${cc_include} ${code_options})
  # lib/<libc>.c against the library's own headers (the image's freestanding ones come first
  # on the image's include path, so it is an object library of its own).
  add_library(${tgt}_libc OBJECT ${KEEL_LIBC_GLUE})
  target_include_directories(${tgt}_libc SYSTEM PRIVATE ${KEEL_LIBC_INCLUDE})
  target_include_directories(${tgt}_libc PRIVATE ${CMAKE_SOURCE_DIR}/kernel/include)
  target_compile_options(${tgt}_libc PRIVATE ${KEEL_WARNINGS} ${image_options})
  add_executable(${tgt}
    ${CMAKE_SOURCE_DIR}/boot/efi_main.c ${KEEL_KERNEL_IMAGE_SOURCES}
    ${KEEL_CORE_SOURCES} ${K_SOURCES} ${KEEL_LIBC_OVERRIDES} $<TARGET_OBJECTS:${tgt}_libc>)
  target_link_libraries(${tgt} PRIVATE ${KEEL_LIBC_ARCHIVE})
  # One LTRANS partition: the smallest image (about 1 KB less than -flto=auto's five), and no
  # "serial compilation of N LTRANS jobs" warning in the build log.
  target_link_options(${tgt} PRIVATE ${code_options} -flto-partition=one -nostdlib -shared
                      -Wl,--gc-sections)
  target_include_directories(${tgt} PRIVATE
    ${KEEL_CORE_INCLUDES} ${CMAKE_SOURCE_DIR}/drivers/include
    ${CMAKE_CURRENT_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/lib/include/freestanding
    ${K_INCLUDES})
  target_compile_definitions(${tgt} PRIVATE KEEL_ARCH_NAME="${K_ARCH_NAME}" ${K_DEFINES})
  target_compile_options(${tgt} PRIVATE ${KEEL_WARNINGS} ${image_options})
  # vmm/vcons.c, -O2 here until branch room (2026-12-07), is built for size: no measured
  # exit writes to a console (-288 bytes of x86 text, exits unchanged).
  set_source_files_properties(${K_FAST} ${CMAKE_SOURCE_DIR}/vmm/hypercall.c
                              # no alignment padding: 2 KB of x86 image; exits unchanged
                              # under -icount (CPUID 274.1, VMMCALL 270.1, HVC 153.0).
                              # Outside LTO, as before it: with it, -Os callees from other
                              # files were inlined into the exit loop and CPUID cost 6 more.
                              PROPERTIES COMPILE_OPTIONS
                              "-O2;-falign-functions=1;-falign-jumps=1;-falign-loops=1;-falign-labels=1;-fno-lto;-fpartial-inlining;-fjump-tables")
  # Outside link-time optimisation: what GCC itself emits calls to (the canary and its
  # failure, arm64's memcpy / memset) must be defined by an ordinary object, or the LTO step
  # drops the definitions before code generation asks for them (undefined references).
  set_source_files_properties(${CMAKE_SOURCE_DIR}/kernel/stack_protector.c
                              ${KEEL_LIBC_OVERRIDES} PROPERTIES COMPILE_OPTIONS -fno-lto)
  set_source_files_properties(${CMAKE_SOURCE_DIR}/boot/efi_main.c PROPERTIES
    COMPILE_OPTIONS "-Wno-strict-prototypes") # GNU-EFI's headers
endfunction()
