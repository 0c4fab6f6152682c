# Keel guest SDK (docs/guest-sdk.md): builds ordinary C programs into images Keel runs as VMs.
#
#   include(<keel>/sdk/keel-guest.cmake)      # in a project with languages C and ASM
#   keel_add_guest(NAME SOURCES... [ARCH both|x86_64|arm64] [FORMAT flat|elf] [BASE addr]
#                  [STACK_SIZE bytes] [OUTPUT_DIR dir] [DEFINES d...] [RUNTIME sdk|none]
#                  [LINKER_SCRIPT file] [COMPILE_OPTIONS o...])
#
# The guest is built for the architecture the project's C compiler targets (gcc for x86_64,
# aarch64-linux-gnu-gcc through <keel>/cmake/toolchain-aarch64.cmake for arm64); ARCH says
# which of them the guest is for (default both: on any other, the call does nothing). It
# lands in OUTPUT_DIR (default ${CMAKE_BINARY_DIR}/guests) as NAME.bin (FORMAT flat, the
# default: raw bytes loaded at the arch's default address, entry = load address) or NAME.elf
# (FORMAT elf; BASE moves its link address). The ELF target is guest_NAME (add options with
# target_compile_options / target_link_libraries), the image's target guest_NAME_image (in
# ALL); the global property KEEL_GUEST_IMAGE_TARGETS lists those.
#
# RUNTIME sdk (the default) links the SDK's runtime and the C library: picolibc on arm64,
# newlib on x86_64 (sdk/build-newlib, once, into ~/.cache/keel/newlib-guest), with libm and
# libgcc; main(argc, argv) runs with stdio on the VM's console and its return value is the
# VM's exit code. RUNTIME none links neither (freestanding: the sources bring their own
# _start; LINKER_SCRIPT then defaults to nothing and must be given) - Keel's test guests.
include_guard(GLOBAL)

set(KEEL_SDK_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(KEEL_SDK_KEEL_DIR ${KEEL_SDK_DIR}/.. ABSOLUTE)
set(KEEL_GUEST_OUTPUT_DIR ${CMAKE_BINARY_DIR}/guests CACHE PATH "Where keel_add_guest puts images")

if(NOT CMAKE_C_COMPILER_ID STREQUAL "GNU")
  message(FATAL_ERROR "Keel guest SDK: guests need gcc (the C compiler is ${CMAKE_C_COMPILER_ID}); "
                      "set CMAKE_C_COMPILER=gcc, or use <keel>/cmake/toolchain-aarch64.cmake")
endif()
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  set(KEEL_SDK_ARCH x86_64)
  set(KEEL_SDK_ARCH_FLAGS -m64 -mcmodel=small -mno-red-zone -fcf-protection=none)
  set(KEEL_SDK_RT_FLAGS -mgeneral-regs-only)
  set(KEEL_SDK_DEFAULT_BASE 0x100000)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "^(aarch64|arm64|ARM64)$")
  set(KEEL_SDK_ARCH arm64)
  set(KEEL_SDK_ARCH_FLAGS -mcmodel=small -mbranch-protection=none -mno-outline-atomics)
  # The runtime's start-up runs with the MMU off (Device memory: aligned accesses only).
  set(KEEL_SDK_RT_FLAGS -mstrict-align -mgeneral-regs-only -fno-tree-loop-distribute-patterns)
  set(KEEL_SDK_DEFAULT_BASE 0x40100000)
else()
  message(FATAL_ERROR "Keel guest SDK: no guests for ${CMAKE_SYSTEM_PROCESSOR}: the C compiler "
                      "must target x86_64 or aarch64 (<keel>/cmake/toolchain-aarch64.cmake)")
