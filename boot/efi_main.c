/*
 * UEFI entry. Everything that needs boot services happens here, in this order:
 *   1. serial console up, banner;
 *   2. can this CPU run VMs at all (arch_virt_probe: SVM/NPT present, not disabled)?
 *   3. find the ACPI RSDP in the configuration table;
 *   4. read keel.cfg from keel.efi's own directory on its partition and parse it;
 *   5. read every guest image it names from that same directory;
 *   6. check the VMs' memory against the free memory in the UEFI memory map;
 *   7. GetMemoryMap + ExitBootServices, refetching the map while the key is stale;
 * then hand a struct boot_info to the kernel on Keel's own stack and never call boot
 * services again. Before all of it, efi_main (not instrumented itself) sets the stack
 * protector's canary, so every protected function runs with the final one. Any failure before
 * ExitBootServices prints one "keel: error: ..." line on the console and the serial port and
 * returns an EFI error to the firmware.
 */
#include <efi.h>

#include <stdio.h>
#include <string.h>

#include <keel/arch.h>
#include <keel/boot.h>
#include <keel/check.h>
#include <keel/errno.h>
#include <keel/log.h>
#include <keel/stack_protector.h>
#include <keel/time.h>
#include <keel/wallclock.h>
#include <vmm/config.h>
#include <vmm/vmm.h>

#define KEEL_CONFIG_NAME "keel.cfg"
#define KEEL_OVERHEAD    (16ull << 20) /* Keel's tables, control blocks, allocator slack */
#define EBS_MAX_TRIES    8
#define PATH16_MAX       260

static EFI_SYSTEM_TABLE *st;
static EFI_BOOT_SERVICES *bs;
/* From the firmware's pool, not the image: on arm64 the image file carries its bss as zeros
 * (docs/boot.md), and these two are 20 KiB. */
static struct boot_info *bi;
static uint64_t entry_tsc; /* arch_tsc() at efi_main's start (boot_info.entry_tsc) */
static struct keel_config *config;
static bool console_alive;
static bool console_on_serial; /* the firmware already mirrors its console to a UART */

static EFI_GUID loaded_image_guid = EFI_LOADED_IMAGE_PROTOCOL_GUID;
static EFI_GUID sfs_guid = EFI_SIMPLE_FILE_SYSTEM_PROTOCOL_GUID;
static EFI_GUID file_info_guid = EFI_FILE_INFO_ID;
static EFI_GUID acpi20_guid = ACPI_20_TABLE_GUID;
static EFI_GUID acpi10_guid = ACPI_TABLE_GUID;
static EFI_GUID global_variable_guid = EFI_GLOBAL_VARIABLE;
static EFI_GUID rng_guid = EFI_RNG_PROTOCOL_GUID;
static const char *canary_source; /* NULL: neither generator, the counter stands in */

/* Log sink while boot services run: the firmware console and COM1. */
static void efi_console_write(const char *s, unsigned long len)
{
        CHAR16 buf[128];
        unsigned n = 0;

        if (!console_alive || !console_on_serial)
                arch_console_write(s, len);
        if (!console_alive)
                return;
        for (unsigned long i = 0; i < len; i++) {
                if (s[i] == '\n')
                        buf[n++] = L'\r';
                buf[n++] = (CHAR16)(unsigned char)s[i];
                if (n >= ARRAY_SIZE(buf) - 2 || i + 1 == len) {
                        buf[n] = 0;
                        st->ConOut->OutputString(st->ConOut, buf);
                        n = 0;
                }
        }
}

/*
 * Does the firmware's console output (the ConOut variable) include a serial port? Then every
 * console line already reaches the serial log, and writing to COM1 as well would print each
 * message twice there.
 */
