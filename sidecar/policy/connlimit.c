/* The data listeners' connection budgets: the plan made at start-up and the shared count kept while running. */
#include "sidecar/policy/connlimit.h"

#include <limits.h>

/* a + b, saturating */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The budget of one running listener, out of its share of descriptors; onward: what its workers may open onward. */
static uint64_t budget_of_share(uint64_t share, uint64_t onward, uint64_t max_connections)
{
    uint64_t keep = onward < share / 2 ? onward : share / 2;
    uint64_t budget = share - keep;
    return budget < max_connections ? budget : max_connections;
}

int sc_connlimit_plan(const sc_connlimit_want_t *want, sc_connlimit_plan_t *plan)
{
    uint64_t onward_in = (uint64_t)want->inbound_workers * SC_FD_ONWARD_INBOUND;
    uint64_t onward_out = (uint64_t)want->outbound_workers * SC_FD_ONWARD_OUTBOUND;
    uint64_t listeners = (want->inbound_workers != 0) + (want->outbound_workers != 0);
    uint64_t onward_most = onward_in > onward_out ? onward_in : onward_out;
    uint64_t need, share;

    plan->nofile = want->nofile_soft;
    plan->inbound_max = plan->outbound_max = 0;
    plan->clamped = 0;
    if (listeners == 0)
        return 0;
    /* the shares are equal, so each must fit the listener that keeps the most for onward connections */
    need = add_sat(want->max_connections, onward_most);
    need = add_sat(SC_FD_RESERVE, listeners == 2 ? add_sat(need, need) : need);
    if (need > plan->nofile)
        plan->nofile = need < want->nofile_hard ? need : want->nofile_hard;
    if (plan->nofile < want->nofile_soft) /* a hard limit below the soft one is not ours to fix */
        plan->nofile = want->nofile_soft;

    share = plan->nofile > SC_FD_RESERVE ? (plan->nofile - SC_FD_RESERVE) / listeners : 0;
    if (want->inbound_workers != 0)
        plan->inbound_max = budget_of_share(share, onward_in, want->max_connections);
    if (want->outbound_workers != 0)
        plan->outbound_max = budget_of_share(share, onward_out, want->max_connections);
    plan->clamped = (want->inbound_workers != 0 && plan->inbound_max < want->max_connections) ||
                    (want->outbound_workers != 0 && plan->outbound_max < want->max_connections);
    if ((want->inbound_workers != 0 && plan->inbound_max == 0) || (want->outbound_workers != 0 && plan->outbound_max == 0))
        return -1;
    return 0;
}

void sc_connlimit_init(sc_connlimit_t *limit, uint64_t max, uint64_t nofile)
{
    limit->max = max;
    limit->fd_ceiling = nofile > (uint64_t)INT_MAX ? INT_MAX - SC_FD_HEADROOM
                                                    : (nofile > SC_FD_HEADROOM ? (int)(nofile - SC_FD_HEADROOM) : 0);
    limit->open = 0;
}

int sc_connlimit_take(sc_connlimit_t *limit)
{
    /* add first, then look: two workers racing for the last slot cannot both win */
    if (__atomic_add_fetch(&limit->open, 1, __ATOMIC_RELAXED) <= limit->max)
        return 1;
    __atomic_sub_fetch(&limit->open, 1, __ATOMIC_RELAXED);
    return 0;
}

void sc_connlimit_release(sc_connlimit_t *limit)
{
    __atomic_sub_fetch(&limit->open, 1, __ATOMIC_RELAXED);
}

int sc_connlimit_fd_ok(const sc_connlimit_t *limit, int fd)
{
    return fd < limit->fd_ceiling;
}

uint64_t sc_connlimit_open(const sc_connlimit_t *limit)
{
    return __atomic_load_n(&limit->open, __ATOMIC_RELAXED);
}
