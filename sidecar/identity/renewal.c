/* Certificates from seam-ca: jobs on the thread pool, results published on the main loop. */
#include "sidecar/identity/renewal.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/csr.h"
#include "certs/error.h"
#include "certs/info.h"
#include "certs/pem.h"
#include "common/log.h"
#include "common/wait.h"
#include "sidecar/identity/ca_client.h"
#include "sidecar/identity/token.h"

typedef enum { JOB_SIGN, JOB_BUNDLE } job_kind_t;

/* One exchange with seam-ca. Inputs are set on the main loop; the pool thread fills the outputs. */
typedef struct st_renewal_job_t {
    uv_work_t req;
    sc_renewal_t *r;
    job_kind_t kind;
    /* inputs (the config and r's IDs are immutable while the process runs) */
    const sc_config_t *cfg;
    sc_tls_t *current; /* a reference, or NULL before the first certificate */
    time_t now;
    /* outputs */
    sc_tls_t *fresh;          /* a reference to publish, or NULL */
    sc_ca_failure_t failure;  /* SC_CA_OK, or why it failed */
    const char *credential;   /* "certificate" or "token" (sign jobs) */
    int unchanged;            /* bundle job: same roots as now */
    int own_chain_untrusted;  /* bundle job: the new roots do not cover the current certificate */
    char detail[SC_RENEWAL_DETAIL_MAX];
} renewal_job_t;

static void schedule_sign(sc_renewal_t *r);
static void on_job_done(uv_work_t *req, int status);

/* The roots that may vouch for seam-ca: --ca-bundle (re-read, operators update it) plus the current mesh bundle. */
static int ca_trust(renewal_job_t *job, crt_bundle_t **out)
{
    char *pem = NULL, detail[256];
    size_t len = 0;
    STACK_OF(X509) *roots = NULL;
    int rc, ret = -1;

    if (crt_file_read(job->cfg->ca_bundle, CRT_FILE_MAX, &pem, &len) != 0) {
        snprintf(job->detail, sizeof(job->detail), "--ca-bundle %s: cannot read the file", job->cfg->ca_bundle);
        return -1;
    }
    if ((rc = crt_pem_read_certs(pem, len, &roots, detail, sizeof(detail))) != 0) {
        snprintf(job->detail, sizeof(job->detail), "--ca-bundle %s: %s %s", job->cfg->ca_bundle,
                 crt_error_message(rc), detail);
        goto Exit;
    }
    if (job->current != NULL) {
        STACK_OF(X509) *mesh = crt_bundle_roots(job->current->bundle);
        for (int i = 0; i < sk_X509_num(mesh); ++i) {
            X509 *c = sk_X509_value(mesh, i);
            if (X509_up_ref(c) != 1 || sk_X509_push(roots, c) == 0) {
                X509_free(c);
                snprintf(job->detail, sizeof(job->detail), "out of memory");
                goto Exit;
            }
        }
    }
    if (crt_bundle_from_certs(roots, out) != 0) {
        snprintf(job->detail, sizeof(job->detail), "--ca-bundle %s: holds no usable root", job->cfg->ca_bundle);
        goto Exit;
    }
    ret = 0;
Exit:
    free(pem);
    sk_X509_pop_free(roots, X509_free);
    return ret;
}

