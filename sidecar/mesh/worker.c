/* The scaffolding both sides' workers share: loop thread, SO_REUSEPORT listener, mailbox wakeup, drain, parking. */
#include "sidecar/mesh/worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

static void close_listener(sc_worker_base_t *base)
{
    if (base->listener_open) {
        base->listener_open = 0;
        uv_close((uv_handle_t *)&base->listener, NULL);
    }
}

static void stop_worker(sc_worker_base_t *base)
{
    base->ops->on_stop(base);
    if (!uv_is_closing((uv_handle_t *)&base->drain_timer))
        uv_close((uv_handle_t *)&base->drain_timer, NULL);
    if (!uv_is_closing((uv_handle_t *)&base->wakeup))
        uv_close((uv_handle_t *)&base->wakeup, NULL);
    uv_stop(&base->loop);
}

void sc_worker_base_maybe_finish(sc_worker_base_t *base)
{
    if (base->draining && base->num_conns == 0)
        stop_worker(base);
}

static void on_drain_deadline(uv_timer_t *timer)
{
    sc_worker_base_t *base = timer->data;
    cmn_log_warn("%s worker %zu: drain timeout reached with %zu connection(s) still open; closing them", base->side,
                 base->index, base->num_conns);
    stop_worker(base);
}

static void start_drain(sc_worker_base_t *base)
{
    base->draining = 1;
    close_listener(base);
    if (base->front != NULL)
        sc_front_shutdown(base->front);
    uv_timer_start(&base->drain_timer, on_drain_deadline, base->drain_timeout_ms, 0);
    sc_worker_base_maybe_finish(base);
}

static void on_wakeup(uv_async_t *async)
{
    sc_worker_base_t *base = async->data;
    int drain;

    sc_tls_t *tls = sc_worker_base_take(base, (void **)&base->mail_tls);
    if (tls != NULL) {
        sc_tls_release(*base->tls);
        *base->tls = tls;
    }
    void *snapshot = base->mail != NULL ? sc_worker_base_take(base, base->mail) : NULL;
    if (snapshot != NULL) {
        base->ref(*base->current, -1);
        *base->current = snapshot;
    }
    pthread_mutex_lock(&base->mailbox_lock);
    drain = base->drain_requested;
    pthread_mutex_unlock(&base->mailbox_lock);
    if (drain && !base->draining)
        start_drain(base);
}

void sc_worker_base_init(sc_worker_base_t *base, const sc_worker_setup_t *setup, size_t index,
                         uint64_t drain_timeout_ms)
{
    base->ops = setup->ops;
    base->side = setup->side;
    base->limit = setup->limit;
    base->metrics = setup->metrics;
    base->tls = setup->tls;
    base->mail = setup->mail;
    base->current = setup->current;
    base->ref = setup->ref;
    base->index = index;
    base->drain_timeout_ms = drain_timeout_ms;
    uv_loop_init(&base->loop);
    base->loop.data = setup->owner;
    pthread_mutex_init(&base->mailbox_lock, NULL);
    pthread_cond_init(&base->parked, NULL);
    uv_async_init(&base->loop, &base->wakeup, on_wakeup);
    base->wakeup.data = base;
    uv_timer_init(&base->loop, &base->drain_timer);
    base->drain_timer.data = base;
    sc_loopquiet_init(&base->quiet, &base->loop);
}

int sc_worker_base_listen(sc_worker_base_t *base, const struct sockaddr *sa, uv_connection_cb on_connection, char *err,
                          size_t err_cap)
{
    uv_os_fd_t fd;
    int one = 1, rc;

    if ((rc = uv_tcp_init_ex(&base->loop, &base->listener, sa->sa_family)) != 0)
        goto Error;
    base->listener_open = 1;
    base->listener.data = base;
    if ((rc = uv_fileno((uv_handle_t *)&base->listener, &fd)) != 0)
        goto Error;
    /* every worker binds the same address: the kernel spreads the connections */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        rc = uv_translate_sys_error(errno);
        goto Error;
    }
    if ((rc = uv_tcp_bind(&base->listener, sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&base->listener, SC_LISTEN_BACKLOG, on_connection)) != 0)
        goto Error;
    return 0;
Error:
    snprintf(err, err_cap, "%s", uv_strerror(rc));
    return SC_E_LISTEN;
}

