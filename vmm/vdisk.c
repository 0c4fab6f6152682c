/*
 * Resolving `disk = DEV:...` for every VM at once (vmm/include/vmm/vdisk.h, docs/storage.md).
 * Runs on the boot CPU before any VM is built; reads only (GPT blocks, through blkdev_sync).
 */
#include <stdio.h>
#include <string.h>

#include <keel/errno.h>
#include <keel/log.h>
#include <vmm/vdisk.h>

_Static_assert(CONFIG_DISK_DEV_MAX == BLKDEV_NAME_MAX, "config's disk names fit blkdev names");
_Static_assert(CONFIG_DISK_PART_MAX == GPT_NAME_MAX, "config's partition names fit GPT names");

void vdisk_spec_text(const struct disk_source *d, char *buf, unsigned n)
{
        char g[37];

        switch (d->kind) {
        case DISK_WHOLE:
                snprintf(buf, n, "%s:whole", d->dev);
                break;
        case DISK_PART:
                snprintf(buf, n, "%s:part=%s", d->dev, d->part);
                break;
        case DISK_PARTUUID:
                gpt_guid_format(d->uuid, g);
                snprintf(buf, n, "%s:partuuid=%s", d->dev, g);
                break;
        case DISK_LBA:
                snprintf(buf, n, "%s:lba=%llu+%llu", d->dev, (unsigned long long)d->lba,
                         (unsigned long long)d->count);
                break;
        default:
                snprintf(buf, n, "?");
                break;
        }
}

static int read_block(void *ctx, uint64_t lba, void *buf)
{
        struct blkdev *d = ctx;
        struct blk_seg seg = {.pa = arch_hva_to_hpa(hva_from_ptr(buf)), .len = d->block_size};
        struct blk_req r = {.op = BLK_READ, .lba = lba, .blocks = 1, .seg = &seg, .nseg = 1};

        return blkdev_sync(d, &r) ? -KEEL_EIO : 0;
}

/* The names of Keel's disks, for a message. */
static void list_disks(char *buf, size_t n)
{
        size_t used = 0;

        buf[0] = 0;
        for (unsigned i = 0; i < blkdev_count() && used < n; i++) {
                int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", blkdev_get(i)->name);
                if (k < 0)
                        break;
                used += (size_t)k;
        }
}

static void list_parts(const struct gpt *g, char *buf, size_t n)
{
        size_t used = 0;

        snprintf(buf, n, "none");
        for (unsigned i = 0; i < g->count && used < n; i++) {
                int k = snprintf(buf + used, n - used, "%s%u '%s'", i ? ", " : "", g->part[i].index,
                                 g->part[i].name);
                if (k < 0)
                        break;
                used += (size_t)k;
        }
}

/* The partition the config names, or NULL (why set). */
static const struct gpt_part *find_part(const struct disk_source *ds, const struct gpt *g,
                                        char *why, size_t n)
{
        const struct gpt_part *found = NULL;
        unsigned matches = 0;
        char parts[160];

        for (unsigned i = 0; i < g->count; i++) {
                const struct gpt_part *p = &g->part[i];
                if (ds->kind == DISK_PART ? !strcmp(p->name, ds->part)
                                          : !memcmp(p->uuid, ds->uuid, 16)) {
                        found = p;
                        matches++;
                }
        }
        if (matches == 1)
                return found;
        list_parts(g, parts, sizeof(parts));
        if (matches)
                snprintf(why, n,
                         "%u partitions of %s are named '%s': name one by partuuid=", matches,
                         ds->dev, ds->part);
        else
                snprintf(why, n, "%s has no such partition (its partitions: %s)", ds->dev, parts);
        return NULL;
}

static bool holds_esp(const struct gpt *g, const uint8_t *boot_esp, unsigned *index)
{
        for (unsigned i = 0; i < g->count; i++)
                if (boot_esp ? !memcmp(g->part[i].uuid, boot_esp, 16)
                             : !memcmp(g->part[i].type, gpt_esp_type, 16)) {
                        *index = g->part[i].index;
                        return true;
                }
        return false;
}