/* Issuance or renewal: a new key, a CSR, the current certificate as credential (else the token), checks, a snapshot. */
static void run_sign(renewal_job_t *job, crt_bundle_t *trust)
{
    const sc_renewal_t *r = job->r;
    sc_ca_endpoint_t ep = {.url = job->cfg->ca_url, .trust = trust, .ca_id = r->ca_id, .now = job->now};
    sc_tls_parts_t current = {0};
    sc_ca_result_t res = {0};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    crt_bundle_t *bundle = NULL;
    char *csr = NULL, *token = NULL, err[SC_RENEWAL_DETAIL_MAX], first[SC_RENEWAL_DETAIL_MAX] = "";
    size_t csr_len;

    job->failure = SC_CA_BAD_RESPONSE;
    if (crt_key_generate(&key) != 0 || crt_csr_create(key, r->spiffe_id, &req) != 0 ||
        crt_csr_to_pem(req, &csr, &csr_len) != 0) {
        snprintf(job->detail, sizeof(job->detail), "cannot make a key and CSR for %s", r->spiffe_id);
        goto Exit;
    }
    job->failure = SC_CA_REFUSED;
    if (job->current != NULL && job->current->leaf.not_after > job->now && sc_tls_parts_of(job->current, &current) == 0) {
        ep.cert = sk_X509_value(current.chain, 0);
        ep.chain = current.chain;
        ep.key = current.key;
        job->credential = "certificate";
        /* only a refused credential sends us to the token; 429 or 5xx mean "later" */
        if ((job->failure = sc_ca_sign(&ep, csr, 0, &res)) != SC_CA_REFUSED || (res.status != 401 && res.status != 403))
            goto Issued;
        snprintf(first, sizeof(first), "renewal with the current certificate refused (%s); ", res.detail);
        sc_ca_result_clear(&res);
        ep.cert = NULL, ep.chain = NULL, ep.key = NULL;
    }
    job->credential = "token";
    if (sc_token_read(job->cfg->token_file, &token, err, sizeof(err)) != 0) {
        snprintf(job->detail, sizeof(job->detail), "%s%s", first, err);
        job->failure = SC_CA_REFUSED;
        goto Exit;
    }
    ep.bearer = token;
    job->failure = sc_ca_sign(&ep, csr, 0, &res);
Issued:
    if (job->failure != SC_CA_OK) {
        snprintf(job->detail, sizeof(job->detail), "%s%s", first, res.detail);
        goto Exit;
    }
    job->failure = SC_CA_BAD_RESPONSE;
    if (sc_ca_check_issued(&res, r->spiffe_id, key, job->now, err, sizeof(err)) != 0) {
        snprintf(job->detail, sizeof(job->detail), "%s", err);
        goto Exit;
    }
    if (crt_bundle_from_certs(res.roots, &bundle) != 0) {
        snprintf(job->detail, sizeof(job->detail), "the CA's bundle holds no usable root");
        goto Exit;
    }
    sc_tls_parts_t parts = {res.chain, key, bundle, "the chain from seam-ca", "the new key", "the bundle from seam-ca"};
    if (sc_tls_build(&parts, job->r->host.hooks, job->now, &job->fresh, err, sizeof(err)) != 0) {
        snprintf(job->detail, sizeof(job->detail), "%s", err);
        goto Exit;
    }
    job->failure = SC_CA_OK;
Exit:
    sc_token_free(token);
    sc_tls_parts_clear(&current);
    sc_ca_result_clear(&res);
    if (bundle != NULL)
        crt_bundle_release(bundle);
    X509_REQ_free(req);
    free(csr);
    EVP_PKEY_free(key); /* the snapshot holds its own reference; nothing else keeps the key */
}

