/* Tests of sidecar/admin/metrics.c: counting per worker and the Prometheus text of the sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sidecar/admin/metrics.h"

static void assert_line(const char *text, const char *line)
{
    if (strstr(text, line) == NULL)
        fail_msg("missing line: %s", line);
}

static void test_render_sums_workers(void **state)
{
    (void)state;
    static sc_metrics_t a, b;
    sc_metrics_t *list[] = {&a, &b};
    sc_metrics_process_t proc = {.cert_expiry = 1800000000, .policy_reloads_ok = 2, .policy_reloads_failed = 1};
    char *text;
    size_t len;

    sc_metrics_count_request(&a, 200, 500);     /* 0.5 ms */
    sc_metrics_count_request(&b, 200, 30000);   /* 30 ms */
    sc_metrics_count_request(&b, 403, 100);
    sc_metrics_count_request(&b, 0, 20000000);  /* no response, 20 s: +Inf bucket */
    sc_metrics_count_decision(&a, SC_DECISION_ALLOW);
    sc_metrics_count_decision(&b, SC_DECISION_AUDIT_DENY);
    sc_metrics_count_handshake(&a, 0);
    sc_metrics_count_handshake(&b, 1);
    sc_metrics_count_handshake_error(&a, "expired");
    sc_metrics_count_handshake_error(&b, "expired");
    sc_metrics_count_handshake_error(&b, "something-new");
    sc_metrics_connection_delta(&a, 3);
    sc_metrics_connection_delta(&b, 1);
    sc_metrics_connection_delta(&a, -1);
    sc_metrics_count_stream_rate_close(&b);
    sc_metrics_count_rejection(&a, SC_REFUSE_LIMIT);
    sc_metrics_count_rejection(&b, SC_REFUSE_LIMIT);
    sc_metrics_count_rejection(&b, SC_REFUSE_DESCRIPTORS);
    proc.connections_limit[SC_DIRECTION_INBOUND] = 96;

    assert_int_equal(sc_metrics_render(list, 2, &proc, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    assert_line(text, "seam_requests_total{direction=\"inbound\",code=\"200\"} 2\n");
    assert_line(text, "seam_requests_total{direction=\"inbound\",code=\"403\"} 1\n");
    assert_line(text, "seam_requests_total{direction=\"inbound\",code=\"0\"} 1\n");
    assert_line(text, "seam_request_duration_seconds_bucket{direction=\"inbound\",le=\"0.001\"} 2\n");
    assert_line(text, "seam_request_duration_seconds_bucket{direction=\"inbound\",le=\"0.05\"} 3\n");
    assert_line(text, "seam_request_duration_seconds_bucket{direction=\"inbound\",le=\"10\"} 3\n");
    assert_line(text, "seam_request_duration_seconds_bucket{direction=\"inbound\",le=\"+Inf\"} 4\n");
    assert_line(text, "seam_request_duration_seconds_count{direction=\"inbound\"} 4\n");
    assert_line(text, "seam_request_duration_seconds_sum{direction=\"inbound\"} 20.030600\n");
    assert_line(text, "seam_authz_decisions_total{decision=\"allow\"} 1\n");
    assert_line(text, "seam_authz_decisions_total{decision=\"deny\"} 0\n");
    assert_line(text, "seam_authz_decisions_total{decision=\"audit_deny\"} 1\n");
    assert_line(text, "seam_tls_handshakes_total{direction=\"inbound\",resumed=\"false\"} 1\n");
    assert_line(text, "seam_tls_handshakes_total{direction=\"inbound\",resumed=\"true\"} 1\n");
    assert_line(text, "seam_tls_handshake_errors_total{direction=\"inbound\",reason=\"expired\"} 2\n");
    assert_line(text, "seam_tls_handshake_errors_total{direction=\"inbound\",reason=\"handshake-failed\"} 1\n");
    assert_line(text, "seam_tls_handshake_errors_total{direction=\"inbound\",reason=\"client-cert-required\"} 0\n");
    assert_line(text, "seam_cert_expiry_timestamp_seconds 1800000000\n");
    assert_line(text, "seam_connections_active{direction=\"inbound\"} 3\n");
    assert_line(text, "seam_policy_reloads_total{result=\"failure\"} 1\n");
    assert_line(text, "seam_h2_stream_rate_closes_total{direction=\"inbound\"} 1\n");
    assert_line(text, "# TYPE seam_request_duration_seconds histogram\n");
    assert_line(text, "seam_connections_rejected_total{direction=\"inbound\",reason=\"limit\"} 2\n");
    assert_line(text, "seam_connections_rejected_total{direction=\"inbound\",reason=\"descriptors\"} 1\n");
    assert_line(text, "seam_connections_rejected_total{direction=\"outbound\",reason=\"limit\"} 0\n");
    assert_line(text, "# TYPE seam_connections_limit gauge\n");
    assert_line(text, "seam_connections_limit{direction=\"inbound\"} 96\n");
    if (strstr(text, "seam_connections_limit{direction=\"outbound\"}") != NULL)
        fail_msg("a limit for a listener that does not run");
    free(text);
}

static void test_reason_table(void **state)
{
    (void)state;
    assert_int_equal(sc_metrics_reason_index("expired"), 0);
    assert_int_equal(sc_metrics_reason_index("nonsense"), sc_metrics_reason_index(SC_REASON_HANDSHAKE_FAILED));
    assert_true(sc_metrics_reason_index(SC_REASON_CLIENT_CERT_REQUIRED) != sc_metrics_reason_index("expired"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_sums_workers),
        cmocka_unit_test(test_reason_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
