/* The app's probes as kubelet would run them: parses --app-probes and judges the app's answers, pure. */
#include "sidecar/policy/appprobe.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "certs/pem.h"
#include "common/picohttpparser.h"
#include "sidecar/policy/error.h"

#define KEY_PREFIX "/app-health/"
#define CONTAINER_NAME_MAX 63 /* a Kubernetes container name is a DNS label */
#define REQUEST_MAX (SC_APP_PROBE_PATH_MAX + SC_APP_PROBE_HEADERS_MAX * (2 * SC_APP_PROBE_HEADER_MAX + 4) + 256)

/* Writes "SOURCE: KEY.FIELD: message" into err; returns SC_E_USAGE. */
static int field_error(char *err, size_t err_cap, const char *source, const char *key, const char *field,
                       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int field_error(char *err, size_t err_cap, const char *source, const char *key, const char *field,
                       const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, err_cap, "%s: \"%.*s\"%s%s: %s", source, SC_APP_PROBE_KEY_MAX, key, field[0] != '\0' ? "." : "",
             field, msg);
    return SC_E_USAGE;
}

/* "/app-health/<container>/<readiness|liveness|startup>", the container a DNS label. */
static int key_ok(const char *key)
{
    static const char *const kinds[] = {"readiness", "liveness", "startup"};
    size_t n = 0;

    if (strncmp(key, KEY_PREFIX, sizeof(KEY_PREFIX) - 1) != 0)
        return 0;
    key += sizeof(KEY_PREFIX) - 1;
    for (; (key[n] >= 'a' && key[n] <= 'z') || (key[n] >= '0' && key[n] <= '9') || key[n] == '-'; ++n)
        ;
    if (n == 0 || n > CONTAINER_NAME_MAX || key[0] == '-' || key[n - 1] == '-' || key[n] != '/')
        return 0;
    for (size_t i = 0; i != sizeof(kinds) / sizeof(kinds[0]); ++i)
        if (strcmp(key + n + 1, kinds[i]) == 0)
            return 1;
    return 0;
}

/* Refuses any key of obj not in allowed (NULL-terminated). */
static int only_keys(json_t *obj, const char *const *allowed, const char *source, const char *key, const char *where,
                     char *err, size_t err_cap)
{
    const char *name;
    json_t *value;
    json_object_foreach(obj, name, value)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], name) != 0)
            ++i;
        if (allowed[i] == NULL) {
            char field[128];
            snprintf(field, sizeof(field), "%s%s%.64s", where, where[0] != '\0' ? "." : "", name);
            return field_error(err, err_cap, source, key, field, "unknown field");
        }
    }
    return 0;
}

static int parse_port(json_t *handler, const char *handler_name, const char *source, const char *key, uint16_t *port,
                      char *err, size_t err_cap)
{
    char field[32];
    json_t *v = json_object_get(handler, "port");
    snprintf(field, sizeof(field), "%s.port", handler_name);
    /* named ports are resolved by whoever wrote the table (seam-inject): the sidecar cannot see the pod spec */
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535)
        return field_error(err, err_cap, source, key, field, "must be a number from 1 to 65535");
    *port = (uint16_t)json_integer_value(v);
    return 0;
}

/* RFC 9110 tchar: what a header name may hold. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int header_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SC_APP_PROBE_HEADER_MAX)
        return 0;
    for (size_t i = 0; i != n; ++i)
        if (!is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static int header_value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > SC_APP_PROBE_HEADER_MAX)
        return 0;
    for (size_t i = 0; i != n; ++i)
        if ((unsigned char)s[i] < 0x20 ? s[i] != '\t' : s[i] == 0x7f)
            return 0;
    return 1;
}

/* A request target kubelet would send as is: "/" then visible ASCII. */
static int path_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SC_APP_PROBE_PATH_MAX || s[0] != '/')
        return 0;
    for (size_t i = 0; i != n; ++i)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    return 1;
}

/* Appends to the request buffer; the caller sized it for the worst case. */
static void append(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf + *len, s, n);
    *len += n;
}

/*
 * Builds the request head kubelet would send: its User-Agent and Accept
 * unless the probe sets them, Host naming the port dialled unless the probe
 * names one, and Connection: close (one request per check).
 */