/* GET /v1/bundle; a changed bundle becomes a new snapshot around the current certificate. */
static void run_bundle(renewal_job_t *job, crt_bundle_t *trust)
{
    sc_ca_endpoint_t ep = {.url = job->cfg->ca_url, .trust = trust, .ca_id = job->r->ca_id, .now = job->now};
    sc_ca_result_t res = {0};
    sc_tls_parts_t parts = {0};
    crt_bundle_t *bundle = NULL;
    sc_tls_t *fresh = NULL;
    char err[SC_RENEWAL_DETAIL_MAX];

    if ((job->failure = sc_ca_get_bundle(&ep, &res)) != SC_CA_OK) {
        snprintf(job->detail, sizeof(job->detail), "%s", res.detail);
        goto Exit;
    }
    job->failure = SC_CA_BAD_RESPONSE;
    if (crt_bundle_from_certs(res.roots, &bundle) != 0) {
        snprintf(job->detail, sizeof(job->detail), "the CA's bundle holds no usable root");
        goto Exit;
    }
    if (job->current == NULL || job->current->leaf.not_after <= job->now) {
        job->unchanged = 1; /* nothing valid to combine it with: the next issuance brings the bundle */
        job->failure = SC_CA_OK;
        goto Exit;
    }
    if (sc_tls_parts_of(job->current, &parts) != 0) {
        snprintf(job->detail, sizeof(job->detail), "out of memory");
        goto Exit;
    }
    crt_bundle_release(parts.bundle);
    parts.bundle = bundle;
    bundle = NULL;
    parts.chain_source = "the current certificate";
    parts.key_source = "the current key";
    parts.bundle_source = "the bundle from seam-ca";
    job->failure = SC_CA_OK;
    if (sc_tls_build(&parts, job->r->host.hooks, job->now, &fresh, err, sizeof(err)) != 0) {
        /* a root rotation finished before this sidecar renewed: renew, the reply carries both */
        job->own_chain_untrusted = 1;
        snprintf(job->detail, sizeof(job->detail), "%s", err);
        goto Exit;
    }
    if (strcmp(fresh->bundle_pem, job->current->bundle_pem) == 0) {
        job->unchanged = 1;
        sc_tls_release(fresh);
    } else {
        job->fresh = fresh;
    }
Exit:
    sc_tls_parts_clear(&parts);
    sc_ca_result_clear(&res);
    if (bundle != NULL)
        crt_bundle_release(bundle);
}

static void on_job_work(uv_work_t *req)
{
    renewal_job_t *job = req->data;
    crt_bundle_t *trust = NULL;

    if (ca_trust(job, &trust) != 0) {
        job->failure = SC_CA_TLS;
        return;
    }
    if (job->kind == JOB_SIGN)
        run_sign(job, trust);
    else
        run_bundle(job, trust);
    crt_bundle_release(trust);
}

static void on_sign_timer(uv_timer_t *timer);

/* A job that could not even start: the log line says "retrying later", so a renewal is planned (bundle polls repeat anyway). */
static void retry_later(sc_renewal_t *r, job_kind_t kind, const char *why)
{
    cmn_log_error("seam-ca: %s; retrying in %d ms", why, SC_ROTATION_BACKOFF_FIRST_MS);
    if (kind == JOB_SIGN)
        uv_timer_start(&r->sign_timer, on_sign_timer, SC_ROTATION_BACKOFF_FIRST_MS, 0);
}

static void start_job(sc_renewal_t *r, job_kind_t kind)
{
    renewal_job_t *job = calloc(1, sizeof(*job));

    if (job == NULL) {
        retry_later(r, kind, "out of memory");
        return;
    }
    job->req.data = job;
    job->r = r;
    job->kind = kind;
    job->cfg = r->host.cfg;
    job->now = time(NULL);
    if ((job->current = *r->host.current) != NULL)
        sc_tls_addref(job->current);
    r->busy = 1;
    if (kind == JOB_SIGN)
        uv_timer_stop(&r->sign_timer);
    if (uv_queue_work(r->host.loop, &job->req, on_job_work, on_job_done) != 0) {
        r->busy = 0;
        sc_tls_release(job->current);
        free(job);
        retry_later(r, kind, "cannot queue the request");
    }
}

static uint32_t random_u32(void)
{
    uint32_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
        v = (uint32_t)cmn_monotonic_ms();
    return v;
}

static void on_expiry_timer(uv_timer_t *timer)
{
    sc_renewal_t *r = timer->data;
    const sc_tls_t *tls = *r->host.current;
    char until[32];

    if (tls == NULL || tls->leaf.not_after > time(NULL))
        return;
    crt_format_time(tls->leaf.not_after, until, sizeof(until));
    cmn_log_error("certificate expired at %s and could not be renewed (%s); /ready answers 503 and new mesh "
                  "connections fail until seam-ca issues one",
                  until, r->last_error[0] != '\0' ? r->last_error : "no attempt finished yet");
}

