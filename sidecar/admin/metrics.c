/* The sidecar's counters and their Prometheus text rendering. */
#include "sidecar/admin/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/error.h"
#include "sidecar/policy/error.h"

_Static_assert(CRT__TLSFAIL_END <= SC_METRICS_MAX_REASONS, "reason table too large");

size_t sc_metrics_reason_index(const char *reason)
{
    crt_tlsfail_t fail;
    return crt_tlsfail_from_slug(reason, &fail) == 0 ? (size_t)fail : (size_t)CRT_TLSFAIL_HANDSHAKE_FAILED;
}

static void add(uint64_t *c, uint64_t v)
{
    __atomic_fetch_add(c, v, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

void sc_metrics_count_request(sc_metrics_t *m, int status, uint64_t duration_us)
{
    static const uint64_t bounds[] = SC_METRICS_DURATION_BUCKETS_US;
    size_t b;
    if (status < 100 || status >= SC_METRICS_STATUS_MAX)
        status = 0; /* counted as code="0": no response was sent */
    add(&m->requests[status], 1);
    for (b = 0; b != SC_METRICS_NUM_BUCKETS; ++b)
        if (duration_us <= bounds[b])
            break;
    add(&m->duration_buckets[b], 1);
    add(&m->duration_sum_us, duration_us);
}

void sc_metrics_count_decision(sc_metrics_t *m, sc_decision_t decision)
{
    add(&m->decisions[decision], 1);
}

void sc_metrics_count_handshake(sc_metrics_t *m, int resumed)
{
    add(&m->handshakes[resumed ? 1 : 0], 1);
}

void sc_metrics_count_handshake_error(sc_metrics_t *m, const char *reason)
{
    add(&m->handshake_errors[sc_metrics_reason_index(reason)], 1);
}

void sc_metrics_connection_delta(sc_metrics_t *m, int delta)
{
    __atomic_fetch_add(&m->connections_active, (int64_t)delta, __ATOMIC_RELAXED);
}

void sc_metrics_count_rejection(sc_metrics_t *m, sc_refuse_reason_t reason)
{
    add(&m->connections_rejected[reason], 1);
}

void sc_metrics_count_stream_rate_close(sc_metrics_t *m)
{
    add(&m->stream_rate_closes, 1);
}

const char *sc_metrics_tcp_decision_name(sc_tcp_decision_t decision)
{
    static const char *const names[SC_TCP_NUM_DECISIONS] = {"passthrough", "deny", "tunnel", "allow"};
    return names[decision];
}

void sc_metrics_count_tcp(sc_metrics_t *m, sc_tcp_decision_t decision, uint64_t bytes)
{
    add(&m->tcp_connections[decision], 1);
    add(&m->tcp_bytes, bytes);
}

void sc_metrics_upstream_connection_delta(sc_metrics_t *m, int delta)
{
    if (delta > 0)
        add(&m->upstream_connections_opened, 1);
    __atomic_fetch_add(&m->upstream_connections_active, (int64_t)delta, __ATOMIC_RELAXED);
}

typedef struct st_text_t {
    char *buf;
    size_t len, cap;
    int failed;
} text_t;

static void emit(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void emit(text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        if (t->failed)
            return;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->buf, cap);
        if (p == NULL) {
            t->failed = 1;
            return;
        }
        t->buf = p;
        t->cap = cap;
    }
}

int sc_metrics_render(sc_metrics_t *const *workers, size_t n, const sc_metrics_process_t *proc, char **out,
                      size_t *out_len)
{
    static const uint64_t bounds[] = SC_METRICS_DURATION_BUCKETS_US;
    static const sc_decision_t decisions[] = {SC_DECISION_ALLOW, SC_DECISION_DENY, SC_DECISION_AUDIT_DENY};
    static const char *const dirs[2] = {"inbound", "outbound"};
    static const char *const refuse_reasons[SC_REFUSE_NUM_REASONS] = {"limit", "descriptors"};
    sc_metrics_t sums[2];
    text_t t = {NULL, 0, 4096, 0};
    size_t w, i, d;

    memset(sums, 0, sizeof(sums));
    for (w = 0; w != n; ++w) {
        const sc_metrics_t *m = workers[w];
        sc_metrics_t *sum = &sums[m->direction == SC_DIRECTION_OUTBOUND ? 1 : 0];
        for (i = 0; i != SC_METRICS_STATUS_MAX; ++i)
            sum->requests[i] += get(&m->requests[i]);
        for (i = 0; i != SC_METRICS_NUM_BUCKETS + 1; ++i)
            sum->duration_buckets[i] += get(&m->duration_buckets[i]);
        sum->duration_sum_us += get(&m->duration_sum_us);
        for (i = 0; i != 3; ++i)
            sum->decisions[i] += get(&m->decisions[i]);
        for (i = 0; i != 2; ++i)
            sum->handshakes[i] += get(&m->handshakes[i]);
        for (i = 0; i != SC_METRICS_MAX_REASONS; ++i)
            sum->handshake_errors[i] += get(&m->handshake_errors[i]);
        sum->connections_active += __atomic_load_n(&m->connections_active, __ATOMIC_RELAXED);
        for (i = 0; i != SC_REFUSE_NUM_REASONS; ++i)
            sum->connections_rejected[i] += get(&m->connections_rejected[i]);
        sum->stream_rate_closes += get(&m->stream_rate_closes);
        for (i = 0; i != SC_TCP_NUM_DECISIONS; ++i)
            sum->tcp_connections[i] += get(&m->tcp_connections[i]);
        sum->tcp_bytes += get(&m->tcp_bytes);
        sum->upstream_connections_opened += get(&m->upstream_connections_opened);
        sum->upstream_connections_active += __atomic_load_n(&m->upstream_connections_active, __ATOMIC_RELAXED);
    }
    if ((t.buf = malloc(t.cap)) == NULL)
        return SC_E_NOMEM;

    emit(&t, "# HELP seam_requests_total Requests handled, by direction and status code.\n"
             "# TYPE seam_requests_total counter\n");
    for (d = 0; d != 2; ++d)
        for (i = 0; i != SC_METRICS_STATUS_MAX; ++i)
            if (sums[d].requests[i] != 0)
                emit(&t, "seam_requests_total{direction=\"%s\",code=\"%zu\"} %llu\n", dirs[d], i,
                     (unsigned long long)sums[d].requests[i]);

    emit(&t, "# HELP seam_request_duration_seconds Time from request start to response end.\n"
             "# TYPE seam_request_duration_seconds histogram\n");
    for (d = 0; d != 2; ++d) {
        uint64_t cumulative = 0;
        for (i = 0; i != SC_METRICS_NUM_BUCKETS; ++i) {
            cumulative += sums[d].duration_buckets[i];
            emit(&t, "seam_request_duration_seconds_bucket{direction=\"%s\",le=\"%g\"} %llu\n", dirs[d],
                 (double)bounds[i] / 1e6, (unsigned long long)cumulative);
        }
        cumulative += sums[d].duration_buckets[SC_METRICS_NUM_BUCKETS];
        emit(&t, "seam_request_duration_seconds_bucket{direction=\"%s\",le=\"+Inf\"} %llu\n", dirs[d],
             (unsigned long long)cumulative);
        emit(&t, "seam_request_duration_seconds_sum{direction=\"%s\"} %.6f\n", dirs[d],
             (double)sums[d].duration_sum_us / 1e6);
        emit(&t, "seam_request_duration_seconds_count{direction=\"%s\"} %llu\n", dirs[d],
             (unsigned long long)cumulative);
    }

    emit(&t, "# HELP seam_authz_decisions_total Policy decisions on inbound requests.\n"
             "# TYPE seam_authz_decisions_total counter\n");
    for (i = 0; i != 3; ++i)
        emit(&t, "seam_authz_decisions_total{decision=\"%s\"} %llu\n", sc_decision_name(decisions[i]),
             (unsigned long long)sums[0].decisions[decisions[i]]);

    emit(&t, "# HELP seam_tls_handshakes_total Completed TLS handshakes.\n"
             "# TYPE seam_tls_handshakes_total counter\n");
    for (d = 0; d != 2; ++d) {
        emit(&t, "seam_tls_handshakes_total{direction=\"%s\",resumed=\"false\"} %llu\n", dirs[d],
             (unsigned long long)sums[d].handshakes[0]);
        emit(&t, "seam_tls_handshakes_total{direction=\"%s\",resumed=\"true\"} %llu\n", dirs[d],
             (unsigned long long)sums[d].handshakes[1]);
    }

    emit(&t, "# HELP seam_tls_handshake_errors_total Failed TLS handshakes, by cause.\n"
             "# TYPE seam_tls_handshake_errors_total counter\n");
    for (d = 0; d != 2; ++d)
        for (i = 0; i != CRT__TLSFAIL_END; ++i)
            emit(&t, "seam_tls_handshake_errors_total{direction=\"%s\",reason=\"%s\"} %llu\n", dirs[d],
                 crt_tlsfail_slug((crt_tlsfail_t)i), (unsigned long long)sums[d].handshake_errors[i]);

    emit(&t, "# HELP seam_cert_expiry_timestamp_seconds notAfter of the sidecar's own certificate.\n"
             "# TYPE seam_cert_expiry_timestamp_seconds gauge\n"
             "seam_cert_expiry_timestamp_seconds %.0f\n",
         proc->cert_expiry);
    emit(&t, "# HELP seam_cert_rotations_total Certificate rotations, by result.\n"
             "# TYPE seam_cert_rotations_total counter\n"
             "seam_cert_rotations_total{result=\"success\"} %llu\n"
             "seam_cert_rotations_total{result=\"failure\"} %llu\n",
         (unsigned long long)proc->rotations_ok, (unsigned long long)proc->rotations_failed);
    emit(&t, "# HELP seam_connections_active Open connections.\n"
             "# TYPE seam_connections_active gauge\n"
             "seam_connections_active{direction=\"inbound\"} %lld\n"
             "seam_connections_active{direction=\"outbound\"} %lld\n"
             "seam_connections_active{direction=\"upstream\"} %lld\n",
         (long long)sums[0].connections_active, (long long)sums[1].connections_active,
         (long long)sums[1].upstream_connections_active);
    emit(&t, "# HELP seam_connections_rejected_total Connections a data listener closed at once, by cause: limit (it "
             "held its budget) or descriptors (too few left).\n"
             "# TYPE seam_connections_rejected_total counter\n");
    for (d = 0; d != 2; ++d)
        for (i = 0; i != SC_REFUSE_NUM_REASONS; ++i)
            emit(&t, "seam_connections_rejected_total{direction=\"%s\",reason=\"%s\"} %llu\n", dirs[d],
                 refuse_reasons[i], (unsigned long long)sums[d].connections_rejected[i]);
    emit(&t, "# HELP seam_connections_limit Connections a running data listener holds at most (--max-connections, "
             "or fewer when descriptors are short).\n"
             "# TYPE seam_connections_limit gauge\n");
    for (d = 0; d != 2; ++d)
        if (proc->connections_limit[d] != 0)
            emit(&t, "seam_connections_limit{direction=\"%s\"} %llu\n", dirs[d],
                 (unsigned long long)proc->connections_limit[d]);
    emit(&t, "# HELP seam_upstream_connections_opened_total Mesh connections the outbound side opened.\n"
             "# TYPE seam_upstream_connections_opened_total counter\n"
             "seam_upstream_connections_opened_total %llu\n",
         (unsigned long long)sums[1].upstream_connections_opened);
    emit(&t, "# HELP seam_tcp_connections_total Opaque TCP connections, by direction and what became of them.\n"
             "# TYPE seam_tcp_connections_total counter\n");
    for (d = 0; d != 2; ++d)
        for (i = 0; i != SC_TCP_NUM_DECISIONS; ++i)
            if (i == SC_TCP_DENY || (d == 0) == (i == SC_TCP_ALLOW)) /* inbound: allow, deny; outbound: the rest */
                emit(&t, "seam_tcp_connections_total{direction=\"%s\",decision=\"%s\"} %llu\n", dirs[d],
                     sc_metrics_tcp_decision_name((sc_tcp_decision_t)i), (unsigned long long)sums[d].tcp_connections[i]);
    emit(&t, "# HELP seam_tcp_bytes_total Bytes of opaque TCP connections, both ways, by direction.\n"
             "# TYPE seam_tcp_bytes_total counter\n"
             "seam_tcp_bytes_total{direction=\"inbound\"} %llu\n"
             "seam_tcp_bytes_total{direction=\"outbound\"} %llu\n",
         (unsigned long long)sums[0].tcp_bytes, (unsigned long long)sums[1].tcp_bytes);
    emit(&t, "# HELP seam_policy_reloads_total Policy file loads after start-up, by result.\n"
             "# TYPE seam_policy_reloads_total counter\n"
             "seam_policy_reloads_total{result=\"success\"} %llu\n"
             "seam_policy_reloads_total{result=\"failure\"} %llu\n",
         (unsigned long long)proc->policy_reloads_ok, (unsigned long long)proc->policy_reloads_failed);
    emit(&t, "# HELP seam_h2_stream_rate_closes_total Connections closed for opening or resetting streams too fast.\n"
             "# TYPE seam_h2_stream_rate_closes_total counter\n"
             "seam_h2_stream_rate_closes_total{direction=\"inbound\"} %llu\n",
         (unsigned long long)sums[0].stream_rate_closes);
    if (t.failed) {
        free(t.buf);
        return SC_E_NOMEM;
    }
    *out = t.buf;
    *out_len = t.len;
    return 0;
}
