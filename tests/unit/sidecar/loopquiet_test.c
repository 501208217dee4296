/* Tests of sidecar/http/loopquiet.c: no-op epoll re-registrations are dropped, real ones are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "sidecar/http/loopquiet.h"

#define WRITES 50

typedef struct {
    uv_pipe_t a, b;
    uv_write_t wreq;
    char byte;
    int writes_left, writes_done;
    size_t a_read, b_read;
    size_t b_stop_at; /* B stops reading once it holds this many bytes, until the timer starts it again */
    uv_timer_t restart;
    int restarted;
    char rbuf[4096];
} pair_t;

/* The loop, its quiet handle, and two connected stream sockets on it (a and b), both with data set. */
static void open_pair(uv_loop_t *loop, sc_loopquiet_t *quiet, uv_pipe_t *a, uv_pipe_t *b, void *data)
{
    int fds[2];
    assert_int_equal(uv_loop_init(loop), 0);
    sc_loopquiet_init(quiet, loop);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    uv_pipe_init(loop, a, 0);
    uv_pipe_init(loop, b, 0);
    assert_int_equal(uv_pipe_open(a, fds[0]), 0);
    assert_int_equal(uv_pipe_open(b, fds[1]), 0);
    a->data = b->data = data;
}

/* Closes the quiet handle and checks nothing else is left on the loop. */
static void close_loop(uv_loop_t *loop, sc_loopquiet_t *quiet)
{
    sc_loopquiet_close(quiet);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    pair_t *p = handle->data;
    (void)suggested;
    *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read_b(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_read_a(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    pair_t *p = stream->data;
    (void)buf;
    if (nread > 0)
        p->a_read += (size_t)nread;
}

static void write_next(pair_t *p);

static void on_written(uv_write_t *req, int status)
{
    pair_t *p = req->data;
    assert_int_equal(status, 0);
    ++p->writes_done;
}

static void write_next(pair_t *p)
{
    if (p->writes_left == 0)
        return;
    --p->writes_left;
    uv_buf_t buf = uv_buf_init(&p->byte, 1);
    p->wreq.data = p;
    assert_int_equal(uv_write(&p->wreq, (uv_stream_t *)&p->a, &buf, 1, on_written), 0);
}

static void on_restart(uv_timer_t *timer)
{
    pair_t *p = timer->data;
    p->restarted = 1;
    assert_int_equal(uv_read_start((uv_stream_t *)&p->b, on_alloc, on_read_b), 0);
    write_next(p);
}

static void on_read_b(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    pair_t *p = stream->data;
    (void)buf;
    if (nread <= 0)
        return;
    p->b_read += (size_t)nread;
    if (p->b_read == WRITES) {
        uv_close((uv_handle_t *)&p->a, NULL);
        uv_close((uv_handle_t *)&p->b, NULL);
        uv_close((uv_handle_t *)&p->restart, NULL);
    } else if (!p->restarted && p->b_read >= p->b_stop_at) {
        /* B's interest really changes (off, then on): those registrations must reach epoll */
        uv_read_stop(stream);
        write_next(p);
        uv_timer_start(&p->restart, on_restart, 20, 0);
    } else {
        write_next(p); /* one byte per turn of the loop: each completed write is its own re-registration */
    }
}

/*
 * A writes a byte each time B has read the last one. Each completed write
 * leaves A's socket queued for an identical EPOLL_CTL_MOD (A is reading, so
 * its mask stays POLLIN); the handle drops them. B stops reading half way,
 * with a byte waiting, and starts again: unless that change reached epoll, B
 * would never see the rest and the loop would not end.
 */
static void test_drops_noop_keeps_changes(void **state)
{
    (void)state;
    uv_loop_t loop;
    sc_loopquiet_t quiet;
    pair_t p;

    memset(&p, 0, sizeof(p));
    p.byte = 'x';
    p.writes_left = WRITES;
    p.b_stop_at = WRITES / 2;
    open_pair(&loop, &quiet, &p.a, &p.b, &p);
    uv_timer_init(&loop, &p.restart);
    p.restart.data = &p;
    assert_int_equal(uv_read_start((uv_stream_t *)&p.a, on_alloc, on_read_a), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&p.b, on_alloc, on_read_b), 0);
    write_next(&p);

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(p.writes_done, WRITES);
    assert_int_equal(p.b_read, WRITES);
    assert_int_equal(p.restarted, 1);
    assert_true(quiet.skipped >= WRITES - 2);

    close_loop(&loop, &quiet);
}

#define BULK (4 * 1024 * 1024)

typedef struct {
    uv_pipe_t a, b;
    uv_write_t wreq;
    uv_timer_t deadline;
    char *bulk;
    size_t b_read;
    int written, timed_out;
    char rbuf[65536];
} bulk_t;

static void on_bulk_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    bulk_t *t = handle->data;
    (void)suggested;
    *buf = uv_buf_init(t->rbuf, sizeof(t->rbuf));
}

