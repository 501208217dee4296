/* Drops no-op epoll re-registrations from a libuv loop's watcher queue before it polls. */
#include "sidecar/http/loopquiet.h"

#include <stddef.h>

/* libuv's watcher queue is a circular list of void *[2] nodes: [0] next, [1] prev, the loop's field the head. */
#if UV_VERSION_MAJOR == 1 && UV_VERSION_MINOR < 47 && defined(__linux__)
#define SC_LOOPQUIET_ACTIVE 1

typedef void *sc_uvqueue_t[2];

static sc_uvqueue_t *queue_next(sc_uvqueue_t *q)
{
    return (sc_uvqueue_t *)(*q)[0];
}

static sc_uvqueue_t *queue_prev(sc_uvqueue_t *q)
{
    return (sc_uvqueue_t *)(*q)[1];
}

static void queue_unlink(sc_uvqueue_t *q)
{
    (*queue_prev(q))[0] = (*q)[0];
    (*queue_next(q))[1] = (*q)[1];
    (*q)[0] = q; /* empty again, as libuv's own removal leaves it: the next change queues it anew */
    (*q)[1] = q;
}
#endif

static void on_prepare(uv_prepare_t *prepare)
{
#ifdef SC_LOOPQUIET_ACTIVE
    sc_loopquiet_t *quiet = prepare->data;
    sc_uvqueue_t *head = &prepare->loop->watcher_queue, *q = queue_next(head);

    while (q != head) {
        sc_uvqueue_t *next = queue_next(q);
        uv__io_t *w = (uv__io_t *)((char *)q - offsetof(uv__io_t, watcher_queue));
        if (w->events != 0 && w->events == w->pevents) {
            queue_unlink(q);
            ++quiet->skipped;
        }
        q = next;
    }
#else
    (void)prepare;
#endif
}

void sc_loopquiet_init(sc_loopquiet_t *quiet, uv_loop_t *loop)
{
    quiet->skipped = 0;
    uv_prepare_init(loop, &quiet->prepare);
    quiet->prepare.data = quiet;
    uv_prepare_start(&quiet->prepare, on_prepare);
    uv_unref((uv_handle_t *)&quiet->prepare);
}

void sc_loopquiet_close(sc_loopquiet_t *quiet)
{
    uv_prepare_stop(&quiet->prepare);
    uv_close((uv_handle_t *)&quiet->prepare, NULL);
}