static void on_refused_close(uv_handle_t *handle)
{
    free(handle);
}

void sc_worker_base_refuse_pending(sc_worker_base_t *base)
{
    uv_tcp_t *tcp = malloc(sizeof(*tcp));
    if (tcp == NULL)
        return; /* out of memory: the connection stays queued */
    uv_tcp_init(&base->loop, tcp);
    /* on failure there is nothing to close but the handle; uv_close closes the descriptor now, the handle later */
    (void)uv_accept((uv_stream_t *)&base->listener, (uv_stream_t *)tcp);
    uv_close((uv_handle_t *)tcp, on_refused_close);
}

void sc_worker_base_log_refusal(sc_worker_base_t *base, sc_refuse_reason_t reason)
{
    uint64_t now = uv_now(&base->loop);

    ++base->refusals;
    if (base->refusal_logged_at != 0 && now - base->refusal_logged_at < SC_REFUSAL_LOG_MS)
        return;
    if (reason == SC_REFUSE_LIMIT)
        cmn_log_warn("%s listener full: %llu of %llu connections open; new connections are closed at once "
                     "(worker %zu has turned away %llu since it started)",
                     base->side, (unsigned long long)sc_connlimit_open(base->limit), (unsigned long long)base->limit->max,
                     base->index, (unsigned long long)base->refusals);
    else
        cmn_log_warn("%s listener: fewer than %d descriptors left below RLIMIT_NOFILE; new connections are closed "
                     "at once (worker %zu has turned away %llu since it started)",
                     base->side, SC_FD_HEADROOM, base->index, (unsigned long long)base->refusals);
    base->refusal_logged_at = now != 0 ? now : 1;
}

static void worker_main(void *arg)
{
    sc_worker_base_t *base = arg;
    uv_run(&base->loop, UV_RUN_DEFAULT);
    /*
     * The thread parks instead of returning: h2o keeps per-thread buffer caches
     * that would become unreachable (and reported as leaks) if the thread ended.
     * The process exits right after every worker has stopped.
     */
    pthread_mutex_lock(&base->mailbox_lock);
    __atomic_store_n(&base->stopped, 1, __ATOMIC_RELEASE);
    for (;;)
        pthread_cond_wait(&base->parked, &base->mailbox_lock);
}

int sc_worker_base_start(sc_worker_base_t *base)
{
    return uv_thread_create(&base->thread, worker_main, base) == 0 ? 0 : SC_E_THREAD;
}

void sc_worker_base_wake(sc_worker_base_t *base)
{
    uv_async_send(&base->wakeup);
}

void sc_worker_base_post(sc_worker_base_t *base, void **slot, void *snapshot, void (*ref)(void *, int))
{
    pthread_mutex_lock(&base->mailbox_lock);
    void *superseded = *slot;
    *slot = snapshot;
    pthread_mutex_unlock(&base->mailbox_lock);
    if (superseded != NULL)
        ref(superseded, -1); /* never taken: a newer one came first */
    sc_worker_base_wake(base);
}

void *sc_worker_base_take(sc_worker_base_t *base, void **slot)
{
    pthread_mutex_lock(&base->mailbox_lock);
    void *snapshot = *slot;
    *slot = NULL;
    pthread_mutex_unlock(&base->mailbox_lock);
    return snapshot;
}

void sc_worker_base_post_drain(sc_worker_base_t *base)
{
    pthread_mutex_lock(&base->mailbox_lock);
    base->drain_requested = 1;
    pthread_mutex_unlock(&base->mailbox_lock);
    sc_worker_base_wake(base);
}

int sc_worker_base_stopped(sc_worker_base_t *base)
{
    return __atomic_load_n(&base->stopped, __ATOMIC_ACQUIRE);
}

/* ---- a side's workers ---- */

static sc_worker_base_t *group_at(sc_worker_group_t *g, size_t i)
{
    return (sc_worker_base_t *)(g->records + i * g->stride + g->base_offset);
}

void *sc_worker_group_alloc(sc_worker_group_t *g, size_t num, size_t stride, size_t base_offset)
{
    char *records = calloc(num, stride);
    *g = (sc_worker_group_t){records, stride, base_offset, records != NULL ? num : 0, 0};
    return records;
}

