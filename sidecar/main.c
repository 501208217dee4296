/* seam-sidecar: parses flags and runs the sidecar. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/probe.h"
#include "common/version.h"
#include "sidecar/policy/config.h"
#include "sidecar/sidecar.h"

static const char probe_usage[] =
    "usage: seam-sidecar probe [--admin 127.0.0.1:15000] [PATH]\n"
    "GETs PATH (default /ready) from the admin endpoint; exit 0 on 200, 1 otherwise.\n"
    "Kubernetes exec probes run it inside the pod, where the loopback admin endpoint is reachable.\n";

/* `seam-sidecar probe`: what an exec readiness/liveness probe runs. */
static int run_probe(int argc, char **argv)
{
    const char *admin = "127.0.0.1:15000", *path = "/ready";
    char err[512];

    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--help") == 0) {
            fputs(probe_usage, stdout);
            return 0;
        } else if (strncmp(argv[i], "--admin=", 8) == 0) {
            admin = argv[i] + 8;
        } else if (strcmp(argv[i], "--admin") == 0 && i + 1 < argc) {
            admin = argv[++i];
        } else if (argv[i][0] == '/' && i == argc - 1) {
            path = argv[i];
        } else {
            cmn_log_error("probe: unexpected argument '%s' (see probe --help)", argv[i]);
            return 2;
        }
    }
    int status = cmn_probe_get(admin, path, CMN_PROBE_TIMEOUT_MS, err, sizeof(err));
    if (status == 200)
        return 0;
    if (status < 0)
        cmn_log_error("probe: %s", err);
    else
        cmn_log_error("probe: %s%s answered %d", admin, path, status);
    return 1;
}

int main(int argc, char **argv)
{
    static sc_config_t cfg;
    char err[1024];

    /* glibc gives a worker thread's freed memory back to the kernel as soon as 128 KB are free at the top of its
       arena, and serves 128 KB or more with mmap: a bulk transfer's buffers (a tunnel's, or a large body's), freed
       and taken again on every write, then cost an madvise or munmap and page faults each time (the tunnel ran at
       a third of its speed). Memory stays bounded by the buffers' own limits either way. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    cmn_log_init("seam-sidecar");
    if (argc >= 2 && strcmp(argv[1], "probe") == 0)
        return run_probe(argc - 1, argv + 1);
    sc_config_defaults(&cfg);
    switch (sc_config_parse(&cfg, argc, argv, err, sizeof(err))) {
    case SC_CONFIG_HELP:
        fputs(sc_config_usage, stdout);
        return 0;
    case SC_CONFIG_VERSION:
        printf("seam-sidecar %s\n", SEAM_VERSION);
        return 0;
    case SC_CONFIG_OK:
        break;
    default:
        cmn_log_error("%s (see --help)", err);
        return 2;
    }
    if (sc_config_check(&cfg, err, sizeof(err)) != 0) {
        cmn_log_error("%s", err);
        return 2;
    }
    return sc_sidecar_run(&cfg);
}