static bool conout_has_uart(void)
{
        UINT8 buf[512];
        UINTN size = sizeof(buf);
        UINTN off = 0;

        if (EFI_ERROR(st->RuntimeServices->GetVariable(L"ConOut", &global_variable_guid, NULL,
                                                       &size, buf)))
                return false;
        while (off + 4 <= size) {
                EFI_DEVICE_PATH *dp = (EFI_DEVICE_PATH *)(buf + off);
                unsigned node_len = dp->Length[0] | (dp->Length[1] << 8);

                if (dp->Type == MESSAGING_DEVICE_PATH && dp->SubType == MSG_UART_DP)
                        return true;
                if (node_len < 4)
                        break;
                off += node_len;
        }
        return false;
}

static bool guid_eq(const EFI_GUID *a, const EFI_GUID *b)
{
        return memcmp(a, b, sizeof(*a)) == 0;
}

static EFI_STATUS fail(EFI_STATUS status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static EFI_STATUS fail(EFI_STATUS status, const char *fmt, ...)
{
        char line[600];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "error: %s", line);
        log_printf(LOG_LEVEL_ERROR | LOG_KEEL, "returning to the firmware");
        return status;
}

/* keel.efi's directory as a UEFI path ("\EFI\BOOT\"), from the loaded image's file path. */
static void image_directory(EFI_LOADED_IMAGE *li, CHAR16 *dir, unsigned max)
{
        EFI_DEVICE_PATH *dp = li->FilePath;
        unsigned n = 0, last_sep = 0;

        while (dp && !(dp->Type == END_DEVICE_PATH_TYPE)) {
                unsigned node_len = dp->Length[0] | (dp->Length[1] << 8);

                if (node_len < 4)
                        break;
                if (dp->Type == MEDIA_DEVICE_PATH && dp->SubType == MEDIA_FILEPATH_DP) {
                        const CHAR16 *name = ((FILEPATH_DEVICE_PATH *)dp)->PathName;
                        unsigned chars = (node_len - 4) / 2;

                        if (n > 0 && dir[n - 1] != L'\\' && name[0] != L'\\' && n < max - 1)
                                dir[n++] = L'\\';
                        for (unsigned i = 0; i < chars && name[i] && n < max - 1; i++)
                                dir[n++] = name[i] == L'/' ? L'\\' : name[i];
                }
                dp = (EFI_DEVICE_PATH *)((UINT8 *)dp + node_len);
        }
        for (unsigned i = 0; i < n; i++)
                if (dir[i] == L'\\')
                        last_sep = i + 1;
        dir[last_sep] = 0;
        if (last_sep == 0) {
                dir[0] = L'\\';
                dir[1] = 0;
        }
}

/*
 * The unique GUID of the GPT partition keel.efi was loaded from (its device's hard-drive
 * device-path node), so that Keel never gives that partition's disk away whole
 * (docs/storage.md). Not found (e.g. an MBR disk or QEMU's virtual FAT): has_esp_uuid false.
 */
static void boot_partition(EFI_HANDLE device)
{
        static EFI_GUID dp_guid = EFI_DEVICE_PATH_PROTOCOL_GUID;
        EFI_DEVICE_PATH *dp;

        if (EFI_ERROR(bs->HandleProtocol(device, &dp_guid, (void **)&dp)))
                return;
        while (dp && dp->Type != END_DEVICE_PATH_TYPE) {
                unsigned node_len = dp->Length[0] | (dp->Length[1] << 8);

                if (node_len < 4)
                        break;
                if (dp->Type == MEDIA_DEVICE_PATH && dp->SubType == MEDIA_HARDDRIVE_DP &&
                    node_len >= sizeof(HARDDRIVE_DEVICE_PATH)) {
                        const HARDDRIVE_DEVICE_PATH *hd = (const HARDDRIVE_DEVICE_PATH *)dp;

                        if (hd->SignatureType == SIGNATURE_TYPE_GUID) {
                                memcpy(bi->esp_uuid, hd->Signature, 16);
                                bi->has_esp_uuid = true;
                        }
                }
                dp = (EFI_DEVICE_PATH *)((UINT8 *)dp + node_len);
        }
}

/* dir + relative '/'-separated ASCII path -> UEFI path. */
static void join_path(const CHAR16 *dir, const char *rel, CHAR16 *out, unsigned max)
{
        unsigned n = 0;

        for (unsigned i = 0; dir[i] && n < max - 1; i++)
                out[n++] = dir[i];
        for (unsigned i = 0; rel[i] && n < max - 1; i++)
                out[n++] = rel[i] == '/' ? L'\\' : (CHAR16)(unsigned char)rel[i];
        out[n] = 0;
}

