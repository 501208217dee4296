/* Tests control/error.c: every code has a unique slug, a message and an error status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "control/error.h"

static void test_vocabulary(void **state)
{
    (void)state;
    assert_string_equal(ca_error_slug(CA_OK), "ok");
    assert_int_equal(ca_error_status(CA_OK), 200);
    for (int a = CA__ERROR_FIRST + 1; a < CA__ERROR_END; ++a) {
        int status = ca_error_status(a);
        assert_true(status >= 400 && status <= 599);
        assert_true(strlen(ca_error_message(a)) > 0);
        assert_int_equal(ca_error_index(a), a - CA__ERROR_FIRST - 1);
        for (int b = a + 1; b < CA__ERROR_END; ++b)
            if (strcmp(ca_error_slug(a), ca_error_slug(b)) == 0)
                fail_msg("slug %s repeats", ca_error_slug(a));
    }
    assert_int_equal(ca_error_index(0), -1);
    assert_int_equal(ca_error_status(12345), 500);
    assert_int_equal(ca_error_status(CA_E_BODY_TOO_LARGE), 413);
    assert_int_equal(ca_error_status(CA_E_RATE_LIMITED), 429);
    assert_int_equal(ca_error_status(CA_E_TOO_MANY_BAD_CREDENTIALS), 429);
    assert_int_equal(ca_error_status(CA_E_RESERVED_IDENTITY), 403);
    assert_int_equal(ca_error_status(CA_E_IDENTITY_MISMATCH), 403);
    assert_int_equal(ca_error_status(CA_E_TOKEN_EXPIRED), 401);
    assert_int_equal(ca_error_status(CA_E_CSR_SANS), 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_vocabulary)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
