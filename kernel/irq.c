/*
 * Device vectors and pollers (kernel/include/keel/irq.h). The tables are filled at boot,
 * before any other CPU runs (drivers probe from pci_boot), and only read afterwards; a slot
 * is published with a release store so a CPU that sees its handler sees its argument.
 */
#include <string.h>

#include <keel/errno.h>
#include <keel/irq.h>
#include <keel/smp.h>
#include <keel/time.h>

struct irq_slot {
        irq_fn fn;
        void *arg;
        uint64_t count;
};

#if ARCH_IRQ_COUNT > 0
static struct irq_slot vectors[ARCH_IRQ_COUNT];
#else
static struct irq_slot vectors[1]; /* never used: irq_alloc refuses */
#endif
static struct irq_slot pollers[IRQ_MAX_POLLERS];
static unsigned npollers;
/* The earliest time not yet served at which the pollers may run (maybe past), and the
 * earliest by which they must (the timer's: irq_poll_by_slack); 0: none. */
static uint64_t poll_at, poll_timer_at;

/* Variables, not the macros: an arch with no vectors would make every test below constant. */
static const unsigned first_vector = ARCH_IRQ_FIRST, nvectors = ARCH_IRQ_COUNT;

/* The slot of `vector`, or NULL outside the arch's range. */
static struct irq_slot *slot_of(unsigned vector)
{
        unsigned i = vector - first_vector; /* wraps below the range */

        return i < nvectors ? &vectors[i] : NULL;
}

int irq_alloc(unsigned cpu, irq_fn fn, void *arg, uint8_t *vector)
{
        (void)cpu; /* vectors are Keel-wide: the MSI message picks the CPU */
        if (!nvectors)
                return -KEEL_ENOTSUP;
        for (unsigned i = 0; i < nvectors; i++)
                if (!vectors[i].fn) {
                        vectors[i].arg = arg;
                        vectors[i].count = 0;
                        __atomic_store_n(&vectors[i].fn, fn, __ATOMIC_RELEASE);
                        *vector = (uint8_t)(first_vector + i);
                        return 0;
                }
        return -KEEL_ENOSPC;
}

bool irq_dispatch(unsigned vector)
{
        struct irq_slot *s = slot_of(vector);
        irq_fn fn;

        if (!s)
                return false;
        fn = __atomic_load_n(&s->fn, __ATOMIC_ACQUIRE);
        if (!fn)
                return false;
        __atomic_fetch_add(&s->count, 1, __ATOMIC_RELAXED);
        fn(s->arg);
        return true;
}

uint64_t irq_count(uint8_t vector)
{
        const struct irq_slot *s = slot_of(vector);

        return s ? __atomic_load_n(&s->count, __ATOMIC_RELAXED) : 0;
}

int irq_poll_register(irq_fn fn, void *arg)
{
        if (npollers == IRQ_MAX_POLLERS)
                return -KEEL_ENOSPC;
        pollers[npollers].arg = arg;
        pollers[npollers].fn = fn;
        __atomic_store_n(&npollers, npollers + 1, __ATOMIC_RELEASE);
        return 0;
}

/*
 * Takes irq_poll_by's time if it has come: true if this CPU serves it, and the timer's time
 * with it (unless a request lowered that meanwhile: the timer then comes once for nothing).
 */
static bool poll_ripe(void)
{
        uint64_t at = __atomic_load_n(&poll_at, __ATOMIC_RELAXED),
                 timer = __atomic_load_n(&poll_timer_at, __ATOMIC_RELAXED);

        if (!at || arch_tsc() < at ||
            !__atomic_compare_exchange_n(&poll_at, &at, 0, false, __ATOMIC_RELAXED,
                                         __ATOMIC_RELAXED))
                return false;
        (void)__atomic_compare_exchange_n(&poll_timer_at, &timer, 0, false, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED);
        return true;
}

void irq_poll_all(void)
{
        unsigned n = __atomic_load_n(&npollers, __ATOMIC_ACQUIRE);

        (void)poll_ripe(); /* served now: a poller that still waits asks again */
        for (unsigned i = 0; i < n; i++)
                pollers[i].fn(pollers[i].arg);
}

/* Set by a handler (irq_poll_soon), cleared by the CPU that runs the pollers for it. */
static bool poll_soon;
static unsigned poll_holds;

/* *v = min(*v, t), 0 counting as none. */
static void lower(uint64_t *v, uint64_t t)
{
        uint64_t at = __atomic_load_n(v, __ATOMIC_RELAXED);

        while ((!at || t < at) &&
               !__atomic_compare_exchange_n(v, &at, t, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
}

void irq_poll_by_slack(uint64_t tsc, uint64_t slack)
{
        uint64_t end;

        tsc += !tsc; /* 0 means none */
        end = tsc + slack < tsc ? UINT64_MAX : tsc + slack;
        lower(&poll_at, tsc);
        lower(&poll_timer_at, end);
        arch_timer_by(end);
}

void irq_poll_by(uint64_t tsc)
{
        irq_poll_by_slack(tsc, 0);
}

uint64_t irq_poll_next(void)
{
        uint64_t at = __atomic_load_n(&poll_timer_at, __ATOMIC_RELAXED);

        return at ? at : UINT64_MAX;
}

bool irq_poll_entry(void)
{
        if (!poll_ripe())
                return false;
        irq_poll_all();
        return true;
}

void irq_poll_soon(void)
{
        __atomic_store_n(&poll_soon, true, __ATOMIC_RELEASE);
}

void irq_poll_hold(bool on)
{
        if (on)
                __atomic_fetch_add(&poll_holds, 1, __ATOMIC_RELAXED);
        else
                __atomic_fetch_sub(&poll_holds, 1, __ATOMIC_RELAXED);
}

bool irq_poll_wanted(void)
{
        return __atomic_load_n(&poll_holds, __ATOMIC_RELAXED) != 0;
}

void irq_poll_deferred(void)
{
        if (poll_ripe() || __atomic_load_n(&poll_soon, __ATOMIC_RELAXED) || irq_poll_wanted()) {
                __atomic_store_n(&poll_soon, false, __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_SEQ_CST); /* a later irq_poll_soon is seen again */
                irq_poll_all();
        }
}

void irq_reset_for_test(void)
{
        poll_soon = false;
        poll_holds = 0;
        poll_at = poll_timer_at = 0;
        memset(vectors, 0, sizeof(vectors));
        memset(pollers, 0, sizeof(pollers));
        npollers = 0;
}