static void sign_done(sc_renewal_t *r, renewal_job_t *job)
{
    const sc_tls_t *current = *r->host.current;
    time_t now = time(NULL);
    char until[32], next[32];

    if (job->failure == SC_CA_OK) {
        sc_tls_t *fresh = job->fresh;
        const char *old_serial = current != NULL ? current->leaf.serial : NULL;
        char previous[sizeof(fresh->leaf.serial) + 8];
        snprintf(previous, sizeof(previous), "%s", old_serial != NULL ? old_serial : "");
        job->fresh = NULL;
        /* the lifetime counts from now: notBefore is backdated for clock skew, which would pull short-lived
           certificates' half-life into the past */
        time_t from = fresh->leaf.not_before > now ? fresh->leaf.not_before : now;
        sc_rotation_on_success(&r->rot, from, fresh->leaf.not_after, now, random_u32());
        r->last_error[0] = '\0';
        ++*r->host.rotations_ok;
        crt_format_time(fresh->leaf.not_after, until, sizeof(until));
        crt_format_time(r->rot.due, next, sizeof(next));
        if (previous[0] == '\0')
            cmn_log_info("certificate issued by seam-ca (credential: %s): %s serial %s valid until %s; renewal at %s",
                         job->credential, fresh->spiffe_id, fresh->leaf.serial, until, next);
        else
            cmn_log_info("certificate renewed by seam-ca (credential: %s): %s serial %s -> %s valid until %s; next "
                         "renewal at %s",
                         job->credential, fresh->spiffe_id, previous, fresh->leaf.serial, until, next);
        r->host.publish(r->host.data, fresh);
        /* at expiry, and every minute while no successor arrives, the log says so */
        uv_timer_start(&r->expiry_timer, on_expiry_timer, (uint64_t)(fresh->leaf.not_after - now) * 1000 + 100,
                       SC_ROTATION_EXPIRED_LOG_MS);
        return;
    }
    int64_t wait = sc_rotation_on_failure(&r->rot, now, cmn_monotonic_ms());
    ++*r->host.rotations_failed;
    snprintf(r->last_error, sizeof(r->last_error), "%s: %s", sc_ca_failure_name(job->failure), job->detail);
    cmn_log_error("certificate %s failed (%s); retry %u in %lld ms", current == NULL ? "request" : "renewal",
                  r->last_error, r->rot.failures, (long long)wait);
}

static void bundle_done(sc_renewal_t *r, renewal_job_t *job)
{
    if (job->failure != SC_CA_OK) {
        /* one line per outage, not one per poll */
        if (r->bundle_failures++ == 0)
            cmn_log_warn("trust bundle refresh from seam-ca failed (%s: %s); the current bundle stays",
                         sc_ca_failure_name(job->failure), job->detail);
        return;
    }
    if (r->bundle_failures != 0)
        cmn_log_info("trust bundle refresh from seam-ca works again after %llu failure(s)",
                     (unsigned long long)r->bundle_failures);
    r->bundle_failures = 0;
    r->bundle_refreshed_at = time(NULL);
    if (job->own_chain_untrusted) {
        cmn_log_warn("seam-ca's trust bundle no longer covers this sidecar's certificate (%s); renewing now",
                     job->detail);
        if (r->rot.failures == 0) /* a failing renewal keeps its backoff */
            r->sign_wanted = 1;
        return;
    }
    if (job->unchanged)
        return;
    sc_tls_t *fresh = job->fresh;
    job->fresh = NULL;
    cmn_log_info("trust bundle updated from seam-ca: %d root(s)", sk_X509_num(crt_bundle_roots(fresh->bundle)));
    r->host.publish(r->host.data, fresh);
}

static void on_job_done(uv_work_t *req, int status)
{
    renewal_job_t *job = req->data;
    sc_renewal_t *r = job->r;

    r->busy = 0;
    if (!r->stopped && status == 0) {
        if (job->kind == JOB_SIGN)
            sign_done(r, job);
        else
            bundle_done(r, job);
    }
    sc_tls_release(job->fresh);
    sc_tls_release(job->current);
    free(job);
    if (r->stopped)
        return;
    if (r->sign_wanted) {
        r->sign_wanted = 0;
        start_job(r, JOB_SIGN);
    } else if (r->bundle_wanted) {
        r->bundle_wanted = 0;
        start_job(r, JOB_BUNDLE);
    } else {
        schedule_sign(r);
    }
}

