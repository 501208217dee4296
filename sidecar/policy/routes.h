/* The outbound routes file: host -> upstream address and the identity it must prove. */
#ifndef SEAM_SIDECAR_POLICY_ROUTES_H
#define SEAM_SIDECAR_POLICY_ROUTES_H

#include <stddef.h>

#include "certs/spiffe.h"

#define SC_ROUTES_MAX 4096          /* routes in one file */
#define SC_ROUTE_HOST_MAX 253       /* a DNS name */
#define SC_ROUTE_UPSTREAM_MAX 300   /* "host:port" or "[v6]:port" */

typedef struct st_sc_route_t {
    char host[SC_ROUTE_HOST_MAX + 1];          /* lowercase, no port */
    char upstream_host[SC_ROUTE_HOST_MAX + 1]; /* name or address to connect to (no brackets) */
    unsigned short upstream_port;
    char identity[CRT_SPIFFE_ID_MAX + 1];      /* the SPIFFE ID the upstream must present */
} sc_route_t;

/* An immutable, reference-counted set of routes; a reload builds a new one. */
typedef struct st_sc_routes_t sc_routes_t;

/*
 * Parses a routes file's JSON text. `name` (the file path) prefixes errors.
 * On success returns 0 and a new snapshot with one reference. On failure
 * returns -1 and writes one line into err, naming the file, the route index
 * and the field: "routes.json: routes[2].identity: not a SPIFFE ID (...)".
 */
int sc_routes_parse(const char *name, const char *json, size_t len, sc_routes_t **out, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

void sc_routes_addref(sc_routes_t *routes);
void sc_routes_release(sc_routes_t *routes);
/* Either, for code that holds snapshots of any kind: delta > 0 takes a reference, else drops one. */
void sc_routes_ref(void *routes, int delta);

size_t sc_routes_count(const sc_routes_t *routes);
const sc_route_t *sc_routes_at(const sc_routes_t *routes, size_t i);

/*
 * Finds the route for a request's host (Host header or :authority, possibly
 * with ":port", any case). Returns a route borrowed from the snapshot, or
 * NULL. No allocation.
 */
const sc_route_t *sc_routes_find(const sc_routes_t *routes, const char *host, size_t len);

#endif