static int build_request(sc_app_probe_t *probe, const char *path, json_t *headers)
{
    char *buf = malloc(REQUEST_MAX), port[8];
    size_t len = 0, i;
    json_t *h;
    int has_host = 0, has_agent = 0, has_accept = 0;

    if (buf == NULL)
        return SC_E_NOMEM;
    append(buf, &len, "GET ");
    append(buf, &len, path);
    append(buf, &len, " HTTP/1.1\r\n");
    json_array_foreach(headers, i, h)
    {
        const char *name = json_string_value(json_object_get(h, "name"));
        has_host |= strcasecmp(name, "host") == 0;
        has_agent |= strcasecmp(name, "user-agent") == 0;
        has_accept |= strcasecmp(name, "accept") == 0;
        append(buf, &len, name);
        append(buf, &len, ": ");
        append(buf, &len, json_string_value(json_object_get(h, "value")));
        append(buf, &len, "\r\n");
    }
    snprintf(port, sizeof(port), "%u", probe->port);
    if (!has_host) {
        append(buf, &len, "Host: 127.0.0.1:");
        append(buf, &len, port);
        append(buf, &len, "\r\n");
    }
    if (!has_agent)
        append(buf, &len, "User-Agent: kube-probe/seam\r\n");
    if (!has_accept)
        append(buf, &len, "Accept: */*\r\n");
    append(buf, &len, "Connection: close\r\n\r\n");
    probe->request = buf;
    probe->request_len = len;
    return 0;
}

static int parse_http_get(json_t *handler, sc_app_probe_t *probe, const char *source, char *err, size_t err_cap)
{
    static const char *const keys[] = {"port", "path", "scheme", "httpHeaders", NULL};
    const char *key = probe->key, *path = "/";
    json_t *v, *headers, *h;
    size_t i;
    int rc;

    if (!json_is_object(handler))
        return field_error(err, err_cap, source, key, "httpGet", "must be an object");
    if ((rc = only_keys(handler, keys, source, key, "httpGet", err, err_cap)) != 0 ||
        (rc = parse_port(handler, "httpGet", source, key, &probe->port, err, err_cap)) != 0)
        return rc;
    if ((v = json_object_get(handler, "path")) != NULL && (!json_is_string(v) || !path_ok(path = json_string_value(v))))
        return field_error(err, err_cap, source, key, "httpGet.path",
                           "must start with \"/\" and hold visible ASCII only, at most %d bytes", SC_APP_PROBE_PATH_MAX);
    v = json_object_get(handler, "scheme");
    if (v != NULL && (!json_is_string(v) || strcmp(json_string_value(v), "HTTP") != 0))
        return field_error(err, err_cap, source, key, "httpGet.scheme",
                           "must be HTTP (the sidecar probes the app in plaintext on loopback)");
    headers = json_object_get(handler, "httpHeaders");
    if (headers == NULL)
        headers = json_array();
    else if (!json_is_array(headers) || json_array_size(headers) > SC_APP_PROBE_HEADERS_MAX)
        return field_error(err, err_cap, source, key, "httpGet.httpHeaders", "must be a list of at most %d "
                           "{\"name\", \"value\"} objects", SC_APP_PROBE_HEADERS_MAX);
    else
        json_incref(headers);
    rc = 0;
    json_array_foreach(headers, i, h)
    {
        static const char *const hkeys[] = {"name", "value", NULL};
        char where[48];
        json_t *name = json_object_get(h, "name"), *value = json_object_get(h, "value");
        snprintf(where, sizeof(where), "httpGet.httpHeaders[%zu]", i);
        if (!json_is_object(h)) {
            rc = field_error(err, err_cap, source, key, where, "must be an object");
        } else if ((rc = only_keys(h, hkeys, source, key, where, err, err_cap)) != 0) {
        } else if (!json_is_string(name) || !header_name_ok(json_string_value(name))) {
            rc = field_error(err, err_cap, source, key, where, "name must be a header name (token characters)");
        } else if (!json_is_string(value) || !header_value_ok(json_string_value(value))) {
            rc = field_error(err, err_cap, source, key, where, "value must be a string without control characters");
        }
        if (rc != 0)
            break;
    }
    if (rc == 0 && (rc = build_request(probe, path, headers)) != 0)
        snprintf(err, err_cap, "%s: out of memory", source);
    json_decref(headers);
    return rc;
}

static int parse_probe(const char *key, json_t *value, sc_app_probe_t *probe, const char *source, char *err,
                       size_t err_cap)
{
    static const char *const keys[] = {"httpGet", "tcpSocket", "timeoutSeconds", NULL};
    static const char *const tcp_keys[] = {"port", NULL};
    json_t *http = json_object_get(value, "httpGet"), *tcp = json_object_get(value, "tcpSocket"), *t;
    int rc;

    snprintf(probe->key, sizeof(probe->key), "%s", key);
    if (!json_is_object(value))
        return field_error(err, err_cap, source, key, "", "must be an object");
    if ((rc = only_keys(value, keys, source, key, "", err, err_cap)) != 0)
        return rc;
    t = json_object_get(value, "timeoutSeconds");
    if (t != NULL && (!json_is_integer(t) || json_integer_value(t) < 1 || json_integer_value(t) > SC_APP_PROBE_TIMEOUT_MAX_S))
        return field_error(err, err_cap, source, key, "timeoutSeconds", "must be a number from 1 to %d",
                           SC_APP_PROBE_TIMEOUT_MAX_S);
    probe->timeout_ms = (uint64_t)(t != NULL ? json_integer_value(t) : 1) * 1000;
    if ((http != NULL) == (tcp != NULL))
        return field_error(err, err_cap, source, key, "", "give exactly one of httpGet and tcpSocket");
    if (http != NULL) {
        probe->kind = SC_APP_PROBE_HTTP_GET;
        return parse_http_get(http, probe, source, err, err_cap);
    }
    probe->kind = SC_APP_PROBE_TCP_SOCKET;
    if (!json_is_object(tcp))
        return field_error(err, err_cap, source, key, "tcpSocket", "must be an object");
    if ((rc = only_keys(tcp, tcp_keys, source, key, "tcpSocket", err, err_cap)) != 0)
        return rc;
    return parse_port(tcp, "tcpSocket", source, key, &probe->port, err, err_cap);
}

