/*
 * libFuzzer target for sidecar/policy/appprobe.c: the --app-probes table and the
 * judgement of the app's answer. No input crashes either; a table that
 * parses finds each of its own keys, and a judged status is a real one.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sidecar/policy/appprobe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    sc_app_probes_t probes;
    char err[512];
    if (sc_app_probes_parse(text, size, "fuzz", &probes, err, sizeof(err)) == 0) {
        for (size_t i = 0; i != probes.num; ++i) {
            const sc_app_probe_t *p = &probes.items[i];
            if (sc_app_probes_find(&probes, p->key, strlen(p->key)) != p || p->port == 0)
                abort();
            if (p->kind == SC_APP_PROBE_HTTP_GET &&
                (p->request == NULL || p->request_len < 4 || memcmp(p->request, "GET ", 4) != 0))
                abort();
        }
        sc_app_probes_dispose(&probes);
    } else if (err[0] == '\0' || strchr(err, '\n') != NULL) {
        abort(); /* a refusal is one line */
    }
    int status = 0;
    int rc = sc_app_probe_judge(text, size, &status);
    if (rc == 1 && (status < 100 || status > 999))
        abort();
    return 0;
}
