/* Tests of common/probe.c against a listener on 127.0.0.1 served by a thread of this test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/probe.h"

struct server {
    int fd;
    char port[16];
    const char *reply; /* NULL: accept and stay silent */
    char request[512];
};

static void *serve_one(void *arg)
{
    struct server *s = arg;
    int conn = accept(s->fd, NULL, NULL);
    if (conn < 0)
        return NULL;
    ssize_t n = recv(conn, s->request, sizeof(s->request) - 1, 0);
    if (n > 0)
        s->request[n] = '\0';
    if (s->reply != NULL) {
        ssize_t unused = send(conn, s->reply, strlen(s->reply), MSG_NOSIGNAL);
        (void)unused;
    } else {
        usleep(500 * 1000);
    }
    close(conn);
    return NULL;
}

static void start(struct server *s, const char *reply, pthread_t *thread)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    memset(s, 0, sizeof(*s));
    s->reply = reply;
    assert_true((s->fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(s->port, sizeof(s->port), "127.0.0.1:%u", ntohs(sin.sin_port));
    assert_int_equal(pthread_create(thread, NULL, serve_one, s), 0);
}

static int probe_once(const char *reply, const char *path, char *err, size_t cap, struct server *s)
{
    pthread_t thread;
    start(s, reply, &thread);
    int status = cmn_probe_get(s->port, path, 300, err, cap);
    pthread_join(thread, NULL);
    close(s->fd);
    return status;
}

static void test_status_codes(void **state)
{
    (void)state;
    struct server s;
    char err[256];
    assert_int_equal(probe_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", "/ready", err, sizeof(err), &s), 200);
    assert_non_null(strstr(s.request, "GET /ready HTTP/1.0\r\n"));
    assert_int_equal(probe_once("HTTP/1.0 503 Service Unavailable\r\n\r\nno certificate", "/ready", err, sizeof(err), &s), 503);
}

static void test_failures(void **state)
{
    (void)state;
    struct server s;
    char err[256];
    assert_int_equal(probe_once("SSH-2.0-OpenSSH_9.2\r\n", "/ready", err, sizeof(err), &s), -1);
    assert_non_null(strstr(err, "not HTTP"));
    assert_int_equal(probe_once("HTTP/1.1 2", "/ready", err, sizeof(err), &s), -1);
    assert_non_null(strstr(err, "closed before a status line"));
    assert_int_equal(probe_once(NULL, "/ready", err, sizeof(err), &s), -1);
    assert_non_null(strstr(err, "no answer within 300 ms"));

    /* a port nobody listens on: bind one, close it, probe it */
    pthread_t thread;
    start(&s, "x", &thread);
    pthread_cancel(thread);
    pthread_join(thread, NULL);
    close(s.fd);
    assert_int_equal(cmn_probe_get(s.port, "/ready", 300, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "Connection refused"));

    assert_int_equal(cmn_probe_get("127.0.0.1", "/ready", 300, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "expected HOST:PORT"));
    assert_int_equal(cmn_probe_get("localhost:15000", "/ready", 300, err, sizeof(err)), -1); /* numeric hosts only */
    assert_int_equal(cmn_probe_get("127.0.0.1:15000", "ready", 300, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "starts with '/'"));
    assert_int_equal(cmn_probe_get("127.0.0.1:15000", "/a b", 300, err, sizeof(err)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_status_codes), cmocka_unit_test(test_failures)};
    return cmocka_run_group_tests_name("common/probe", tests, NULL, NULL);
}
