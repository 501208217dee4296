/* Tests of certs/tlsfail.c: the vocabulary's order and slugs, and a row of facts per rule of each observer. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <openssl/ssl.h>
#include <string.h>

#include "certs/tlsfail.h"

/* The reason labels of seam_tls_handshake_errors_total, in the order /metrics has always listed them. */
static const char *const metric_labels[] = {
    "expired",           "not-yet-valid",        "untrusted-root",     "missing-intermediate",
    "no-uri-san",        "several-uri-sans",     "bad-spiffe-id",      "not-a-leaf",
    "wrong-key-usage",   "bad-signature",        "name-constraint",    "invalid-chain",
    "identity-mismatch", "client-cert-required", "name-mismatch",      "bad-certificate",
    "client-cert-rejected", "connection-refused", "dns-failure",       "tls-error",
    "no-shared-cipher",  "plain-http",           "timeout",            "handshake-failed",
};

static void test_slugs_keep_the_metric_order(void **state)
{
    (void)state;
    assert_int_equal(CRT__TLSFAIL_END, sizeof(metric_labels) / sizeof(metric_labels[0]));
    for (int i = 0; i != CRT__TLSFAIL_END; ++i)
        assert_string_equal(crt_tlsfail_slug((crt_tlsfail_t)i), metric_labels[i]);
    assert_string_equal(crt_tlsfail_slug(CRT__TLSFAIL_END), "unknown");
}

static void test_slugs_agree_with_their_sources(void **state)
{
    (void)state;
    /* the chain-verification rows are the certs library's verify categories, in its order */
    for (int err = CRT_E_EXPIRED, i = 0; err <= CRT_E_IDENTITY_MISMATCH; ++err, ++i) {
        assert_true(crt_error_is_verify_category(err));
        assert_string_equal(crt_tlsfail_slug((crt_tlsfail_t)i), crt_error_slug(err));
    }
    /* every diagnosis but "ok" has exactly one row, under its own slug */
    for (int d = 0; d != CRT__DIAG_END; ++d) {
        crt_tlsfail_t fail;
        if (d == CRT_DIAG_OK) {
            assert_int_equal(crt_tlsfail_from_slug(crt_diag_slug(CRT_DIAG_OK), &fail), -1);
            continue;
        }
        assert_int_equal(crt_tlsfail_from_slug(crt_diag_slug((crt_diag_t)d), &fail), 0);
        assert_int_equal(crt_tlsfail_diag(fail), d);
    }
}

static void test_from_slug(void **state)
{
    (void)state;
    crt_tlsfail_t fail = CRT__TLSFAIL_END;
    assert_int_equal(crt_tlsfail_from_slug("expired", &fail), 0);
    assert_int_equal(fail, CRT_TLSFAIL_EXPIRED);
    assert_int_equal(crt_tlsfail_from_slug("handshake-failed", &fail), 0);
    assert_int_equal(fail, CRT_TLSFAIL_HANDSHAKE_FAILED);
    assert_int_equal(crt_tlsfail_from_slug("nomem", &fail), -1);
    assert_int_equal(crt_tlsfail_from_slug("", &fail), -1);
    assert_int_equal(fail, CRT_TLSFAIL_HANDSHAKE_FAILED);
}

static void test_diag_of_each_name(void **state)
{
    (void)state;
    static const struct {
        crt_tlsfail_t fail;
        crt_diag_t want;
    } rows[] = {
        {CRT_TLSFAIL_EXPIRED, CRT_DIAG_EXPIRED},
        {CRT_TLSFAIL_NO_URI_SAN, CRT_DIAG_NAME_MISMATCH},
        {CRT_TLSFAIL_IDENTITY_MISMATCH, CRT_DIAG_NAME_MISMATCH},
        {CRT_TLSFAIL_NOT_A_LEAF, CRT_DIAG_BAD_CERTIFICATE},
        {CRT_TLSFAIL_BAD_SIGNATURE, CRT_DIAG_BAD_CERTIFICATE},
        {CRT_TLSFAIL_PLAIN_HTTP, CRT_DIAG_PLAIN_HTTP},
        {CRT_TLSFAIL_HANDSHAKE_FAILED, CRT_DIAG_TLS_ERROR},
        {CRT__TLSFAIL_END, CRT_DIAG_TLS_ERROR},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i)
        assert_int_equal(crt_tlsfail_diag(rows[i].fail), rows[i].want);
}

struct row {
    const char *what;
    crt_tlsfail_facts_t facts;
    crt_tlsfail_t want;
};