int sc_worker_group_start(sc_worker_group_t *g)
{
    for (size_t i = 0; i != g->num; ++i) {
        if (sc_worker_base_start(group_at(g, i)) != 0)
            return SC_E_THREAD;
        ++g->running;
    }
    return 0;
}

void sc_worker_group_post(sc_worker_group_t *g, size_t slot_offset, void *snapshot, void (*ref)(void *, int))
{
    for (size_t i = 0; i != g->num; ++i) {
        ref(snapshot, 1);
        sc_worker_base_post(group_at(g, i), (void **)(g->records + i * g->stride + slot_offset), snapshot, ref);
    }
}

void sc_worker_group_post_tls(sc_worker_group_t *g, sc_tls_t *tls)
{
    sc_worker_group_post(g, g->base_offset + offsetof(sc_worker_base_t, mail_tls), tls, sc_tls_ref);
}

void sc_worker_group_set_front_limits(sc_worker_group_t *g, const sc_front_limits_t *limits)
{
    for (size_t i = 0; i != g->num; ++i)
        sc_front_set_limits(group_at(g, i)->front, limits);
}

void sc_worker_group_drain(sc_worker_group_t *g)
{
    for (size_t i = 0; i != g->num; ++i)
        sc_worker_base_post_drain(group_at(g, i));
}

int sc_worker_group_stopped(sc_worker_group_t *g)
{
    for (size_t i = 0; i != g->running; ++i)
        if (!sc_worker_base_stopped(group_at(g, i)))
            return 0;
    return 1;
}

size_t sc_worker_group_open_conns(sc_worker_group_t *g)
{
    size_t open = 0;
    for (size_t i = 0; i != g->running; ++i) {
        sc_worker_base_t *base = group_at(g, i);
        pthread_mutex_lock(&base->mailbox_lock); /* orders the read after the worker's last write */
        open += base->num_conns;
        pthread_mutex_unlock(&base->mailbox_lock);
    }
    return open;
}

/* ---- connections ---- */

/* Counts and logs a connection the budget turned away (already closed). */
static void note_refusal(sc_worker_base_t *base, sc_refuse_reason_t reason)
{
    sc_metrics_count_rejection(base->metrics, reason);
    sc_worker_base_log_refusal(base, reason);
}

void *sc_worker_base_admit(sc_worker_base_t *base, uv_stream_t *listener, int status, size_t size,
                           uv_close_cb on_close)
{
    uv_tcp_t *tcp;
    uv_os_fd_t fd;

    if (status != 0) {
        /* out of descriptors after all: libuv has closed what was waiting (with its spare descriptor) */
        if (status == UV_EMFILE || status == UV_ENFILE)
            note_refusal(base, SC_REFUSE_DESCRIPTORS);
        return NULL;
    }
    /* the slot is taken before anything is allocated: a full listener costs an accept and a close */
    if (!sc_connlimit_take(base->limit)) {
        sc_worker_base_refuse_pending(base);
        note_refusal(base, SC_REFUSE_LIMIT);
        return NULL;
    }
    if ((tcp = calloc(1, size)) == NULL) {
        sc_connlimit_release(base->limit);
        sc_worker_base_refuse_pending(base);
        return NULL;
    }
    uv_tcp_init(&base->loop, tcp);
    ++base->num_conns;
    sc_metrics_connection_delta(base->metrics, 1);
    if (uv_accept(listener, (uv_stream_t *)tcp) != 0) {
        uv_close((uv_handle_t *)tcp, on_close);
        return NULL;
    }
    if (uv_fileno((uv_handle_t *)tcp, &fd) != 0 || !sc_connlimit_fd_ok(base->limit, fd)) {
        note_refusal(base, SC_REFUSE_DESCRIPTORS);
        uv_close((uv_handle_t *)tcp, on_close);
        return NULL;
    }
    uv_tcp_nodelay(tcp, 1);
    return tcp;
}

sc_worker_base_t *sc_worker_base_of(uv_handle_t *handle)
{
    return H2O_STRUCT_FROM_MEMBER(sc_worker_base_t, loop, handle->loop);
}

void sc_worker_base_release(sc_worker_base_t *base)
{
    sc_connlimit_release(base->limit);
    --base->num_conns;
    sc_metrics_connection_delta(base->metrics, -1);
    sc_worker_base_maybe_finish(base);
}
