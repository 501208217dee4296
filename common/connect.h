/* A TCP connect with a deadline, naming how it failed: for the blocking clients. */
#ifndef SEAM_COMMON_CONNECT_H
#define SEAM_COMMON_CONNECT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    CMN_CONNECT_OK = 0,
    CMN_CONNECT_DNS,     /* the name does not resolve */
    CMN_CONNECT_REFUSED, /* nothing listens (or another connect error: see err) */
    CMN_CONNECT_TIMEOUT, /* no answer before the deadline */
} cmn_connect_result_t;

/*
 * Splits "host:port" or "[v6]:port" into host (without brackets, host_cap
 * bytes) and a port from 1 to 65535. Returns 0, or -1 when the text is not
 * of that form.
 */
int cmn_hostport_split(const char *hostport, char *host, size_t host_cap, uint16_t *port)
    __attribute__((warn_unused_result));

/*
 * Connects to the first address of host:port that accepts before deadline_ms
 * (cmn_monotonic_ms() time). On success stores a non-blocking, close-on-exec
 * socket in *fd. Otherwise writes one line into err and returns the reason.
 */
cmn_connect_result_t cmn_connect(const char *host, const char *port, long long deadline_ms, int *fd, char *err,
                                 size_t err_cap);

#endif
