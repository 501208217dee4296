/* A tiny HTTP/1.0 GET to a loopback admin endpoint: what exec probes run inside the pod. */
#ifndef SEAM_COMMON_PROBE_H
#define SEAM_COMMON_PROBE_H

#include <stddef.h>

#define CMN_PROBE_TIMEOUT_MS 2000

/*
 * GETs path from host:port ("127.0.0.1:15000", "[::1]:15000") within
 * timeout_ms and returns the HTTP status code (e.g. 200, 503), or -1 with a
 * one-line reason in err when there is no HTTP answer.
 */
int cmn_probe_get(const char *hostport, const char *path, int timeout_ms, char *err, size_t err_cap);

#endif
