/* The app's probes as kubelet would run them: the --app-probes table and the judgement of an answer, pure. */
#ifndef SEAM_SIDECAR_POLICY_APPPROBE_H
#define SEAM_SIDECAR_POLICY_APPPROBE_H

#include <stddef.h>
#include <stdint.h>

#define SC_APP_PROBES_MAX 64              /* probe paths one sidecar serves (3 per container) */
#define SC_APP_PROBES_TEXT_MAX (64 * 1024) /* an --app-probes file or JSON text */
#define SC_APP_PROBE_KEY_MAX 128          /* "/app-health/<container>/<kind>"; a container name has at most 63 bytes */
#define SC_APP_PROBE_PATH_MAX 2048        /* httpGet.path sent to the app */
#define SC_APP_PROBE_HEADERS_MAX 32       /* httpGet.httpHeaders entries */
#define SC_APP_PROBE_HEADER_MAX 4096      /* bytes in one header's name or value */
#define SC_APP_PROBE_TIMEOUT_MAX_S 3600   /* timeoutSeconds upper bound */
#define SC_APP_PROBE_RESPONSE_MAX 8192    /* response head bytes read from the app before giving up */

typedef enum { SC_APP_PROBE_HTTP_GET = 0, SC_APP_PROBE_TCP_SOCKET } sc_app_probe_kind_t;

/* One probe of the app, on 127.0.0.1:port. */
typedef struct st_sc_app_probe_t {
    char key[SC_APP_PROBE_KEY_MAX]; /* the path kubelet asks for: "/app-health/web/readiness" */
    sc_app_probe_kind_t kind;
    uint16_t port;
    uint64_t timeout_ms; /* timeoutSeconds: no answer within this is a failure */
    char *request;       /* SC_APP_PROBE_HTTP_GET: the whole request head sent to the app (owned) */
    size_t request_len;
} sc_app_probe_t;

/* The table. Immutable once parsed; owns its entries. */
typedef struct st_sc_app_probes_t {
    sc_app_probe_t *items;
    size_t num;
} sc_app_probes_t;

/*
 * Parses the probes JSON: an object whose keys are the paths kubelet asks for
 * ("/app-health/<container>/<readiness|liveness|startup>") and whose values
 * have the shape of a Kubernetes probe's handler and timeout:
 *   {"httpGet": {"port": 8080, "path": "/healthz", "scheme": "HTTP",
 *                "httpHeaders": [{"name": "X", "value": "y"}]}, "timeoutSeconds": 1}
 *   {"tcpSocket": {"port": 8080}, "timeoutSeconds": 1}
 * path defaults to "/", scheme to HTTP (the only one), timeoutSeconds to 1.
 * Unknown keys are refused, so a misspelt field is not silently dropped.
 * Returns 0 with *out filled (free with sc_app_probes_dispose), or
 * SC_E_USAGE with one line in err naming source and the field.
 */
int sc_app_probes_parse(const char *text, size_t len, const char *source, sc_app_probes_t *out, char *err,
                        size_t err_cap) __attribute__((warn_unused_result));

/*
 * The --app-probes value: JSON text when it starts with "{", else a file
 * holding it. Returns as sc_app_probes_parse; err names the flag (and file).
 */
int sc_app_probes_load(const char *value, sc_app_probes_t *out, char *err, size_t err_cap)
    __attribute__((warn_unused_result));

void sc_app_probes_dispose(sc_app_probes_t *probes);

/* The probe kubelet asks for with path (exact match), or NULL. Borrows everything. */
const sc_app_probe_t *sc_app_probes_find(const sc_app_probes_t *probes, const char *path, size_t len);

/*
 * Judges the bytes of the app's response read so far: returns 1 with
 * *status when the head is complete, 0 when more is needed (and may come:
 * len below SC_APP_PROBE_RESPONSE_MAX), -1 when it is not an HTTP/1.x
 * response. Pure.
 */
int sc_app_probe_judge(const char *buf, size_t len, int *status);

/* True for an answer kubelet counts as success: 200 to 399. */
int sc_app_probe_status_ok(int status);

#endif
