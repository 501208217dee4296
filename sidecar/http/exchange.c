/* Seam's HTTP message model: header fields, local replies (gRPC-aware) and gRPC's header formats. */
#include "sidecar/http/exchange.h"

#include <stdio.h>
#include <string.h>

#define FIELDS_INITIAL 16

static void fields_grow(h2o_mem_pool_t *pool, sc_http_fields_t *fields)
{
    if (fields->size < fields->capacity)
        return;
    size_t cap = fields->capacity == 0 ? FIELDS_INITIAL : fields->capacity * 2;
    sc_http_field_t *entries = h2o_mem_alloc_pool(pool, sizeof(*entries) * cap);
    if (fields->size != 0)
        memcpy(entries, fields->entries, sizeof(*entries) * fields->size);
    fields->entries = entries; /* the old array stays in the pool until the exchange ends */
    fields->capacity = cap;
}

void sc_http_fields_add_ref(h2o_mem_pool_t *pool, sc_http_fields_t *fields, h2o_iovec_t name, h2o_iovec_t value)
{
    fields_grow(pool, fields);
    fields->entries[fields->size++] = (sc_http_field_t){name, value};
}

void sc_http_fields_add(h2o_mem_pool_t *pool, sc_http_fields_t *fields, const char *name, size_t name_len,
                        const char *value, size_t value_len)
{
    char *copy = h2o_mem_alloc_pool(pool, name_len + value_len + 2);
    for (size_t i = 0; i != name_len; ++i)
        copy[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] + 32) : name[i];
    copy[name_len] = '\0';
    memcpy(copy + name_len + 1, value, value_len);
    copy[name_len + 1 + value_len] = '\0';
    sc_http_fields_add_ref(pool, fields, h2o_iovec_init(copy, name_len), h2o_iovec_init(copy + name_len + 1, value_len));
}

ssize_t sc_http_fields_find(const sc_http_fields_t *fields, const char *name, size_t name_len, ssize_t after)
{
    for (size_t i = (size_t)(after + 1); i < fields->size; ++i)
        if (h2o_memis(fields->entries[i].name.base, fields->entries[i].name.len, name, name_len))
            return (ssize_t)i;
    return -1;
}

void sc_http_fields_delete(sc_http_fields_t *fields, size_t index)
{
    memmove(fields->entries + index, fields->entries + index + 1, sizeof(*fields->entries) * (fields->size - index - 1));
    --fields->size;
}

size_t sc_http_fields_delete_all(sc_http_fields_t *fields, const char *name, size_t name_len)
{
    size_t removed = 0;
    ssize_t i;
    while ((i = sc_http_fields_find(fields, name, name_len, -1)) != -1) {
        sc_http_fields_delete(fields, (size_t)i);
        ++removed;
    }
    return removed;
}

const char *sc_http_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
    }
}

int sc_http_grpc_status_of(int status)
{
    switch (status) {
    case 400: return 13; /* INTERNAL: the request itself was malformed */
    case 401: return 16; /* UNAUTHENTICATED */
    case 403: return 7;  /* PERMISSION_DENIED */
    case 404: return 12; /* UNIMPLEMENTED */
    case 413:
    case 429:
    case 431: return 8; /* RESOURCE_EXHAUSTED */
    case 502:
    case 503: return 14; /* UNAVAILABLE */
    case 504: return 4;  /* DEADLINE_EXCEEDED */
    default: return 2;   /* UNKNOWN */
    }
}

int sc_exchange_is_grpc(const sc_exchange_t *ex)
{
    ssize_t i = sc_http_fields_find(&ex->headers, H2O_STRLIT("content-type"), -1);
    if (i == -1)
        return 0;
    h2o_iovec_t v = ex->headers.entries[i].value;
    static const char grpc[] = "application/grpc";
    return v.len >= sizeof(grpc) - 1 && h2o_lcstris(v.base, sizeof(grpc) - 1, grpc, sizeof(grpc) - 1) &&
           (v.len == sizeof(grpc) - 1 || v.base[sizeof(grpc) - 1] == '+' || v.base[sizeof(grpc) - 1] == ';');
}