static void on_sign_timer(uv_timer_t *timer)
{
    sc_renewal_t *r = timer->data;
    if (r->busy)
        r->sign_wanted = 1;
    else
        start_job(r, JOB_SIGN);
}

static void on_bundle_timer(uv_timer_t *timer)
{
    sc_renewal_t *r = timer->data;
    if (*r->host.current == NULL)
        return; /* the first certificate brings a bundle */
    if (r->busy)
        r->bundle_wanted = 1;
    else
        start_job(r, JOB_BUNDLE);
}

static void schedule_sign(sc_renewal_t *r)
{
    int64_t wait = sc_rotation_wait_ms(&r->rot, time(NULL), cmn_monotonic_ms());
    uv_timer_start(&r->sign_timer, on_sign_timer, (uint64_t)(wait > 0 ? wait : 0), 0);
}

time_t sc_renewal_next_attempt(const sc_renewal_t *r)
{
    if (r->busy)
        return 0;
    int64_t wait = sc_rotation_wait_ms(&r->rot, time(NULL), cmn_monotonic_ms());
    return time(NULL) + (time_t)((wait + 999) / 1000);
}

void sc_renewal_force(sc_renewal_t *r)
{
    if (r->stopped)
        return;
    if (r->busy)
        r->sign_wanted = 1;
    else
        start_job(r, JOB_SIGN);
}

int sc_renewal_start(sc_renewal_t *r, const sc_renewal_host_t *host, char *err, size_t err_cap)
{
    const sc_config_t *cfg = host->cfg;
    crt_spiffe_id_t parsed;
    char *token = NULL, why[512];

    memset(r, 0, sizeof(*r));
    r->host = *host;
    if (cfg->spiffe_id[0] != '\0') {
        snprintf(r->spiffe_id, sizeof(r->spiffe_id), "%s", cfg->spiffe_id);
    } else {
        const char *td = cfg->trust_domain[0] != '\0' ? cfg->trust_domain : SC_DEFAULT_TRUST_DOMAIN;
        if (sc_token_read(cfg->token_file, &token, err, err_cap) != 0)
            return -1;
        int rc = sc_token_spiffe_id(token, td, r->spiffe_id, sizeof(r->spiffe_id), why, sizeof(why));
        sc_token_free(token);
        if (rc != 0) {
            snprintf(err, err_cap, "--token-file %s: %s", cfg->token_file, why);
            return -1;
        }
    }
    if (crt_spiffe_parse_workload(r->spiffe_id, strlen(r->spiffe_id), &parsed) != 0) {
        snprintf(err, err_cap, "%s is not a SPIFFE ID", r->spiffe_id);
        return -1;
    }
    sc_ca_identity_for(parsed.trust_domain, parsed.trust_domain_len, r->ca_id, sizeof(r->ca_id));
    uv_timer_init(host->loop, &r->sign_timer);
    r->sign_timer.data = r;
    uv_timer_init(host->loop, &r->bundle_timer);
    r->bundle_timer.data = r;
    uv_timer_init(host->loop, &r->expiry_timer);
    r->expiry_timer.data = r;
    uv_timer_start(&r->bundle_timer, on_bundle_timer, (uint64_t)cfg->bundle_refresh_ms, (uint64_t)cfg->bundle_refresh_ms);
    cmn_log_info("asking seam-ca at %s for %s (expecting the CA to be %s)", cfg->ca_url, r->spiffe_id, r->ca_id);
    start_job(r, JOB_SIGN);
    return 0;
}

void sc_renewal_stop(sc_renewal_t *r)
{
    if (r->host.loop == NULL || r->stopped)
        return;
    r->stopped = 1;
    uv_close((uv_handle_t *)&r->sign_timer, NULL);
    uv_close((uv_handle_t *)&r->bundle_timer, NULL);
    uv_close((uv_handle_t *)&r->expiry_timer, NULL);
}