#define SENT(desc) .alert_seen = CRT_TLSFAIL_ALERT_SENT, .alert = (desc)
#define RECEIVED(desc) .alert_seen = CRT_TLSFAIL_ALERT_RECEIVED, .alert = (desc)
#define AFTER_FINISHED(desc) .alert_seen = CRT_TLSFAIL_ALERT_AFTER_FINISHED, .alert = (desc)

static void check_rows(const struct row *rows, size_t n)
{
    for (size_t i = 0; i != n; ++i) {
        crt_tlsfail_t got = crt_tlsfail_classify(&rows[i].facts);
        if (got != rows[i].want)
            fail_msg("%s: got %s, want %s", rows[i].what, crt_tlsfail_slug(got), crt_tlsfail_slug(rows[i].want));
    }
}

static void test_server(void **state)
{
    (void)state;
#define SERVER .observer = CRT_TLSFAIL_SERVER
    static const struct row rows[] = {
        {"sent certificate_required", {SERVER, SENT(SSL_AD_CERTIFICATE_REQUIRED)}, CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"sent protocol_version", {SERVER, SENT(SSL_AD_PROTOCOL_VERSION)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"sent handshake_failure", {SERVER, SENT(SSL_AD_HANDSHAKE_FAILURE)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"sent insufficient_security", {SERVER, SENT(SSL_AD_INSUFFICIENT_SECURITY)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"sent decode_error", {SERVER, SENT(SSL_AD_DECODE_ERROR)}, CRT_TLSFAIL_HANDSHAKE_FAILED},
        {"the alert outranks the reason", {SERVER, SENT(SSL_AD_DECODE_ERROR), .ssl_reason = SSL_R_HTTP_REQUEST},
         CRT_TLSFAIL_HANDSHAKE_FAILED},
        {"an HTTP request", {SERVER, .ssl_reason = SSL_R_HTTP_REQUEST}, CRT_TLSFAIL_PLAIN_HTTP},
        {"an HTTPS proxy request", {SERVER, .ssl_reason = SSL_R_HTTPS_PROXY_REQUEST}, CRT_TLSFAIL_PLAIN_HTTP},
        {"wrong version number", {SERVER, .ssl_reason = SSL_R_WRONG_VERSION_NUMBER}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"unsupported protocol", {SERVER, .ssl_reason = SSL_R_UNSUPPORTED_PROTOCOL}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no shared cipher", {SERVER, .ssl_reason = SSL_R_NO_SHARED_CIPHER}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no shared groups", {SERVER, .ssl_reason = SSL_R_NO_SHARED_GROUPS}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"another reason", {SERVER, .ssl_reason = SSL_R_BAD_PACKET}, CRT_TLSFAIL_HANDSHAKE_FAILED},
        {"a received alert is not the server's reason", {SERVER, RECEIVED(SSL_AD_CERTIFICATE_REQUIRED)},
         CRT_TLSFAIL_HANDSHAKE_FAILED},
        {"a server does not read verify_err", {SERVER, .verify_err = CRT_E_EXPIRED}, CRT_TLSFAIL_HANDSHAKE_FAILED},
        {"nothing seen", {SERVER}, CRT_TLSFAIL_HANDSHAKE_FAILED},
    };
#undef SERVER
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_client(void **state)
{
    (void)state;
#define CLIENT .observer = CRT_TLSFAIL_CLIENT, .cert_sent = 1
    static const struct row rows[] = {
        {"expired", {CLIENT, .verify_err = CRT_E_EXPIRED}, CRT_TLSFAIL_EXPIRED},
        {"not yet valid", {CLIENT, .verify_err = CRT_E_NOT_YET_VALID}, CRT_TLSFAIL_NOT_YET_VALID},
        {"untrusted root", {CLIENT, .verify_err = CRT_E_UNTRUSTED_ROOT}, CRT_TLSFAIL_UNTRUSTED_ROOT},
        {"missing intermediate", {CLIENT, .verify_err = CRT_E_MISSING_INTERMEDIATE},
         CRT_TLSFAIL_MISSING_INTERMEDIATE},
        {"identity mismatch", {CLIENT, .verify_err = CRT_E_IDENTITY_MISMATCH}, CRT_TLSFAIL_NAME_MISMATCH},
        {"no URI SAN", {CLIENT, .verify_err = CRT_E_NO_URI_SAN}, CRT_TLSFAIL_NAME_MISMATCH},
        {"CA:TRUE leaf", {CLIENT, .verify_err = CRT_E_NOT_A_LEAF}, CRT_TLSFAIL_BAD_CERTIFICATE},
        {"out of memory while verifying", {CLIENT, .verify_err = CRT_E_NOMEM}, CRT_TLSFAIL_BAD_CERTIFICATE},
        {"the verdict outranks the rest",
         {CLIENT, .verify_err = CRT_E_EXPIRED, .ssl_reason = SSL_R_WRONG_VERSION_NUMBER}, CRT_TLSFAIL_EXPIRED},
        {"certificate_required after Finished", {CLIENT, AFTER_FINISHED(SSL_AD_CERTIFICATE_REQUIRED)},
         CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"unknown_ca after Finished", {CLIENT, AFTER_FINISHED(SSL_AD_UNKNOWN_CA)}, CRT_TLSFAIL_CLIENT_CERT_REJECTED},
        {"any alert after Finished", {CLIENT, AFTER_FINISHED(SSL_AD_HANDSHAKE_FAILURE)},
         CRT_TLSFAIL_CLIENT_CERT_REJECTED},
        {"wrong version number", {CLIENT, .ssl_reason = SSL_R_WRONG_VERSION_NUMBER}, CRT_TLSFAIL_PLAIN_HTTP},
        {"packet length too long", {CLIENT, .ssl_reason = SSL_R_PACKET_LENGTH_TOO_LONG}, CRT_TLSFAIL_PLAIN_HTTP},
        {"the reason outranks the alert",
         {CLIENT, RECEIVED(SSL_AD_PROTOCOL_VERSION), .ssl_reason = SSL_R_WRONG_VERSION_NUMBER},
         CRT_TLSFAIL_PLAIN_HTTP},
        {"received protocol_version", {CLIENT, RECEIVED(SSL_AD_PROTOCOL_VERSION)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"received handshake_failure", {CLIENT, RECEIVED(SSL_AD_HANDSHAKE_FAILURE)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"received insufficient_security", {CLIENT, RECEIVED(SSL_AD_INSUFFICIENT_SECURITY)},
         CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"received certificate_required during the handshake", {CLIENT, RECEIVED(SSL_AD_CERTIFICATE_REQUIRED)},
         CRT_TLSFAIL_TLS_ERROR},
        {"a sent alert", {CLIENT, SENT(SSL_AD_PROTOCOL_VERSION)}, CRT_TLSFAIL_TLS_ERROR},
        {"unsupported protocol", {CLIENT, .ssl_reason = SSL_R_UNSUPPORTED_PROTOCOL}, CRT_TLSFAIL_TLS_ERROR},
        {"nothing seen", {CLIENT}, CRT_TLSFAIL_TLS_ERROR},
    };
#undef CLIENT
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_diagnose(void **state)
{
    (void)state;
#define DIAG .observer = CRT_TLSFAIL_DIAGNOSE, .peer_answer = CRT_TLSFAIL_ANSWER_TLS
#define WITH_CERT DIAG, .cert_requested = 1, .cert_sent = 1
#define WITHOUT_CERT DIAG, .cert_requested = 1, .cert_sent = 0
    static const struct row rows[] = {
        {"expired", {DIAG, .verify_err = CRT_E_EXPIRED}, CRT_TLSFAIL_EXPIRED},
        {"bad SPIFFE ID", {DIAG, .verify_err = CRT_E_BAD_SPIFFE_ID}, CRT_TLSFAIL_NAME_MISMATCH},
        {"wrong key usage", {DIAG, .verify_err = CRT_E_WRONG_KEY_USAGE}, CRT_TLSFAIL_BAD_CERTIFICATE},
        {"the verdict outranks an HTTP answer",
         {.observer = CRT_TLSFAIL_DIAGNOSE, .verify_err = CRT_E_EXPIRED, .peer_answer = CRT_TLSFAIL_ANSWER_HTTP},
         CRT_TLSFAIL_EXPIRED},
        {"an HTTP answer", {.observer = CRT_TLSFAIL_DIAGNOSE, .peer_answer = CRT_TLSFAIL_ANSWER_HTTP},
         CRT_TLSFAIL_PLAIN_HTTP},
        {"certificate_required", {WITHOUT_CERT, RECEIVED(SSL_AD_CERTIFICATE_REQUIRED)},
         CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"handshake_failure without our certificate", {WITHOUT_CERT, RECEIVED(SSL_AD_HANDSHAKE_FAILURE)},
         CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"handshake_failure with our certificate", {WITH_CERT, RECEIVED(SSL_AD_HANDSHAKE_FAILURE)},
         CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"handshake_failure, no certificate asked", {DIAG, RECEIVED(SSL_AD_HANDSHAKE_FAILURE)},
         CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"protocol_version", {DIAG, RECEIVED(SSL_AD_PROTOCOL_VERSION)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"insufficient_security", {DIAG, RECEIVED(SSL_AD_INSUFFICIENT_SECURITY)}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"unknown_ca after Finished, with our certificate", {WITH_CERT, AFTER_FINISHED(SSL_AD_UNKNOWN_CA)},
         CRT_TLSFAIL_CLIENT_CERT_REJECTED},
        {"bad_certificate with our certificate", {WITH_CERT, RECEIVED(SSL_AD_BAD_CERTIFICATE)},
         CRT_TLSFAIL_CLIENT_CERT_REJECTED},
        {"certificate_expired with our certificate", {WITH_CERT, RECEIVED(SSL_AD_CERTIFICATE_EXPIRED)},
         CRT_TLSFAIL_CLIENT_CERT_REJECTED},
        {"access_denied without our certificate", {WITHOUT_CERT, RECEIVED(SSL_AD_ACCESS_DENIED)},
         CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"decrypt_error without our certificate", {DIAG, RECEIVED(SSL_AD_DECRYPT_ERROR)},
         CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"unsupported protocol", {DIAG, .ssl_reason = SSL_R_UNSUPPORTED_PROTOCOL}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no protocols available", {DIAG, .ssl_reason = SSL_R_NO_PROTOCOLS_AVAILABLE}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"version too low", {DIAG, .ssl_reason = SSL_R_VERSION_TOO_LOW}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"wrong SSL version", {DIAG, .ssl_reason = SSL_R_WRONG_SSL_VERSION}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no shared cipher", {DIAG, .ssl_reason = SSL_R_NO_SHARED_CIPHER}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no ciphers available", {DIAG, .ssl_reason = SSL_R_NO_CIPHERS_AVAILABLE}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"no suitable key share", {DIAG, .ssl_reason = SSL_R_NO_SUITABLE_KEY_SHARE}, CRT_TLSFAIL_NO_SHARED_CIPHER},
        {"an unread alert falls through to the reason", {DIAG, RECEIVED(SSL_AD_DECODE_ERROR)}, CRT_TLSFAIL_TLS_ERROR},
        {"a non-TLS answer",
         {.observer = CRT_TLSFAIL_DIAGNOSE, .peer_answer = CRT_TLSFAIL_ANSWER_OTHER, .cert_requested = 1},
         CRT_TLSFAIL_TLS_ERROR},
        {"a hang-up after asking for our certificate", {WITHOUT_CERT}, CRT_TLSFAIL_CLIENT_CERT_REQUIRED},
        {"a hang-up with our certificate sent", {WITH_CERT}, CRT_TLSFAIL_TLS_ERROR},
        {"nothing arrived", {.observer = CRT_TLSFAIL_DIAGNOSE, .peer_answer = CRT_TLSFAIL_ANSWER_NONE},
         CRT_TLSFAIL_TLS_ERROR},
        {"wrong version number is not read as HTTP here", {DIAG, .ssl_reason = SSL_R_WRONG_VERSION_NUMBER},
         CRT_TLSFAIL_TLS_ERROR},
    };
#undef WITHOUT_CERT
#undef WITH_CERT
#undef DIAG
    check_rows(rows, sizeof(rows) / sizeof(rows[0]));
}

static void test_unknown_input_is_the_generic_failure(void **state)
{
    (void)state;
    crt_tlsfail_facts_t facts = {.observer = (crt_tlsfail_observer_t)42, .verify_err = CRT_E_EXPIRED,
                                 .ssl_reason = SSL_R_HTTP_REQUEST};
    assert_int_equal(crt_tlsfail_classify(&facts), CRT_TLSFAIL_HANDSHAKE_FAILED);
    facts = (crt_tlsfail_facts_t){.observer = CRT_TLSFAIL_SERVER, SENT(255), .ssl_reason = 0x7fff};
    assert_int_equal(crt_tlsfail_classify(&facts), CRT_TLSFAIL_HANDSHAKE_FAILED);
    facts.observer = CRT_TLSFAIL_CLIENT;
    facts.alert_seen = CRT_TLSFAIL_ALERT_RECEIVED;
    assert_int_equal(crt_tlsfail_classify(&facts), CRT_TLSFAIL_TLS_ERROR);
    facts.observer = CRT_TLSFAIL_DIAGNOSE;
    assert_int_equal(crt_tlsfail_classify(&facts), CRT_TLSFAIL_TLS_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slugs_keep_the_metric_order),
        cmocka_unit_test(test_slugs_agree_with_their_sources),
        cmocka_unit_test(test_from_slug),
        cmocka_unit_test(test_diag_of_each_name),
        cmocka_unit_test(test_server),
        cmocka_unit_test(test_client),
        cmocka_unit_test(test_diagnose),
        cmocka_unit_test(test_unknown_input_is_the_generic_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