/* The refusal stays one line whatever the JSON held: control bytes in a quoted key or field become "?". */
static int one_line(char *err, int rc)
{
    for (char *c = err; *c != '\0'; ++c)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return rc;
}

int sc_app_probes_parse(const char *text, size_t len, const char *source, sc_app_probes_t *out, char *err,
                        size_t err_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr), *value;
    const char *key;
    int rc = SC_E_USAGE;

    memset(out, 0, sizeof(*out));
    if (root == NULL) {
        snprintf(err, err_cap, "%s: invalid JSON at line %d: %s", source, jerr.line, jerr.text);
        return one_line(err, SC_E_USAGE);
    }
    if (!json_is_object(root) || json_object_size(root) > SC_APP_PROBES_MAX) {
        snprintf(err, err_cap, "%s: must be a JSON object of at most %d probes", source, SC_APP_PROBES_MAX);
        goto Exit;
    }
    if ((out->items = calloc(json_object_size(root) + 1, sizeof(*out->items))) == NULL) {
        snprintf(err, err_cap, "%s: out of memory", source);
        goto Exit;
    }
    json_object_foreach(root, key, value)
    {
        if (!key_ok(key)) {
            snprintf(err, err_cap, "%s: \"%.*s\": a probe path must be /app-health/<container>/<readiness|liveness|"
                                   "startup>", source, SC_APP_PROBE_KEY_MAX, key);
            goto Exit;
        }
        ++out->num; /* counted first: dispose frees what a failed parse built */
        if (parse_probe(key, value, &out->items[out->num - 1], source, err, err_cap) != 0)
            goto Exit;
    }
    rc = 0;
Exit:
    json_decref(root);
    if (rc != 0) {
        sc_app_probes_dispose(out);
        one_line(err, rc);
    }
    return rc;
}

int sc_app_probes_load(const char *value, sc_app_probes_t *out, char *err, size_t err_cap)
{
    char source[SC_APP_PROBE_PATH_MAX + 32], *text = NULL;
    size_t len;
    int rc;

    if (value[0] == '{')
        return sc_app_probes_parse(value, strlen(value), "--app-probes", out, err, err_cap);
    snprintf(source, sizeof(source), "--app-probes %s", value);
    if (crt_file_read(value, SC_APP_PROBES_TEXT_MAX, &text, &len) != 0) {
        memset(out, 0, sizeof(*out));
        snprintf(err, err_cap, "%s: cannot read the file (missing, unreadable or over %d bytes; inline JSON starts "
                               "with \"{\")", source, SC_APP_PROBES_TEXT_MAX);
        return SC_E_USAGE;
    }
    rc = sc_app_probes_parse(text, len, source, out, err, err_cap);
    free(text);
    return rc;
}

void sc_app_probes_dispose(sc_app_probes_t *probes)
{
    for (size_t i = 0; i != probes->num; ++i)
        free(probes->items[i].request);
    free(probes->items);
    memset(probes, 0, sizeof(*probes));
}

const sc_app_probe_t *sc_app_probes_find(const sc_app_probes_t *probes, const char *path, size_t len)
{
    for (size_t i = 0; i != probes->num; ++i)
        if (strlen(probes->items[i].key) == len && memcmp(probes->items[i].key, path, len) == 0)
            return &probes->items[i];
    return NULL;
}

int sc_app_probe_judge(const char *buf, size_t len, int *status)
{
    struct phr_header headers[100];
    size_t num_headers = sizeof(headers) / sizeof(headers[0]), msg_len;
    const char *msg;
    int minor;
    int rc = phr_parse_response(buf, len, &minor, status, &msg, &msg_len, headers, &num_headers, 0);
    if (rc == -2)
        return 0;
    return rc > 0 && *status >= 100 ? 1 : -1; /* picohttpparser takes any three digits: "020" is no status */
}

int sc_app_probe_status_ok(int status)
{
    return status >= 200 && status < 400;
}