static int status_in(const sc_http_fields_t *fields)
{
    ssize_t i = sc_http_fields_find(fields, H2O_STRLIT("grpc-status"), -1);
    if (i == -1)
        return -1;
    h2o_iovec_t v = fields->entries[i].value;
    int code = 0;
    if (v.len == 0 || v.len > 3)
        return -1;
    for (size_t j = 0; j != v.len; ++j) {
        if (v.base[j] < '0' || v.base[j] > '9')
            return -1;
        code = code * 10 + (v.base[j] - '0');
    }
    return code;
}

int sc_exchange_grpc_status(const sc_exchange_t *ex)
{
    if (ex->log.grpc_status >= 0)
        return ex->log.grpc_status;
    int code = status_in(&ex->res_trailers);
    return code >= 0 ? code : status_in(&ex->res_headers);
}

h2o_iovec_t sc_http_grpc_message(h2o_mem_pool_t *pool, const char *text, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    while (len != 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        --len; /* the body's line end is not part of the message */
    char *out = h2o_mem_alloc_pool(pool, len * 3 + 1), *p = out;
    for (size_t i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c > 0x7e || c == '%') {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        } else {
            *p++ = (char)c;
        }
    }
    *p = '\0';
    return h2o_iovec_init(out, (size_t)(p - out));
}

int sc_http_parse_grpc_timeout(const char *value, size_t len, uint64_t *ms)
{
    uint64_t n = 0;
    if (len < 2 || len > 9)
        return -1; /* at most 8 digits and a unit */
    for (size_t i = 0; i != len - 1; ++i) {
        if (value[i] < '0' || value[i] > '9')
            return -1;
        n = n * 10 + (uint64_t)(value[i] - '0');
    }
    switch (value[len - 1]) {
    case 'H': *ms = n * 3600000; break;
    case 'M': *ms = n * 60000; break;
    case 'S': *ms = n * 1000; break;
    case 'm': *ms = n; break;
    case 'u': *ms = (n + 999) / 1000; break;
    case 'n': *ms = (n + 999999) / 1000000; break;
    default: return -1;
    }
    return 0;
}

void sc_exchange_reply(sc_exchange_t *ex, int status, const char *body)
{
    size_t body_len = strlen(body);
    ex->res_headers.size = 0; /* whatever a next hop had begun to answer is replaced */
    ex->res_trailers.size = 0;
    ex->reason = h2o_iovec_init(NULL, 0);
    if (sc_exchange_is_grpc(ex)) {
        /* a trailers-only gRPC response: the status rides in the HEADERS that end the stream */
        char *code = h2o_mem_alloc_pool(&ex->pool, 8);
        int code_len = snprintf(code, 8, "%d", sc_http_grpc_status_of(status));
        ex->status = 200;
        ex->res_content_length = UINT64_MAX;
        sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("content-type")),
                               h2o_iovec_init(H2O_STRLIT("application/grpc")));
        sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("grpc-status")),
                               h2o_iovec_init(code, (size_t)code_len));
        sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("grpc-message")),
                               sc_http_grpc_message(&ex->pool, body, body_len));
        ex->log.grpc_status = sc_http_grpc_status_of(status);
        sc_exchange_send(ex, NULL, 0, SC_SEND_FINAL);
        return;
    }
    char *copy = h2o_mem_alloc_pool(&ex->pool, body_len + 1);
    memcpy(copy, body, body_len + 1);
    ex->status = status;
    ex->res_content_length = body_len;
    sc_http_fields_add_ref(&ex->pool, &ex->res_headers, h2o_iovec_init(H2O_STRLIT("content-type")),
                           h2o_iovec_init(H2O_STRLIT("text/plain; charset=utf-8")));
    h2o_iovec_t buf = h2o_iovec_init(copy, body_len);
    sc_exchange_send(ex, &buf, 1, SC_SEND_FINAL);
}
