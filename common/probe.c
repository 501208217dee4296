/* Exec-probe client: one GET on loopback, read the status line, done. */
#include "common/probe.h"
#include "common/connect.h"
#include "common/wait.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int cmn_probe_get(const char *hostport, const char *path, int timeout_ms, char *err, size_t err_cap)
{
    char host[256], port[16], req[512], buf[64];
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai = NULL;
    long long deadline = cmn_monotonic_ms() + timeout_ms;
    int fd = -1, status = -1;
    uint16_t port_number;
    size_t got = 0;

    if (cmn_hostport_split(hostport, host, sizeof(host), &port_number) != 0) {
        snprintf(err, err_cap, "%s: expected HOST:PORT", hostport);
        return -1;
    }
    snprintf(port, sizeof(port), "%u", port_number);
    if (path[0] != '/' || strpbrk(path, " \r\n") != NULL) {
        snprintf(err, err_cap, "%s: a path starts with '/' and has no spaces", path);
        return -1;
    }
    int gai = getaddrinfo(host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, err_cap, "%s: %s", hostport, gai_strerror(gai));
        return -1;
    }
    if ((fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0 ||
        (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS)) {
        snprintf(err, err_cap, "%s: %s", hostport, strerror(errno));
        goto Exit;
    }
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (cmn_wait_fd(fd, POLLOUT, deadline) <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0 || soerr != 0) {
        snprintf(err, err_cap, "%s: %s", hostport, soerr ? strerror(soerr) : "connect timed out");
        goto Exit;
    }
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, hostport);
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, err_cap, "%s: could not send the request", hostport);
        goto Exit;
    }
    /* "HTTP/1.x NNN" is all we need. */
    while (got < 12) {
        if (cmn_wait_fd(fd, POLLIN, deadline) <= 0) {
            snprintf(err, err_cap, "%s: no answer within %d ms", hostport, timeout_ms);
            goto Exit;
        }
        ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
        if (r <= 0) {
            snprintf(err, err_cap, "%s: connection closed before a status line", hostport);
            goto Exit;
        }
        got += (size_t)r;
    }
    if (memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' ||
        buf[10] > '9' || buf[11] < '0' || buf[11] > '9') {
        snprintf(err, err_cap, "%s: the answer is not HTTP", hostport);
        goto Exit;
    }
    status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');

Exit:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return status;
}
