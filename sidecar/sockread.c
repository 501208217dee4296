/* Telling a real read error on an h2o TLS socket from libuv's "nothing to read yet". */
#include <errno.h>
#include <sys/socket.h>

#include "sidecar/sockread.h"

int sc_sockread_spurious(h2o_socket_t *sock, const char *err)
{
    char byte;
    int fd;
    ssize_t n;

    /* h2o passes libuv's nread 0 on as exactly this: an I/O error with no byte read, on a TLS socket */
    if (err != h2o_socket_error_io || sock->ssl == NULL || sock->bytes_read != 0)
        return 0;
    if ((fd = h2o_socket_get_fd(sock)) < 0)
        return 0;
    do
        n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        return 1; /* bytes arrived since: libuv still watches the socket and reads them next */
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}
