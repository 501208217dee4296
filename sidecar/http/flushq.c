/* Socket writes held to the end of a loop turn (see flushq.h). */
#include "sidecar/http/flushq.h"

#include <h2o/memory.h>

static void on_prepare(uv_prepare_t *prepare)
{
    sc_flushq_t *q = prepare->data;
    /* an entry's callback may queue another (never itself again without new bytes): run until none is left */
    while (!h2o_linklist_is_empty(&q->pending)) {
        sc_flushq_entry_t *entry = H2O_STRUCT_FROM_MEMBER(sc_flushq_entry_t, link, q->pending.next);
        h2o_linklist_unlink(&entry->link);
        ++q->flushes;
        entry->cb(entry);
    }
    uv_prepare_stop(&q->prepare);
}

void sc_flushq_init(sc_flushq_t *q, uv_loop_t *loop)
{
    uv_prepare_init(loop, &q->prepare);
    q->prepare.data = q;
    h2o_linklist_init_anchor(&q->pending);
    q->flushes = 0;
}

void sc_flushq_close(sc_flushq_t *q)
{
    uv_prepare_stop(&q->prepare);
    uv_close((uv_handle_t *)&q->prepare, NULL);
}

void sc_flushq_entry_init(sc_flushq_entry_t *entry, void (*cb)(sc_flushq_entry_t *entry))
{
    *entry = (sc_flushq_entry_t){.cb = cb};
}

void sc_flushq_add(sc_flushq_t *q, sc_flushq_entry_t *entry)
{
    if (h2o_linklist_is_linked(&entry->link))
        return;
    h2o_linklist_insert(&q->pending, &entry->link);
    uv_prepare_start(&q->prepare, on_prepare); /* no-op when already active */
}

void sc_flushq_remove(sc_flushq_entry_t *entry)
{
    if (h2o_linklist_is_linked(&entry->link))
        h2o_linklist_unlink(&entry->link);
}
