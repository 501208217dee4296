/* Deadline-bounded TCP connect over every resolved address. */
#include "common/connect.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/wait.h"

cmn_connect_result_t cmn_connect(const char *host, const char *port, long long deadline_ms, int *fd_out, char *err,
                                 size_t err_cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int fd = -1, saw_timeout = 0, last_errno = 0, gai;

    if ((gai = getaddrinfo(host, port, &hints, &list)) != 0) {
        snprintf(err, err_cap, "%s: %s", host, gai_strerror(gai));
        return CMN_CONNECT_DNS;
    }
    for (struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol)) < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        last_errno = errno;
        if (errno == EINPROGRESS) {
            int soerr = 0, r = cmn_wait_fd(fd, POLLOUT, deadline_ms);
            socklen_t len = sizeof(soerr);
            if (r > 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
                break;
            if (r == 0)
                saw_timeout = 1;
            last_errno = r > 0 ? soerr : errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd >= 0) {
        *fd_out = fd;
        return CMN_CONNECT_OK;
    }
    if (saw_timeout) {
        snprintf(err, err_cap, "TCP connect to %s:%s timed out", host, port);
        return CMN_CONNECT_TIMEOUT;
    }
    if (last_errno == ECONNREFUSED)
        snprintf(err, err_cap, "%s:%s refused the connection", host, port);
    else
        snprintf(err, err_cap, "connect to %s:%s: %s", host, port, strerror(last_errno));
    return CMN_CONNECT_REFUSED;
}

int cmn_hostport_split(const char *hostport, char *host, size_t host_cap, uint16_t *port)
{
    const char *colon, *h = hostport;
    size_t hlen;

    if (hostport[0] == '[') {
        const char *close = strchr(hostport, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        h = hostport + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        if ((colon = strrchr(hostport, ':')) == NULL)
            return -1;
        hlen = (size_t)(colon - hostport);
    }
    if (hlen == 0 || hlen >= host_cap)
        return -1;
    const char *p = colon + 1;
    unsigned long v = 0;
    if (*p == '\0')
        return -1;
    for (; *p != '\0'; ++p)
        if (*p < '0' || *p > '9' || (v = v * 10 + (unsigned long)(*p - '0')) > 65535)
            return -1;
    if (v == 0)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)v;
    return 0;
}