static void path_to_ascii(const CHAR16 *p, char *out, unsigned max)
{
        unsigned n = 0;

        for (; *p && n < max - 1; p++)
                out[n++] = *p < 128 ? (char)*p : '?';
        out[n] = 0;
}

/* Read a whole file into pool memory (EfiLoaderData: never given to the page allocator). */
static EFI_STATUS read_file(EFI_FILE_HANDLE root, const CHAR16 *path, void **data, UINT64 *size)
{
        EFI_FILE_HANDLE f;
        UINT8 info_buf[128 + 2 * PATH16_MAX] __attribute__((aligned(8)));
        UINTN info_size = sizeof(info_buf);
        EFI_STATUS s;
        UINTN len;

        s = root->Open(root, &f, (CHAR16 *)path, EFI_FILE_MODE_READ, 0);
        if (EFI_ERROR(s))
                return s;
        s = f->GetInfo(f, &file_info_guid, &info_size, info_buf);
        if (EFI_ERROR(s))
                goto out;
        len = ((EFI_FILE_INFO *)info_buf)->FileSize;
        s = bs->AllocatePool(EfiLoaderData, len ? len : 1, data);
        if (EFI_ERROR(s))
                goto out;
        *size = len;
        if (len)
                s = f->Read(f, &len, *data);
        if (!EFI_ERROR(s) && len != *size)
                s = EFI_DEVICE_ERROR;
out:
        f->Close(f);
        return s;
}

static void find_rsdp(void)
{
        for (UINTN i = 0; i < st->NumberOfTableEntries; i++)
                if (guid_eq(&st->ConfigurationTable[i].VendorGuid, &acpi20_guid))
                        bi->rsdp = hpa((uint64_t)(uintptr_t)st->ConfigurationTable[i].VendorTable);
        if (hpa_raw(bi->rsdp))
                return;
        for (UINTN i = 0; i < st->NumberOfTableEntries; i++)
                if (guid_eq(&st->ConfigurationTable[i].VendorGuid, &acpi10_guid))
                        bi->rsdp = hpa((uint64_t)(uintptr_t)st->ConfigurationTable[i].VendorTable);
}

/* Fill the boot info's usable ranges and phys_top from a memory map. */
static void scan_memory_map(const UINT8 *map, UINTN map_size, UINTN desc_size)
{
        bi->usable_count = 0;
        bi->usable_bytes = 0;
        bi->phys_top = 0;
        bi->map_count = 0;
        for (UINTN off = 0; off + desc_size <= map_size; off += desc_size) {
                const EFI_MEMORY_DESCRIPTOR *d = (const EFI_MEMORY_DESCRIPTOR *)(map + off);
                uint64_t end = d->PhysicalStart + d->NumberOfPages * PAGE_SIZE;
                bool wb = (d->Attribute & EFI_MEMORY_WB) != 0;
                struct boot_mem_range *last = bi->map_count ? &bi->map[bi->map_count - 1] : NULL;

                if (end > bi->phys_top)
                        bi->phys_top = end;
                if (d->NumberOfPages && last && last->wb == wb &&
                    hpa_raw(last->base) + last->pages * PAGE_SIZE == d->PhysicalStart)
                        last->pages += d->NumberOfPages;
                else if (d->NumberOfPages && bi->map_count < BOOT_MAX_MAP_RANGES)
                        bi->map[bi->map_count++] =
                            (struct boot_mem_range){hpa(d->PhysicalStart), d->NumberOfPages, wb};
                if (d->Type != EfiConventionalMemory || d->NumberOfPages == 0)
                        continue;
                bi->usable_bytes += d->NumberOfPages * PAGE_SIZE;
                if (bi->usable_count < PALLOC_MAX_RANGES)
                        bi->usable[bi->usable_count++] =
                            (struct mem_range){hpa(d->PhysicalStart), d->NumberOfPages};
        }
}