static void bulk_close(bulk_t *t)
{
    uv_close((uv_handle_t *)&t->a, NULL);
    uv_close((uv_handle_t *)&t->b, NULL);
    uv_close((uv_handle_t *)&t->deadline, NULL);
}

static void on_bulk_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    bulk_t *t = stream->data;
    (void)buf;
    if (nread > 0 && (t->b_read += (size_t)nread) == BULK && t->written)
        bulk_close(t);
}

static void on_bulk_written(uv_write_t *req, int status)
{
    bulk_t *t = req->data;
    assert_int_equal(status, 0);
    t->written = 1;
    if (t->b_read == BULK)
        bulk_close(t);
}

static void on_deadline(uv_timer_t *timer)
{
    bulk_t *t = timer->data;
    if (t->wreq.data == NULL) {
        /* both sockets are known to epoll by now, for reading only: the write changes A's mask */
        uv_buf_t buf = uv_buf_init(t->bulk, BULK);
        t->wreq.data = t;
        assert_int_equal(uv_write(&t->wreq, (uv_stream_t *)&t->a, &buf, 1, on_bulk_written), 0);
        uv_timer_start(&t->deadline, on_deadline, 5000, 0);
        return;
    }
    t->timed_out = 1;
    bulk_close(t);
}

/*
 * A write larger than the socket buffer cannot finish at once: A's mask
 * grows from POLLIN to POLLIN|POLLOUT, a real change the handle must leave
 * on the queue, or the write would never be resumed.
 */
static void test_keeps_writable_interest(void **state)
{
    (void)state;
    uv_loop_t loop;
    sc_loopquiet_t quiet;
    bulk_t t;

    memset(&t, 0, sizeof(t));
    t.bulk = calloc(1, BULK);
    assert_non_null(t.bulk);
    open_pair(&loop, &quiet, &t.a, &t.b, &t);
    uv_timer_init(&loop, &t.deadline);
    t.deadline.data = &t;
    uv_timer_start(&t.deadline, on_deadline, 10, 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&t.a, on_bulk_alloc, on_bulk_read), 0);
    assert_int_equal(uv_read_start((uv_stream_t *)&t.b, on_bulk_alloc, on_bulk_read), 0);

    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(t.timed_out, 0);
    assert_int_equal(t.written, 1);
    assert_int_equal(t.b_read, BULK);

    close_loop(&loop, &quiet);
    free(t.bulk);
}

/* A loop with nothing else on it ends: the handle keeps no loop alive. */
static void test_keeps_no_loop_alive(void **state)
{
    (void)state;
    uv_loop_t loop;
    sc_loopquiet_t quiet;

    assert_int_equal(uv_loop_init(&loop), 0);
    sc_loopquiet_init(&quiet, &loop);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(quiet.skipped, 0);
    close_loop(&loop, &quiet);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drops_noop_keeps_changes),
        cmocka_unit_test(test_keeps_writable_interest),
        cmocka_unit_test(test_keeps_no_loop_alive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
