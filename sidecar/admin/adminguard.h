/* Which admin requests may change state: a pure check against cross-origin and DNS-rebinding requests. */
#ifndef SEAM_SIDECAR_ADMIN_ADMINGUARD_H
#define SEAM_SIDECAR_ADMIN_ADMINGUARD_H

#include "sidecar/http/forward.h" /* sc_slice_t */

#define SC_ADMIN_HOST_MAX 255 /* bytes in a Host value we look at; longer ones are refused */

/*
 * Why a state-changing admin request is refused: XX(NAME, "slug", "message").
 * The message is the one-line 403 body.
 */
#define SC_ADMIN_GUARD_MAP(XX)                                                                                     \
    XX(ORIGIN, "origin", "forbidden: a request that changes state must not carry an Origin header (it came from a " \
                         "web page)")                                                                             \
    XX(HOST, "host", "forbidden: a request that changes state must name the admin address, localhost, 127.0.0.1 " \
                     "or [::1] in Host")

typedef enum {
    SC_ADMIN_GUARD_ALLOW = 0,
#define SC_ADMIN_GUARD_ENUM(name, slug, msg) SC_ADMIN_GUARD_E_##name,
    SC__ADMIN_GUARD_FIRST = -2200,
    SC_ADMIN_GUARD_MAP(SC_ADMIN_GUARD_ENUM)
#undef SC_ADMIN_GUARD_ENUM
    SC__ADMIN_GUARD_END
} sc_admin_guard_t;

/*
 * Decides whether an admin request may go on. GET and HEAD always may (they
 * change nothing, and a page cannot read the answers cross-origin). Any other
 * method is refused when the request carries an Origin header (browsers add
 * one to cross-origin POSTs, and the admin API has no browser clients), and
 * when its Host does not name this endpoint: a page on a rebound DNS name
 * reaches 127.0.0.1 with that name in Host.
 *
 * host is the request's Host (or :authority) value, empty when it had none
 * (refused: browsers always send one, so only a hand-made request lacks it,
 * and it can add one). A host is accepted, with any port or none (a
 * port-forward changes the port), when it is "localhost" (any case), a
 * loopback address (127.0.0.0/8, [::1]), or the host of listen (the --admin
 * address, "HOST:PORT"); when listen is a wildcard address (0.0.0.0, [::])
 * any IP address literal is, since the address a client dialled is not known
 * and a rebinding page always sends a name. Pure: borrows everything.
 */
sc_admin_guard_t sc_admin_guard_check(sc_slice_t method, int has_origin, sc_slice_t host, const char *listen);

/* True when host (a Host value, "name[:port]" or "[v6][:port]") names this endpoint, as described above. */
int sc_admin_guard_host_ok(sc_slice_t host, const char *listen);

/* Stable short name ("origin"); "allow" for SC_ADMIN_GUARD_ALLOW, "unknown" otherwise. */
const char *sc_admin_guard_name(int verdict);

/* The one-line reason, for the 403 body (no trailing newline). */
const char *sc_admin_guard_message(int verdict);

#endif