/*
 * An image, kernel or initrd that an earlier VM (of the first n) names by the same path, or
 * NULL. VMs only read these (boot_image.data is const), so they share one copy: 64 VMs of one
 * kernel cost one read and one buffer (docs/benchmarks.md: costs by VM count). Disks are
 * each VM's own (the guest writes them).
 */
static const struct boot_image *read_before(unsigned n, const char *rel)
{
        for (unsigned i = 0; i < n; i++) {
                const struct boot_vm_files *f = &bi->vm_files[i];

                if (f->image.size && !strcmp(f->image.path, rel))
                        return &f->image;
                if (f->initrd.size && !strcmp(f->initrd.path, rel))
                        return &f->initrd;
        }
        return NULL;
}

/* Read one file a VM's config names (`what` is its key: image, kernel, initrd, disk). */
static EFI_STATUS read_vm_file(EFI_FILE_HANDLE root, const CHAR16 *dir, const char *dir_ascii,
                               const struct vm_config *vc, const char *what, const char *rel,
                               struct boot_image *out)
{
        const struct boot_image *same =
            strcmp(what, "disk") ? read_before(vc - config->vms, rel) : NULL;
        CHAR16 path[PATH16_MAX];
        void *data;
        UINT64 size;
        EFI_STATUS s;

        if (same) {
                *out = (struct boot_image){rel, same->data, same->size};
                return EFI_SUCCESS;
        }
        join_path(dir, rel, path, PATH16_MAX);
        s = read_file(root, path, &data, &size);
        if (EFI_ERROR(s))
                return fail(s,
                            "cannot read %s '%s' of VM '%s' (%s%s, status %#llx): copy it next "
                            "to keel.efi or fix '%s =' in %s",
                            what, rel, vc->name, dir_ascii, rel, (unsigned long long)s, what,
                            KEEL_CONFIG_NAME);
        *out = (struct boot_image){rel, data, size};
        LOG_INFO("%s %s for VM %s: %llu bytes", what, rel, vc->name, (unsigned long long)size);
        return EFI_SUCCESS;
}