endif()
get_property(keel_sdk_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
if(NOT "ASM" IN_LIST keel_sdk_languages)
  message(FATAL_ERROR "Keel guest SDK: the runtime's entry is assembly: enable ASM in the "
                      "project (project(NAME C ASM)) before including keel-guest.cmake")
endif()
if(NOT CMAKE_OBJCOPY)
  message(FATAL_ERROR "Keel guest SDK: no objcopy found: set CMAKE_OBJCOPY")
endif()

# The C library, on first use only (a project whose guests are all RUNTIME none needs none).
function(keel_sdk_find_libc)
  if(DEFINED KEEL_SDK_LIBC_INCLUDE)
    return()
  endif()
  if(KEEL_SDK_ARCH STREQUAL "arm64")
    set(name picolibc)
    set(dir /usr/lib/picolibc/aarch64-linux-gnu)
    if(DEFINED KEEL_PICOLIBC_DIR) # Keel's own build (cmake/KeelLibc.cmake) may point elsewhere
      set(dir ${KEEL_PICOLIBC_DIR})
    endif()
    set(include ${dir}/include)
    set(archives ${dir}/lib/libc.a ${dir}/lib/libm.a)
    if(NOT EXISTS ${dir}/lib/libc.a OR NOT EXISTS ${dir}/lib/libm.a)
      message(FATAL_ERROR "Keel guest SDK: picolibc for arm64 not found in ${dir}: install "
                          "Debian's picolibc-aarch64-linux-gnu (<keel>/tools/setup does)")
    endif()
  else()
    set(name newlib)
    set_property(DIRECTORY ${CMAKE_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
                 ${KEEL_SDK_DIR}/build-newlib)
    execute_process(COMMAND ${KEEL_SDK_DIR}/build-newlib OUTPUT_VARIABLE dir
                    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0 OR NOT EXISTS ${dir}/lib/libc.a)
      message(FATAL_ERROR "Keel guest SDK: newlib for x86_64 guests could not be built "
                          "(sdk/build-newlib failed, see above): install Debian's newlib-source "
                          "(<keel>/tools/setup does)")
    endif()
    set(include ${dir}/include)
    set(archives ${dir}/lib/libc.a ${dir}/lib/libm.a)
  endif()
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=include
                  OUTPUT_VARIABLE gcc_include OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-libgcc-file-name
                  OUTPUT_VARIABLE libgcc OUTPUT_STRIP_TRAILING_WHITESPACE)
  message(STATUS "Keel guest SDK: ${KEEL_SDK_ARCH} guests link ${name} (${include}/..)")
  set(KEEL_SDK_LIBC_NAME ${name} CACHE INTERNAL "")
  set(KEEL_SDK_LIBC_INCLUDE ${include} CACHE INTERNAL "")
  # As an option, not an include directory: CMake drops the compiler's own directories from
  # those, and -nostdinc needs it back (stddef.h, stdarg.h), after the library's.
  set(KEEL_SDK_NOSTDINC -nostdinc -isystem ${gcc_include} CACHE INTERNAL "")
  set(KEEL_SDK_LIBC_ARCHIVES ${archives} ${libgcc} CACHE INTERNAL "")
endfunction()

# Compile options of RUNTIME sdk guests' sources (RUNTIME none: only COMPILE_OPTIONS).
set(KEEL_SDK_CFLAGS ${KEEL_SDK_ARCH_FLAGS} -fno-pic -fno-pie -fno-stack-protector
                    -fno-asynchronous-unwind-tables -fno-unwind-tables -ffunction-sections
                    -fdata-sections)

# The runtime, compiled once per build tree and linked (as objects, so that its sbrk and
# stdio hooks win over the library's) into every RUNTIME sdk guest.
function(keel_sdk_runtime)
  if(TARGET keel_guest_sdk_rt)
    return()
  endif()
  keel_sdk_find_libc()
  set(a ${KEEL_SDK_DIR}/arch/${KEEL_SDK_ARCH})
  add_library(keel_guest_sdk_rt OBJECT ${a}/crt0.S ${a}/arch.c ${KEEL_SDK_DIR}/rt/start.c
              ${KEEL_SDK_DIR}/rt/console.c ${KEEL_SDK_DIR}/rt/libc_${KEEL_SDK_LIBC_NAME}.c)
  if(DEFINED KEEL_WARNINGS)
    set(warnings ${KEEL_WARNINGS})
  else()
    set(warnings -Wall -Wextra)
  endif()
  target_compile_options(keel_guest_sdk_rt PRIVATE ${KEEL_SDK_CFLAGS} ${KEEL_SDK_RT_FLAGS}
                         -O2 -g ${KEEL_SDK_NOSTDINC} ${warnings})
  target_include_directories(keel_guest_sdk_rt SYSTEM PRIVATE ${KEEL_SDK_LIBC_INCLUDE})
  target_include_directories(keel_guest_sdk_rt PRIVATE ${KEEL_SDK_DIR}/include ${KEEL_SDK_DIR}/rt
                             ${KEEL_SDK_KEEL_DIR}/vmm/include)
endfunction()

function(keel_add_guest name)
  cmake_parse_arguments(G "" "ARCH;FORMAT;BASE;STACK_SIZE;OUTPUT_DIR;RUNTIME;LINKER_SCRIPT"
                        "DEFINES;COMPILE_OPTIONS" ${ARGN})
  set(sources ${G_UNPARSED_ARGUMENTS})
  if(NOT G_ARCH)
    set(G_ARCH both)
  endif()
  if(NOT G_ARCH MATCHES "^(both|x86_64|arm64)$")
    message(FATAL_ERROR "keel_add_guest(${name}): ARCH ${G_ARCH}: write both, x86_64 or arm64")
  endif()
  if(NOT G_ARCH STREQUAL "both" AND NOT G_ARCH STREQUAL KEEL_SDK_ARCH)
    return()
  endif()
  if(NOT sources)
    message(FATAL_ERROR "keel_add_guest(${name}): no source files given")
  endif()
  if(NOT G_FORMAT)
    set(G_FORMAT flat)
  endif()
  if(NOT G_FORMAT MATCHES "^(flat|elf)$")
    message(FATAL_ERROR "keel_add_guest(${name}): FORMAT ${G_FORMAT}: write flat or elf")
  endif()
  if(G_BASE AND G_FORMAT STREQUAL "flat" AND NOT G_RUNTIME STREQUAL "none")
    message(FATAL_ERROR "keel_add_guest(${name}): BASE is for FORMAT elf: a flat image runs at "
                        "Keel's default load address (${KEEL_SDK_DEFAULT_BASE})")
  endif()
  if(NOT G_BASE)
    set(G_BASE ${KEEL_SDK_DEFAULT_BASE})
  endif()
  if(NOT G_RUNTIME)
    set(G_RUNTIME sdk)
  endif()
  if(NOT G_OUTPUT_DIR)
    set(G_OUTPUT_DIR ${KEEL_GUEST_OUTPUT_DIR})
  endif()

  set(exe guest_${name})
  if(G_RUNTIME STREQUAL "sdk")
    keel_sdk_runtime()
    if(NOT G_LINKER_SCRIPT)
      set(G_LINKER_SCRIPT ${KEEL_SDK_DIR}/guest.ld)
    endif()
    add_executable(${exe} ${sources} $<TARGET_OBJECTS:keel_guest_sdk_rt>)
    target_compile_options(${exe} PRIVATE ${KEEL_SDK_NOSTDINC})
    target_include_directories(${exe} SYSTEM PRIVATE ${KEEL_SDK_LIBC_INCLUDE})
    target_include_directories(${exe} PRIVATE ${KEEL_SDK_DIR}/include
                               ${KEEL_SDK_KEEL_DIR}/vmm/include)
    target_compile_options(${exe} PRIVATE ${KEEL_SDK_CFLAGS})
    set(libs -Wl,--start-group ${KEEL_SDK_LIBC_ARCHIVES} -Wl,--end-group)
    set(gc -Wl,--gc-sections)
  elseif(G_RUNTIME STREQUAL "none")
    if(NOT G_LINKER_SCRIPT)
      message(FATAL_ERROR "keel_add_guest(${name}): RUNTIME none needs a LINKER_SCRIPT")
    endif()
    add_executable(${exe} ${sources})
    set(libs "")
    set(gc "")
  else()
    message(FATAL_ERROR "keel_add_guest(${name}): RUNTIME ${G_RUNTIME}: write sdk or none")
  endif()
  target_compile_options(${exe} PRIVATE ${G_COMPILE_OPTIONS})
  target_compile_definitions(${exe} PRIVATE ${G_DEFINES})
  # guest_base before the script, whose DEFINED(guest_base) must see it.
  set(ldflags -Wl,--defsym=guest_base=${G_BASE})
  if(G_STACK_SIZE)
    list(APPEND ldflags -Wl,--defsym=__keel_stack_size=${G_STACK_SIZE})
  endif()
  list(APPEND ldflags -nostdlib -static -no-pie -Wl,-T,${G_LINKER_SCRIPT} ${gc} -Wl,--build-id=none -Wl,-z,noexecstack -Wl,-z,max-page-size=0x1000
       -Wl,--no-dynamic-linker)
  target_link_options(${exe} PRIVATE ${ldflags})
  target_link_libraries(${exe} PRIVATE ${libs})
  set_target_properties(${exe} PROPERTIES LINK_DEPENDS ${G_LINKER_SCRIPT}
                                          RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})

  if(G_FORMAT STREQUAL "elf")
    set(out ${G_OUTPUT_DIR}/${name}.elf)
    set(convert ${CMAKE_OBJCOPY} --strip-debug $<TARGET_FILE:${exe}> ${out})
  elseif(G_RUNTIME STREQUAL "none")
    # Freestanding guests carry .bss as zeros in the file (no runtime clears it).
    set(out ${G_OUTPUT_DIR}/${name}.bin)
    set(convert ${CMAKE_OBJCOPY} -O binary --set-section-flags .bss=alloc,load,contents
                $<TARGET_FILE:${exe}> ${out})
  else()
    set(out ${G_OUTPUT_DIR}/${name}.bin)
    set(convert ${CMAKE_OBJCOPY} -O binary $<TARGET_FILE:${exe}> ${out})
  endif()
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${G_OUTPUT_DIR}
    COMMAND ${convert}
    DEPENDS ${exe} VERBATIM COMMENT "Guest ${name} (${KEEL_SDK_ARCH}, ${G_FORMAT})")
  add_custom_target(${exe}_image ALL DEPENDS ${out})
  set_property(GLOBAL APPEND PROPERTY KEEL_GUEST_IMAGE_TARGETS ${exe}_image)
  set(KEEL_GUEST_IMAGE ${out} PARENT_SCOPE)
endfunction()
