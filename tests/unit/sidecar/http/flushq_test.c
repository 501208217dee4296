/* Tests of sidecar/http/flushq.c: queued writes run once per loop turn, before the loop polls, and keep it alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <h2o/memory.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "sidecar/http/flushq.h"

#define BLOCKING_TIMER_MS 5000 /* a handle that keeps the loop polling; the tests must never wait for it */

typedef struct st_fixture_t fixture_t;

typedef struct st_conn_t {
    sc_flushq_entry_t entry;
    fixture_t *f;
    int runs;
    int checks_at_run;      /* the turn's check phase had not run yet when this was 0 */
    struct st_conn_t *adds; /* queued by this entry's callback, or NULL */
    int stop_loop;          /* the callback ends uv_run (then its poll does not block) */
    uint64_t ran_at;        /* uv_hrtime() of the last run */
} conn_t;

/* A loop with the queue under test, a check handle counting the turns that polled, and two connections' entries. */
struct st_fixture_t {
    uv_loop_t loop;
    sc_flushq_t q;
    uv_check_t check;
    int checks;
    conn_t a, b;
};

static void on_check(uv_check_t *check)
{
    ++((fixture_t *)check->data)->checks;
}

static void on_flush_due(sc_flushq_entry_t *entry);

static void conn_init(conn_t *c, fixture_t *f)
{
    *c = (conn_t){.f = f};
    sc_flushq_entry_init(&c->entry, on_flush_due);
}

static void open_fixture(fixture_t *f)
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    sc_flushq_init(&f->q, &f->loop);
    uv_check_init(&f->loop, &f->check);
    f->check.data = f;
    uv_check_start(&f->check, on_check);
    uv_unref((uv_handle_t *)&f->check);
    f->checks = 0;
    conn_init(&f->a, f);
    conn_init(&f->b, f);
}

/* Closes every handle and checks nothing else is left on the loop. */
static void close_fixture(fixture_t *f)
{
    sc_flushq_close(&f->q);
    uv_close((uv_handle_t *)&f->check, NULL);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void on_flush_due(sc_flushq_entry_t *entry)
{
    conn_t *c = H2O_STRUCT_FROM_MEMBER(conn_t, entry, entry);
    ++c->runs;
    c->checks_at_run = c->f->checks;
    c->ran_at = uv_hrtime();
    if (c->adds != NULL)
        sc_flushq_add(&c->f->q, &c->adds->entry);
    if (c->stop_loop)
        uv_stop(&c->f->loop);
}

/* Entries queued in one turn run once each in its prepare phase, however often they were queued; then the handle
 * lets the loop end. */
static void test_once_per_turn_before_poll(void **state)
{
    fixture_t f;
    (void)state;
    open_fixture(&f);
    sc_flushq_add(&f.q, &f.a.entry);
    sc_flushq_add(&f.q, &f.b.entry);
    sc_flushq_add(&f.q, &f.a.entry);

    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0); /* returns: nothing else keeps the loop */
    assert_int_equal(f.a.runs, 1);
    assert_int_equal(f.b.runs, 1);
    assert_int_equal(f.a.checks_at_run, 0); /* before the poll of the first turn, not after it */
    assert_int_equal(f.q.flushes, 2);

    sc_flushq_add(&f.q, &f.a.entry); /* the next turn's */
    assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(f.a.runs, 2);
    assert_int_equal(f.b.runs, 1);
    close_fixture(&f);
}

/* An entry taken off (its connection closed) does not run; the others do. */
static void test_removed_entry_does_not_run(void **state)
{
    fixture_t f;
    (void)state;
    open_fixture(&f);
    sc_flushq_add(&f.q, &f.a.entry);
    sc_flushq_add(&f.q, &f.b.entry);
    sc_flushq_remove(&f.a.entry);
    sc_flushq_remove(&f.a.entry); /* twice is harmless */

    assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(f.a.runs, 0);
    assert_int_equal(f.b.runs, 1);
    close_fixture(&f);
}

/* What an entry's callback queues runs in the same prepare phase: nothing waits for a later poll. */
static void test_callback_queues_another(void **state)
{
    fixture_t f;
    (void)state;
    open_fixture(&f);
    f.a.adds = &f.b;
    sc_flushq_add(&f.q, &f.a.entry);

    assert_int_equal(uv_run(&f.loop, UV_RUN_NOWAIT), 0);
    assert_int_equal(f.a.runs, 1);
    assert_int_equal(f.b.runs, 1);
    assert_int_equal(f.b.checks_at_run, 0);
    close_fixture(&f);
}

typedef struct {
    uv_pipe_t reader;
    conn_t *conn;
    char rbuf[64];
    uint64_t read_at;
} socket_case_t;

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    socket_case_t *s = handle->data;
    (void)suggested;
    *buf = uv_buf_init(s->rbuf, sizeof(s->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    socket_case_t *s = stream->data;
    (void)buf;
    if (nread <= 0)
        return;
    s->read_at = uv_hrtime();
    sc_flushq_add(&s->conn->f->q, &s->conn->entry); /* in the poll phase: an answer to send */
    uv_read_stop(stream);
}

static void on_blocking_timer(uv_timer_t *timer)
{
    (void)timer;
    fail_msg("the loop polled for %d ms with a write queued", BLOCKING_TIMER_MS);
}

/*
 * An entry queued while the loop handles a readable socket runs in the next
 * turn's prepare phase, before the loop polls again: not after whatever the
 * loop would otherwise wait for (a 5 s timer here).
 */
static void test_poll_phase_entry_runs_before_blocking(void **state)
{
    fixture_t f;
    socket_case_t s;
    uv_timer_t blocker;
    int fds[2];
    (void)state;
    open_fixture(&f);
    s.conn = &f.a;
    s.read_at = 0;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    uv_pipe_init(&f.loop, &s.reader, 0);
    assert_int_equal(uv_pipe_open(&s.reader, fds[0]), 0);
    s.reader.data = &s;
    assert_int_equal(uv_read_start((uv_stream_t *)&s.reader, on_alloc, on_read), 0);
    uv_timer_init(&f.loop, &blocker);
    uv_timer_start(&blocker, on_blocking_timer, BLOCKING_TIMER_MS, 0);
    assert_int_equal(write(fds[1], "x", 1), 1);

    s.conn->stop_loop = 1;

    uv_run(&f.loop, UV_RUN_DEFAULT); /* the read's turn, then the next one's prepare phase */
    assert_int_equal(s.conn->runs, 1);
    assert_true(s.read_at != 0 && s.conn->ran_at >= s.read_at);
    assert_true(s.conn->ran_at - s.read_at < 1000000000ull); /* well under the timer's 5 s */

    uv_close((uv_handle_t *)&blocker, NULL);
    uv_close((uv_handle_t *)&s.reader, NULL);
    close(fds[1]);
    close_fixture(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_once_per_turn_before_poll),
        cmocka_unit_test(test_removed_entry_does_not_run),
        cmocka_unit_test(test_callback_queues_another),
        cmocka_unit_test(test_poll_phase_entry_runs_before_blocking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