static EFI_STATUS load_config_and_images(EFI_HANDLE image)
{
        EFI_LOADED_IMAGE *li;
        EFI_FILE_IO_INTERFACE *fs;
        EFI_FILE_HANDLE root;
        CHAR16 dir[PATH16_MAX], path[PATH16_MAX];
        char dir_ascii[PATH16_MAX], err[CONFIG_ERR_MAX];
        void *text;
        UINT64 text_size;
        EFI_STATUS s;
        int r;

        s = bs->HandleProtocol(image, &loaded_image_guid, (void **)&li);
        if (EFI_ERROR(s))
                return fail(s, "cannot get keel.efi's loaded-image protocol (status %#llx)",
                            (unsigned long long)s);
        bi->image_base = hpa((uint64_t)(uintptr_t)li->ImageBase);
        bi->image_size = li->ImageSize;
        /* keel.so's addresses start at 0: this is the offset gdb needs (docs/debugging.md) */
        LOG_INFO("image at %#llx, %llu KiB", (unsigned long long)hpa_raw(bi->image_base),
                 (unsigned long long)(bi->image_size >> 10));
        boot_partition(li->DeviceHandle);
        s = bs->HandleProtocol(li->DeviceHandle, &sfs_guid, (void **)&fs);
        if (EFI_ERROR(s))
                return fail(s,
                            "the device keel.efi was loaded from has no file system: put keel.efi "
                            "and keel.cfg on a FAT EFI system partition");
        s = fs->OpenVolume(fs, &root);
        if (EFI_ERROR(s))
                return fail(s, "cannot open the EFI system partition (status %#llx)",
                            (unsigned long long)s);

        image_directory(li, dir, PATH16_MAX);
        path_to_ascii(dir, dir_ascii, sizeof(dir_ascii));
        join_path(dir, KEEL_CONFIG_NAME, path, PATH16_MAX);
        s = read_file(root, path, &text, &text_size);
        if (EFI_ERROR(s))
                return fail(s,
                            "cannot read the config file %s%s (status %#llx): create it next to "
                            "keel.efi (see docs/config.md)",
                            dir_ascii, KEEL_CONFIG_NAME, (unsigned long long)s);
        /* Room for as many VMs as the text can name, and their files: bounded by memory. */
        config->vm_max = config_vm_room(text, text_size);
        if (EFI_ERROR(bs->AllocatePool(EfiLoaderData, config->vm_max * sizeof(*config->vms),
                                       (void **)&config->vms)) ||
            EFI_ERROR(bs->AllocatePool(EfiLoaderData, config->vm_max * sizeof(*bi->vm_files),
                                       (void **)&bi->vm_files)))
                return fail(EFI_OUT_OF_RESOURCES,
                            "out of memory for the config's %u VM sections: give the machine "
                            "more memory or the config fewer VMs",
                            config->vm_max);
        memset(bi->vm_files, 0, config->vm_max * sizeof(*bi->vm_files));
        r = config_parse(text, text_size, KEEL_CONFIG_NAME, config, err, sizeof(err));
        if (r < 0)
                return fail(EFI_LOAD_ERROR, "invalid config: %s", err);
        log_set_level(config->log_level);
        bi->config = config;
        LOG_INFO("config %s%s: %u VM%s", dir_ascii, KEEL_CONFIG_NAME, config->vm_count,
                 config->vm_count == 1 ? "" : "s");

        for (unsigned i = 0; i < config->vm_count; i++) {
                const struct vm_config *vc = &config->vms[i];
                struct boot_vm_files *f = &bi->vm_files[i];

                s = vc->kernel[0]
                        ? read_vm_file(root, dir, dir_ascii, vc, "kernel", vc->kernel, &f->image)
                        : read_vm_file(root, dir, dir_ascii, vc, "image", vc->image, &f->image);
                if (!EFI_ERROR(s) && vc->initrd[0])
                        s = read_vm_file(root, dir, dir_ascii, vc, "initrd", vc->initrd,
                                         &f->initrd);
                if (!EFI_ERROR(s) && vc->disk[0])
                        s = read_vm_file(root, dir, dir_ascii, vc, "disk", vc->disk, &f->disk);
                if (EFI_ERROR(s))
                        return s;
        }
        root->Close(root);
        return EFI_SUCCESS;
}

static EFI_STATUS check_memory(void)
{
        UINTN size = 0, key, desc_size;
        UINT32 ver;
        UINT8 *map;
        uint64_t need = KEEL_OVERHEAD, largest = 0;
        EFI_STATUS s;

        s = bs->GetMemoryMap(&size, NULL, &key, &desc_size, &ver);
        if (s != EFI_BUFFER_TOO_SMALL)
                return fail(s, "GetMemoryMap failed (status %#llx)", (unsigned long long)s);
        size += 8 * desc_size;
        s = bs->AllocatePool(EfiLoaderData, size, (void **)&map);
        if (EFI_ERROR(s))
                return fail(s, "out of memory for the memory map");
        s = bs->GetMemoryMap(&size, (EFI_MEMORY_DESCRIPTOR *)map, &key, &desc_size, &ver);
        if (EFI_ERROR(s))
                return fail(s, "GetMemoryMap failed (status %#llx)", (unsigned long long)s);
        scan_memory_map(map, size, desc_size);
        bs->FreePool(map);
        for (unsigned i = 0; i < config->vm_count; i++) {
                need += config->vms[i].memory;
                if (config->vms[i].memory > largest)
                        largest = config->vms[i].memory;
        }
        /* VMs run one after another, so the biggest VM and Keel itself must fit. */
        if (largest + KEEL_OVERHEAD > bi->usable_bytes)
                return fail(EFI_OUT_OF_RESOURCES,
                            "too little memory: the largest VM in keel.cfg needs %llu MiB and Keel "
                            "%llu MiB, but the machine has %llu MiB free: lower 'memory =' or give "
                            "the machine more RAM",
                            (unsigned long long)(largest >> 20),
                            (unsigned long long)(KEEL_OVERHEAD >> 20),
                            (unsigned long long)(bi->usable_bytes >> 20));
        LOG_INFO("%llu MiB free RAM, VMs need %llu MiB in total",
                 (unsigned long long)(bi->usable_bytes >> 20), (unsigned long long)(need >> 20));
        return EFI_SUCCESS;
}