/* Resolve one VM's disk into *v (v->dev NULL and v->why set when refused). */
static void resolve(const char *key, const struct disk_source *ds, bool readonly,
                    const uint8_t *boot_esp, struct vdisk_scratch *s, bool *warned, struct vdisk *v)
{
        struct blkdev *dev = blkdev_find(ds->dev);
        char why[VDISK_WHY_MAX - 64], disks[128];
        const struct gpt_part *p = NULL;
        unsigned esp = 0;
        int err = -KEEL_ENOENT;

        why[0] = 0;
        if (!dev) {
                list_disks(disks, sizeof(disks));
                if (disks[0])
                        snprintf(why, sizeof(why), "no disk %s (Keel's disks: %s)", ds->dev, disks);
                else
                        snprintf(why, sizeof(why),
                                 "no disk %s: Keel drives no disk on this machine "
                                 "(docs/storage.md)",
                                 ds->dev);
                goto refused;
        }
        snprintf(s->gpt.error, sizeof(s->gpt.error), "blocks of %u bytes are not read",
                 dev->block_size);
        if (dev->block_size <= sizeof(s->block)) {
                struct gpt_disk gd = {.blocks = dev->blocks,
                                      .block_size = dev->block_size,
                                      .read = read_block,
                                      .ctx = dev,
                                      .buf = s->block};
                err = gpt_read(&gd, &s->gpt);
                unsigned di = 0;
                while (di < blkdev_count() && blkdev_get(di) != dev)
                        di++;
                if (!err && s->gpt.warning[0] && di < BLKDEV_MAX && !warned[di]) {
                        warned[di] = true;
                        LOG_WARN("disk %s: %s", dev->name, s->gpt.warning);
                }
        }
        if (ds->kind == DISK_PART || ds->kind == DISK_PARTUUID) {
                if (err) {
                        snprintf(why, sizeof(why), "%s has no usable GPT: %.180s", ds->dev,
                                 err == -KEEL_ENOENT ? s->gpt.error : keel_strerror(err));
                        goto refused;
                }
                p = find_part(ds, &s->gpt, why, sizeof(why));
                if (!p)
                        goto refused;
                if (!memcmp(p->type, gpt_esp_type, 16) ||
                    (boot_esp && !memcmp(p->uuid, boot_esp, 16))) {
                        snprintf(why, sizeof(why),
                                 "partition %u '%s' of %s is an EFI system partition: never "
                                 "given to a guest",
                                 p->index, p->name, ds->dev);
                        goto refused;
                }
                v->start = p->first;
                v->blocks = p->last - p->first + 1;
        } else {
                if (!err && holds_esp(&s->gpt, boot_esp, &esp)) {
                        snprintf(why, sizeof(why),
                                 "%s holds Keel's own EFI system partition (partition %u): a "
                                 "VM gets it only as a named partition (%s:part=NAME)",
                                 ds->dev, esp, ds->dev);
                        goto refused;
                }
                v->start = ds->kind == DISK_LBA ? ds->lba : 0;
                v->blocks = ds->kind == DISK_LBA ? ds->count : dev->blocks;
                if (ds->kind == DISK_LBA &&
                    (ds->lba >= dev->blocks || ds->count > dev->blocks - ds->lba)) {
                        snprintf(why, sizeof(why), "blocks %llu+%llu end past %s's %llu blocks",
                                 (unsigned long long)ds->lba, (unsigned long long)ds->count,
                                 ds->dev, (unsigned long long)dev->blocks);
                        goto refused;
                }
        }
        v->dev = dev;
        v->ro = readonly || dev->read_only;
        return;
refused:
        v->dev = NULL;
        snprintf(v->why, sizeof(v->why), "config line %u: %s = ", ds->line, key);
        vdisk_spec_text(ds, v->why + strlen(v->why), (unsigned)(sizeof(v->why) - strlen(v->why)));
        size_t used = strlen(v->why);
        snprintf(v->why + used, sizeof(v->why) - used, ": %s", why);
}

/* Whether two resolved ranges share a block of one device. */
static bool overlaps(const struct vdisk *a, const struct vdisk *b)
{
        return b->dev == a->dev && a->start <= b->start + b->blocks - 1 &&
               b->start <= a->start + a->blocks - 1;
}

