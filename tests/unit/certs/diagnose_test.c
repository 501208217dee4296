/* Tests of certs/diagnose.c's vocabulary (the network paths are covered by integration tests). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "certs/diagnose.h"
#include "certs/error.h"

static void test_slugs_are_the_design_categories(void **state)
{
    (void)state;
    static const char *const design[] = {"ok", "plain-http", "expired", "not-yet-valid", "name-mismatch",
                                         "missing-intermediate", "untrusted-root", "no-shared-cipher",
                                         "client-cert-required", "connection-refused", "timeout"};
    for (size_t i = 0; i != sizeof(design) / sizeof(design[0]); ++i) {
        int found = 0;
        for (int d = 0; d < CRT__DIAG_END; ++d)
            found |= strcmp(crt_diag_slug((crt_diag_t)d), design[i]) == 0;
        if (!found)
            fail_msg("category %s missing", design[i]);
    }
    for (int d = 0; d < CRT__DIAG_END; ++d) {
        assert_true(strlen(crt_diag_cause((crt_diag_t)d)) > 10);
        assert_true(strlen(crt_diag_fix((crt_diag_t)d)) > 10);
    }
    assert_string_equal(crt_diag_slug(CRT__DIAG_END), "unknown");
}

static void test_verify_error_mapping(void **state)
{
    (void)state;
    static const struct {
        int err;
        crt_diag_t want;
    } rows[] = {
        {0, CRT_DIAG_OK},
        {CRT_E_EXPIRED, CRT_DIAG_EXPIRED},
        {CRT_E_NOT_YET_VALID, CRT_DIAG_NOT_YET_VALID},
        {CRT_E_UNTRUSTED_ROOT, CRT_DIAG_UNTRUSTED_ROOT},
        {CRT_E_MISSING_INTERMEDIATE, CRT_DIAG_MISSING_INTERMEDIATE},
        {CRT_E_IDENTITY_MISMATCH, CRT_DIAG_NAME_MISMATCH},
        {CRT_E_NO_URI_SAN, CRT_DIAG_NAME_MISMATCH},
        {CRT_E_SEVERAL_URI_SANS, CRT_DIAG_NAME_MISMATCH},
        {CRT_E_BAD_SPIFFE_ID, CRT_DIAG_NAME_MISMATCH},
        {CRT_E_NAME_CONSTRAINT, CRT_DIAG_NAME_MISMATCH},
        {CRT_E_NOT_A_LEAF, CRT_DIAG_BAD_CERTIFICATE},
        {CRT_E_WRONG_KEY_USAGE, CRT_DIAG_BAD_CERTIFICATE},
        {CRT_E_BAD_SIGNATURE, CRT_DIAG_BAD_CERTIFICATE},
        {CRT_E_INVALID_CHAIN, CRT_DIAG_BAD_CERTIFICATE},
    };
    for (size_t i = 0; i != sizeof(rows) / sizeof(rows[0]); ++i)
        assert_int_equal(crt_diag_from_verify_error(rows[i].err), rows[i].want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slugs_are_the_design_categories),
        cmocka_unit_test(test_verify_error_mapping),
    };
    return cmocka_run_group_tests_name("certs/diagnose", tests, NULL, NULL);
}