/*
 * The firmware may change the map between GetMemoryMap and ExitBootServices (even a Print
 * does): then ExitBootServices fails with EFI_INVALID_PARAMETER and we fetch the map again.
 * Nothing between the two calls may allocate or print.
 */
static EFI_STATUS exit_boot_services(EFI_HANDLE image)
{
        UINTN size = 0, buf_size, key, desc_size;
        UINT32 ver;
        UINT8 *map;
        EFI_STATUS s;

        s = bs->GetMemoryMap(&size, NULL, &key, &desc_size, &ver);
        if (s != EFI_BUFFER_TOO_SMALL)
                return fail(s, "GetMemoryMap failed (status %#llx)", (unsigned long long)s);
        buf_size = size + 16 * desc_size; /* room for the pool allocation itself and more */
        s = bs->AllocatePool(EfiLoaderData, buf_size, (void **)&map);
        if (EFI_ERROR(s))
                return fail(s, "out of memory for the memory map");
        for (unsigned tries = 1; tries <= EBS_MAX_TRIES; tries++) {
                size = buf_size;
                s = bs->GetMemoryMap(&size, (EFI_MEMORY_DESCRIPTOR *)map, &key, &desc_size, &ver);
                if (EFI_ERROR(s))
                        return fail(s, "GetMemoryMap failed (status %#llx)", (unsigned long long)s);
                s = bs->ExitBootServices(image, key);
                if (!EFI_ERROR(s)) {
                        console_alive = false;
                        bs = NULL;
                        bi->map_tries = tries;
                        scan_memory_map(map, size, desc_size);
                        return EFI_SUCCESS;
                }
                if (s != EFI_INVALID_PARAMETER)
                        return fail(s, "ExitBootServices failed (status %#llx)",
                                    (unsigned long long)s);
        }
        return fail(EFI_ABORTED,
                    "ExitBootServices kept failing with a stale memory map key "
                    "after %d tries",
                    EBS_MAX_TRIES);
}

/*
 * The canary's seed: the CPU's generator (RDRAND / RNDR), else the firmware's
 * EFI_RNG_PROTOCOL, else the cycle counter (weak; efi_boot warns). Not instrumented: it runs
 * before the canary is set.
 */
__attribute__((no_stack_protector)) static uint64_t canary_seed(void)
{
        EFI_RNG_PROTOCOL *rng;
        uint64_t v = 0;

        if (arch_random_u64(&v)) {
                canary_source = "the CPU's random number instruction";
                return v;
        }
        if (!EFI_ERROR(bs->LocateProtocol(&rng_guid, NULL, (void **)&rng)) &&
            !EFI_ERROR(rng->GetRNG(rng, NULL, sizeof(v), (UINT8 *)&v))) {
                canary_source = "the firmware's EFI_RNG_PROTOCOL";
                return v;
        }
        return arch_tsc() * 0x9e3779b97f4a7c15ull;
}

static EFI_STATUS efi_boot(EFI_HANDLE image) __attribute__((noinline));

EFI_STATUS EFIAPI efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab);

/*
 * The image's entry point (keel.efi has no crt0: the firmware has applied the relocations,
 * docs/boot.md), hence EFIAPI. Not instrumented: the canary changes in here, and efi_main
 * may return to the firmware. used, externally_visible: only the linker script's ENTRY names
 * it, which link-time optimisation does not count as a use (it would drop it).
 */
__attribute__((no_stack_protector, used, externally_visible)) EFI_STATUS EFIAPI
efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
        entry_tsc = arch_tsc();
        st = systab;
        bs = systab->BootServices;
        stack_protector_init(canary_seed());
        return efi_boot(image);
}