void vdisk_plan(const struct keel_config *cfg, const uint8_t *boot_esp, struct vdisk_scratch *s,
                struct vdisk *out)
{
        bool warned[BLKDEV_MAX] = {false};

        for (unsigned i = 0; i < cfg->vm_count; i++) {
                const struct vm_config *vc = &cfg->vms[i];

                memset(&out[i], 0, sizeof(out[i]));
                if (vc->disk_dev.kind != DISK_FILE)
                        resolve("disk", &vc->disk_dev, vc->disk_readonly, boot_esp, s, warned,
                                &out[i]);
        }
        /* Overlaps: the later config line is refused, naming the earlier. */
        for (unsigned i = 0; i < cfg->vm_count; i++) {
                struct vdisk *a = &out[i];

                for (unsigned j = 0; a->dev && j < i; j++) {
                        const struct vdisk *b = &out[j];
                        char spec[CONFIG_DISK_DEV_MAX + CONFIG_DISK_PART_MAX + 48];

                        if (!overlaps(a, b) || (a->ro && b->ro))
                                continue;
                        vdisk_spec_text(&cfg->vms[i].disk_dev, spec, sizeof(spec));
                        snprintf(a->why, sizeof(a->why),
                                 "config line %u: disk = %.150s: blocks %llu-%llu of %s overlap "
                                 "blocks %llu-%llu of [vm %s] (config line %u): two VMs share "
                                 "blocks only when both have disk_readonly = yes",
                                 cfg->vms[i].disk_dev.line, spec, (unsigned long long)a->start,
                                 (unsigned long long)(a->start + a->blocks - 1), a->dev->name,
                                 (unsigned long long)b->start,
                                 (unsigned long long)(b->start + b->blocks - 1), cfg->vms[j].name,
                                 cfg->vms[j].disk_dev.line);
                        a->dev = NULL;
                }
        }
}

__attribute__((cold)) void vdisk_plan_snapshots(const struct keel_config *cfg,
                                                const uint8_t *boot_esp, struct vdisk_scratch *s,
                                                const struct vdisk *disks, struct vdisk *out)
{
        bool warned[BLKDEV_MAX];

        memset(warned, 1, sizeof(warned)); /* vdisk_plan warned about bad GPT copies */
        for (unsigned i = 0; i < cfg->vm_count; i++) {
                const struct disk_source *ds = &cfg->vms[i].snap_dev;
                struct vdisk *a = &out[i];
                const struct vdisk *b = NULL;
                unsigned j, k = 0;
                char spec[CONFIG_DISK_DEV_MAX + CONFIG_DISK_PART_MAX + 48];

                memset(a, 0, sizeof(*a));
                if (ds->kind == DISK_FILE)
                        continue;
                resolve("snapshot", ds, false, boot_esp, s, warned, a);
                for (j = 0; a->dev && !b && j < cfg->vm_count; j++)
                        if (overlaps(a, &disks[j]))
                                b = &disks[j], k = j;
                for (j = 0; a->dev && !b && j < i; j++)
                        if (overlaps(a, &out[j]))
                                b = &out[j], k = j;
                if (!b && (!a->dev || !a->dev->read_only))
                        continue;
                vdisk_spec_text(ds, spec, sizeof(spec));
                if (b)
                        snprintf(a->why, sizeof(a->why),
                                 "config line %u: snapshot = %.150s: blocks %llu-%llu of %s are "
                                 "also [vm %s]'s %s (config line %u): a snapshot partition "
                                 "must be its VM's alone",
                                 ds->line, spec, (unsigned long long)a->start,
                                 (unsigned long long)(a->start + a->blocks - 1), a->dev->name,
                                 cfg->vms[k].name, b == &disks[k] ? "disk" : "snapshot",
                                 b == &disks[k] ? cfg->vms[k].disk_dev.line
                                                : cfg->vms[k].snap_dev.line);
                else
                        snprintf(a->why, sizeof(a->why),
                                 "config line %u: snapshot = %.150s: %s is read-only", ds->line,
                                 spec, a->dev->name);
                a->dev = NULL;
        }
}
