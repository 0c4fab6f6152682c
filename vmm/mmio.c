/* The MMIO bus of a VM: which emulated device answers at a guest-physical address. */
#include <keel/check.h>
#include <keel/errno.h>
#include <vmm/mmio.h>

void mmio_bus_init(struct mmio_bus *bus)
{
        bus->count = 0;
}

int mmio_bus_add(struct mmio_bus *bus, gpa_t base, uint64_t size, const struct mmio_ops *ops,
                 void *dev, const char *name)
{
        uint64_t b = gpa_raw(base);

        if (size == 0 || b + size - 1 < b || !ops || !ops->read || !ops->write)
                return -KEEL_EINVAL;
        for (unsigned i = 0; i < bus->count; i++) {
                uint64_t ob = gpa_raw(bus->regions[i].base);

                if (b <= ob + bus->regions[i].size - 1 && ob <= b + size - 1)
                        return -KEEL_EINVAL;
        }
        if (bus->count == MMIO_MAX_REGIONS)
                return -KEEL_ENOSPC;
        bus->regions[bus->count++] = (struct mmio_region){base, size, ops, dev, name};
        return 0;
}

const struct mmio_region *mmio_bus_find(const struct mmio_bus *bus, gpa_t a, unsigned size)
{
        for (unsigned i = 0; i < bus->count; i++) {
                const struct mmio_region *r = &bus->regions[i];
                uint64_t off = gpa_raw(a) - gpa_raw(r->base); /* huge if below the base */

                if (off < r->size)
                        return size <= r->size - off ? r : NULL;
        }
        return NULL;
}

bool mmio_bus_access(const struct mmio_bus *bus, gpa_t a, unsigned size, bool write, uint64_t *val)
{
        const struct mmio_region *r = mmio_bus_find(bus, a, size);
        uint64_t off;

        CHECK(size == 1 || size == 2 || size == 4 || size == 8);
        if (!r)
                return false;
        off = gpa_raw(a) - gpa_raw(r->base);
        if (write) {
                r->ops->write(r->dev, off, size, *val);
        } else {
                *val = 0;
                r->ops->read(r->dev, off, size, val);
        }
        return true;
}

bool mmio_bus_write_again(const struct mmio_bus *bus, gpa_t a)
{
        const struct mmio_region *r = mmio_bus_find(bus, a, 1);

        return r && r->ops->again && r->ops->again(r->dev);
}