/*
 * The time of day, once, from the firmware's real-time clock: Keel carries it on with its own
 * counter (keel/wallclock.h). Taken as UTC whatever its TimeZone field says, as Linux's
 * rtc-efi does (OVMF and AAVMF give QEMU's RTC, UTC unless `-rtc base=localtime`).
 */
static void read_firmware_time(void)
{
        EFI_TIME t;
        EFI_STATUS s = st->RuntimeServices->GetTime(&t, NULL);
        struct civil_time c = {.year = t.Year,
                               .month = t.Month,
                               .day = t.Day,
                               .hour = t.Hour,
                               .minute = t.Minute,
                               .second = t.Second};

        if (EFI_ERROR(s) || !civil_valid(&c) || t.Nanosecond > 999999999) {
                LOG_WARN("the firmware gives no usable time of day (GetTime status %#llx): "
                         "guests' real-time clocks count from 1970-01-01",
                         (unsigned long long)s);
                return;
        }
        bi->wall_tsc = arch_tsc();
        bi->wall_ns = unix_from_civil(&c) * 1000000000ull + t.Nanosecond;
        LOG_INFO("time of day from the firmware: %04u-%02u-%02u %02u:%02u:%02u UTC", c.year,
                 c.month, c.day, c.hour, c.minute, c.second);
}

static EFI_STATUS efi_boot(EFI_HANDLE image)
{
        char why[512];
        EFI_PHYSICAL_ADDRESS stack_area, low_page;
        EFI_STATUS s;

        if (EFI_ERROR(bs->AllocatePool(EfiLoaderData, sizeof(*bi), (void **)&bi)) ||
            EFI_ERROR(bs->AllocatePool(EfiLoaderData, sizeof(*config), (void **)&config)))
                return EFI_OUT_OF_RESOURCES; /* before any console: nothing to say it with */
        memset(bi, 0, sizeof(*bi));
        bi->entry_tsc = entry_tsc;
        memset(config, 0, sizeof(*config));
        console_alive = st->ConOut != NULL;
        console_on_serial = console_alive && conout_has_uart();
        find_rsdp();
        arch_console_init(bi->rsdp);
        log_set_sink(efi_console_write);
        LOG_INFO("Keel hypervisor starting (UEFI, %s)", KEEL_ARCH_NAME);
        if (canary_source)
                LOG_INFO("stack-protector canary from %s", canary_source);
        else
                LOG_WARN("no random number generator (neither the CPU's nor the "
                         "firmware's): the stack-protector canary comes from the cycle counter "
                         "and is guessable");

        if (arch_virt_probe(why, sizeof(why)) < 0)
                return fail(EFI_UNSUPPORTED, "%s", why);
        arch_virt_describe(why, sizeof(why));
        LOG_INFO("%s", why);

        if (hpa_raw(bi->rsdp))
                LOG_INFO("ACPI RSDP at %#llx", (unsigned long long)hpa_raw(bi->rsdp));
        else
                LOG_WARN("the firmware provides no ACPI RSDP");

        s = load_config_and_images(image);
        if (EFI_ERROR(s))
                return s;
        read_firmware_time();
        s = check_memory();
        if (EFI_ERROR(s))
                return s;
        s = bs->AllocatePages(AllocateAnyPages, EfiLoaderData, BOOT_STACK_AREA / PAGE_SIZE,
                              &stack_area);
        if (EFI_ERROR(s))
                return fail(s, "out of memory for Keel's stacks (%u KiB)", BOOT_STACK_AREA / 1024);
        bi->stack_area = hva((uintptr_t)stack_area);
        /* Below 1 MiB (x86: where a SIPI starts the other CPUs); none is not an error here. */
        low_page = 0x100000 - 1;
        if (!EFI_ERROR(bs->AllocatePages(AllocateMaxAddress, EfiLoaderData, 1, &low_page)))
                bi->low_page = hpa(low_page);

        LOG_INFO("exiting boot services");
        s = exit_boot_services(image);
        if (EFI_ERROR(s))
                return s;
        log_set_sink(arch_console_write);
        arch_enter_kernel(bi);
}
