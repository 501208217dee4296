/* Tests control/tokens.c: the index (fold, find, compaction rule) and the file store (create / peek / consume). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/error.h"
#include "control/tokens.h"

#define WEB "spiffe://example.org/ns/default/sa/web"
#define DB "spiffe://example.org/ns/default/sa/db"
#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"
#define H3 "3333333333333333333333333333333333333333333333333333333333333333"
#define CREATE(h, exp) "{\"op\":\"create\",\"hash\":\"" h "\",\"spiffe_id\":\"" WEB "\",\"expires\":" #exp "}\n"
#define USE(h) "{\"op\":\"use\",\"hash\":\"" h "\",\"at\":5}\n"

/* ---- the index, pure ------------------------------------------------------------------ */

static const struct {
    const char *name;
    const char *text;
    const char *hash;
    ca_token_state_t state;
    size_t bad_lines;
    int check_at_100;
} fold_rows[] = {
    {"unknown in empty file", "", H1, CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
    {"created", CREATE(H1, 1000), H1, CA_TOKEN_UNUSED, 0, 0},
    {"other token", CREATE(H2, 1000), H1, CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
    {"created then used", CREATE(H1, 1000) USE(H1), H1, CA_TOKEN_USED, 0, CA_E_JOIN_TOKEN_USED},
    {"use before create still counts", USE(H1) CREATE(H1, 1000), H1, CA_TOKEN_USED, 0, CA_E_JOIN_TOKEN_USED},
    {"other token used", CREATE(H1, 1000) USE(H2), H1, CA_TOKEN_UNUSED, 0, 0},
    {"expired", CREATE(H1, 100), H1, CA_TOKEN_UNUSED, 0, CA_E_JOIN_TOKEN_EXPIRED},
    {"first create wins", CREATE(H1, 1000) CREATE(H1, 50), H1, CA_TOKEN_UNUSED, 0, 0},
    {"empty lines are not bad", "\n\n" CREATE(H1, 1000) "\n", H1, CA_TOKEN_UNUSED, 0, 0},
    {"corrupt lines skipped", "junk\n" CREATE(H1, 1000) "{\"op\":\"burn\"}\n{\"op\":\"use\",\"hash\":\"11", H1,
     CA_TOKEN_UNUSED, 3, 0},
    {"create without identity", "{\"op\":\"create\",\"hash\":\"" H1 "\",\"expires\":1000}\n", H1, CA_TOKEN_UNKNOWN, 1,
     CA_E_JOIN_TOKEN_UNKNOWN},
    /* A record whose hash no SHA-256 could have is not a record. */
    {"hash prefix is not the hash", "{\"op\":\"create\",\"hash\":\"1111\",\"spiffe_id\":\"" WEB "\",\"expires\":1000}\n",
     H1, CA_TOKEN_UNKNOWN, 1, CA_E_JOIN_TOKEN_UNKNOWN},
    {"uppercase hash is not ours", "{\"op\":\"create\",\"hash\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
                                   "\"spiffe_id\":\"" WEB "\",\"expires\":1000}\n",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", CA_TOKEN_UNKNOWN, 1, CA_E_JOIN_TOKEN_UNKNOWN},
    {"use without hash", "{\"op\":\"use\",\"at\":5}\n" CREATE(H1, 1000), H1, CA_TOKEN_UNUSED, 1, 0},
    {"lookup by a malformed hash", CREATE(H1, 1000), "11", CA_TOKEN_UNKNOWN, 0, CA_E_JOIN_TOKEN_UNKNOWN},
};

static void test_fold_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(fold_rows) / sizeof(fold_rows[0]); ++i) {
        ca_token_entry_t entry;
        assert_int_equal(ca_tokens_fold(fold_rows[i].text, strlen(fold_rows[i].text), fold_rows[i].hash, &entry), 0);
        if (entry.state != fold_rows[i].state || entry.bad_lines != fold_rows[i].bad_lines ||
            ca_token_check(&entry, 100) != fold_rows[i].check_at_100)
            fail_msg("%s: state %d bad %zu check %s", fold_rows[i].name, entry.state, entry.bad_lines,
                     ca_error_slug(ca_token_check(&entry, 100)));
        if (fold_rows[i].state == CA_TOKEN_UNUSED)
            assert_string_equal(entry.spiffe_id, WEB);
    }
}

/* Many tokens: every one is found after the table has grown, and a miss stays a miss. */
static void test_index_hit_miss_spent(void **state)
{
    ca_token_index_t *ix = ca_token_index_new();
    char line[512], hash[CA_TOKEN_HASH_HEX + 1], token[32];
    ca_token_entry_t entry;
    (void)state;
    assert_non_null(ix);
    for (int i = 0; i < 5000; ++i) {
        snprintf(token, sizeof(token), "seam-join-%d", i);
        ca_token_hash(token, strlen(token), hash);
        snprintf(line, sizeof(line), "{\"op\":\"create\",\"hash\":\"%s\",\"spiffe_id\":\"%s/%d\",\"expires\":1000}", hash,
                 WEB, i);
        assert_int_equal(ca_token_index_fold_line(ix, line, strlen(line)), 0);
        if (i % 2 == 0) {
            snprintf(line, sizeof(line), "{\"op\":\"use\",\"hash\":\"%s\",\"at\":1}", hash);
            assert_int_equal(ca_token_index_fold_line(ix, line, strlen(line)), 0);
        }
    }
    assert_int_equal(ca_token_index_size(ix), 5000);
    assert_int_equal(ca_token_index_bad_lines(ix), 0);
    for (int i = 0; i < 5000; ++i) {
        char want[128];
        snprintf(token, sizeof(token), "seam-join-%d", i);
        ca_token_hash(token, strlen(token), hash);
        ca_token_index_find(ix, hash, &entry);
        if (i % 2 == 0) {
            assert_int_equal(entry.state, CA_TOKEN_USED);
            assert_int_equal(ca_token_check(&entry, 100), CA_E_JOIN_TOKEN_USED);
        } else {
            snprintf(want, sizeof(want), "%s/%d", WEB, i);
            assert_int_equal(entry.state, CA_TOKEN_UNUSED);
            assert_string_equal(entry.spiffe_id, want);
            assert_int_equal(ca_token_check(&entry, 100), 0);
            assert_int_equal(ca_token_check(&entry, 1000), CA_E_JOIN_TOKEN_EXPIRED);
        }
    }
    ca_token_hash("seam-join-nope", 14, hash);
    ca_token_index_find(ix, hash, &entry);
    assert_int_equal(entry.state, CA_TOKEN_UNKNOWN);
    /* An over-long line (passed as NULL) is a bad line. */
    assert_int_equal(ca_token_index_fold_line(ix, NULL, 0), 0);
    assert_int_equal(ca_token_index_bad_lines(ix), 1);
    ca_token_index_free(ix);
}

/* Compaction's rule at now = 100: only the first create of a live token survives. */
static const struct {
    const char *name;
    const char *text;
    const char *kept; /* one character per line: 'k' kept, '-' dropped */
} keep_rows[] = {
    {"live token kept", CREATE(H1, 1000), "k"},
    {"spent token dropped, both records", CREATE(H1, 1000) USE(H1), "--"},
    {"expired token dropped", CREATE(H1, 100), "-"},
    {"revoked before create", USE(H1) CREATE(H1, 1000), "--"},
    {"second create dropped", CREATE(H1, 1000) CREATE(H1, 2000), "k-"},
    {"lone use dropped", USE(H2), "-"},
    {"bad lines dropped", "junk\n" CREATE(H1, 1000) "{\"op\":\"burn\"}\n", "-k-"},
    {"mixed", CREATE(H1, 1000) CREATE(H2, 1000) USE(H1) CREATE(H3, 99), "-k--"},
};

static void test_keep_line_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(keep_rows) / sizeof(keep_rows[0]); ++i) {
        const char *text = keep_rows[i].text, *p = text;
        char got[16] = "";
        size_t n = 0;
        ca_token_index_t *ix = ca_token_index_new();
        assert_non_null(ix);
        assert_int_equal(ca_token_index_fold_text(ix, text, strlen(text)), 0);
        while (*p != '\0') {
            const char *nl = strchr(p, '\n');
            got[n++] = ca_token_index_keep_line(ix, p, (size_t)(nl - p), 100) ? 'k' : '-';
            p = nl + 1;
        }
        if (strcmp(got, keep_rows[i].kept) != 0)
            fail_msg("%s: kept %s, want %s", keep_rows[i].name, got, keep_rows[i].kept);
        ca_token_index_free(ix);
    }
}

static void test_hash_and_prefix(void **state)
{
    char hex[CA_TOKEN_HASH_HEX + 1];
    (void)state;
    ca_token_hash("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(ca_token_is_join_token("seam-join-x", 11));
    assert_false(ca_token_is_join_token("seam-join-", 10));
    assert_false(ca_token_is_join_token("eyJhbGciOi.x.y", 14));
}

/* ---- the file ---------------------------------------------------------------------------------- */

static char dir[4096], path[4200];

static int make_dir(void **state)
{
    const char *base = getenv("TEST_TMPDIR");
    (void)state;
    snprintf(dir, sizeof(dir), "%s/tokens.XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/join-tokens", dir);
    return 0;
}

static int remove_dir(void **state)
{
    char cmd[4300];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *read_file(const char *p, size_t *len)
{
    FILE *fp = fopen(p, "r");
    char *text = calloc(1, 1 << 20);
    assert_non_null(fp);
    assert_non_null(text);
    *len = fread(text, 1, (1 << 20) - 1, fp);
    fclose(fp);
    return text;
}

static void append_text(const char *p, const char *text)
{
    FILE *fp = fopen(p, "a");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static off_t file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return st.st_size;
}

static void test_create_peek_consume(void **state)
{
    char token[CA_TOKEN_MAX + 1], token2[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1], detail[256];
    ca_token_store_t *store;
    struct stat st;
    size_t len;
    (void)state;

    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, token, detail, sizeof(detail)), 0);
    assert_true(ca_token_is_join_token(token, strlen(token)));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* The file holds the hash, never the token. */
    char *text = read_file(path, &len);
    assert_null(strstr(text, token + sizeof(CA_TOKEN_PREFIX) - 1));
    free(text);
    assert_int_equal(ca_tokens_create(path, DB, 1, 1000, token2, detail, sizeof(detail)), 0);
    assert_string_not_equal(token, token2);

    assert_int_equal(ca_token_store_open(path, 1000, &store, NULL, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_peek(store, token, strlen(token), 1001, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, WEB);
    /* Bound to its identity: a consume for another ID leaves it usable. */
    assert_int_equal(ca_token_store_consume(store, token, strlen(token), 1001, DB, detail, sizeof(detail)),
                     CA_E_IDENTITY_MISMATCH);
    assert_int_equal(ca_token_store_consume(store, token, strlen(token), 1001, WEB, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(store, token, strlen(token), 1002, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    assert_int_equal(ca_token_store_peek(store, token, strlen(token), 1002, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    /* token2 lived one second. */
    assert_int_equal(ca_token_store_peek(store, token2, strlen(token2), 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_EXPIRED);
    assert_int_equal(ca_token_store_peek(store, "seam-join-nope", 14, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_token_store_peek(store, "not-a-token", 11, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_token_store_consume(store, "seam-join-nope", 14, 1001, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    ca_token_store_free(store);

    /* The spend is on disk: a store opened later (a restart) refuses the token too. */
    assert_int_equal(ca_token_store_open(path, 1001, &store, NULL, detail, sizeof(detail)), 0);
    assert_int_not_equal(ca_token_store_peek(store, token, strlen(token), 1002, id, detail, sizeof(detail)), 0);
    assert_int_not_equal(ca_token_store_consume(store, token, strlen(token), 1002, WEB, detail, sizeof(detail)), 0);
    ca_token_store_free(store);

    /* A directory is not a tokens file. */
    assert_int_equal(ca_token_store_open(dir, 1000, &store, NULL, detail, sizeof(detail)), CA_E_IO);
    assert_null(store);
}

/* The CA starts before any token exists; tokens made later by `token create` are found without a restart. */
static void test_missing_file_then_created(void **state)
{
    char token[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1], detail[256];
    ca_token_store_t *store;
    ca_token_compaction_t report;
    (void)state;

    assert_int_equal(ca_token_store_open(path, 1000, &store, &report, detail, sizeof(detail)), 0);
    assert_int_equal(report.rewritten, 0);
    assert_int_equal(access(path, F_OK), -1); /* opening does not create it */
    assert_int_equal(ca_token_store_peek(store, "seam-join-nope", 14, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_token_store_consume(store, "seam-join-nope", 14, 1001, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, token, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_peek(store, token, strlen(token), 1001, id, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(store, token, strlen(token), 1001, WEB, detail, sizeof(detail)), 0);
    ca_token_store_free(store);
}

/*
 * The finding: every lookup read the whole file. Now a miss reads nothing
 * when nothing was appended, and only the appended bytes when something was.
 */
static void test_lookups_read_only_appended_bytes(void **state)
{
    char token[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1], detail[256], line[256], hash[CA_TOKEN_HASH_HEX + 1];
    ca_token_store_t *store;
    (void)state;

    assert_int_equal(ca_tokens_create(path, DB, 3600, 1000, token, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_open(path, 1000, &store, NULL, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_bytes_read(store), file_size(path));

    /* 2000 tokens made and spent while the CA runs (~270 KB): the next miss reads them, once. */
    off_t start_size = file_size(path);
    FILE *fp = fopen(path, "a");
    assert_non_null(fp);
    for (int i = 0; i < 2000; ++i) {
        snprintf(line, sizeof(line), "seam-join-spent-%d", i);
        ca_token_hash(line, strlen(line), hash);
        fprintf(fp, "{\"op\":\"create\",\"hash\":\"%s\",\"spiffe_id\":\"%s\",\"expires\":5000}\n", hash, WEB);
        fprintf(fp, "{\"op\":\"use\",\"hash\":\"%s\",\"at\":900}\n", hash);
    }
    fclose(fp);
    assert_int_equal(ca_token_store_peek(store, "seam-join-spent-7", 17, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    assert_int_equal(ca_token_index_size(ca_token_store_index(store)), 2001);
    uint64_t read_at_start = ca_token_store_bytes_read(store);
    assert_int_equal(read_at_start, file_size(path));
    assert_true(file_size(path) - start_size > 200000);

    /* Hits and misses with nothing appended read nothing. */
    for (int i = 0; i < 100; ++i) {
        snprintf(line, sizeof(line), "seam-join-bogus-%d", i);
        assert_int_equal(ca_token_store_peek(store, line, strlen(line), 1001, id, detail, sizeof(detail)),
                         CA_E_JOIN_TOKEN_UNKNOWN);
    }
    assert_int_equal(ca_token_store_peek(store, token, strlen(token), 1001, id, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_bytes_read(store), read_at_start);

    /* A token created by another process after start: found, by reading just its record. */
    off_t before = file_size(path);
    char later[CA_TOKEN_MAX + 1];
    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, later, detail, sizeof(detail)), 0);
    off_t appended = file_size(path) - before;
    assert_int_equal(ca_token_store_peek(store, later, strlen(later), 1001, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, WEB);
    assert_int_equal(ca_token_store_bytes_read(store), read_at_start + (uint64_t)appended);

    /* A spend appended by another process sharing the file is seen by this one's consume. */
    ca_token_store_t *other;
    assert_int_equal(ca_token_store_open(path, 1000, &other, NULL, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(other, later, strlen(later), 1001, WEB, detail, sizeof(detail)), 0);
    ca_token_store_free(other);
    assert_int_equal(ca_token_store_consume(store, later, strlen(later), 1002, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    ca_token_store_free(store);
}

/* An unfinished last line (a record being written, or torn by a crash) is read once it is complete. */
static void test_unfinished_line(void **state)
{
    char id[CRT_SPIFFE_ID_MAX + 1], detail[256], hash[CA_TOKEN_HASH_HEX + 1], rec[512];
    ca_token_store_t *store;
    (void)state;

    append_text(path, "");
    assert_int_equal(ca_token_store_open(path, 1000, &store, NULL, detail, sizeof(detail)), 0);
    ca_token_hash("seam-join-slow", 14, hash);
    snprintf(rec, sizeof(rec), "{\"op\":\"create\",\"hash\":\"%s\",\"spiffe_id\":\"%s\",\"expires\":5000}", hash, WEB);
    size_t half = strlen(rec) / 2;
    char first[512];
    snprintf(first, sizeof(first), "%.*s", (int)half, rec);
    append_text(path, first);
    assert_int_equal(ca_token_store_peek(store, "seam-join-slow", 14, 1001, id, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_UNKNOWN);
    assert_int_equal(ca_token_index_bad_lines(ca_token_store_index(store)), 0);
    append_text(path, rec + half);
    append_text(path, "\n");
    assert_int_equal(ca_token_store_peek(store, "seam-join-slow", 14, 1001, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, WEB);
    ca_token_store_free(store);
}

/* A line longer than one read (no record is) is skipped as one bad line; the records around it still count. */
static void test_overlong_line(void **state)
{
    char token[CA_TOKEN_MAX + 1], later[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1], detail[256];
    ca_token_store_t *store;
    (void)state;

    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, token, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_open(path, 1000, &store, NULL, detail, sizeof(detail)), 0);
    char *junk = malloc(3 * CA_TOKENS_READ_CHUNK + 2);
    assert_non_null(junk);
    memset(junk, 'x', 3 * CA_TOKENS_READ_CHUNK);
    strcpy(junk + 3 * CA_TOKENS_READ_CHUNK, "\n");
    append_text(path, junk);
    free(junk);
    assert_int_equal(ca_tokens_create(path, DB, 3600, 1000, later, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_peek(store, later, strlen(later), 1001, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, DB);
    assert_int_equal(ca_token_index_bad_lines(ca_token_store_index(store)), 1);
    assert_int_equal(ca_token_store_peek(store, token, strlen(token), 1001, id, detail, sizeof(detail)), 0);
    ca_token_store_free(store);
}

/* Opening compacts: spent, expired and bad lines go; live tokens stay usable; the file stays 0600. */
static void test_compaction(void **state)
{
    char live[CA_TOKEN_MAX + 1], spent[CA_TOKEN_MAX + 1], old[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1],
        detail[256];
    ca_token_store_t *store;
    ca_token_compaction_t report;
    struct stat st;
    size_t len;
    (void)state;

    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, live, detail, sizeof(detail)), 0);
    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, spent, detail, sizeof(detail)), 0);
    assert_int_equal(ca_tokens_create(path, DB, 10, 1000, old, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_open(path, 1000, &store, &report, detail, sizeof(detail)), 0);
    assert_int_equal(report.rewritten, 0); /* three live tokens: nothing to drop */
    assert_int_equal(report.lines_before, 3);
    assert_int_equal(ca_token_store_consume(store, spent, strlen(spent), 1001, WEB, detail, sizeof(detail)), 0);
    ca_token_store_free(store);
    append_text(path, "not a record\n{\"op\":\"create\",\"hash\":\"torn");

    /* At 2000 the DB token has expired. */
    assert_int_equal(ca_token_store_open(path, 2000, &store, &report, detail, sizeof(detail)), 0);
    assert_int_equal(report.rewritten, 1);
    assert_int_equal(report.failed, 0);
    assert_int_equal(report.lines_before, 5);
    assert_int_equal(report.bad_lines, 1);
    assert_int_equal(report.lines_after, 1);
    char *text = read_file(path, &len);
    char live_hash[CA_TOKEN_HASH_HEX + 1];
    ca_token_hash(live, strlen(live), live_hash);
    assert_non_null(strstr(text, live_hash));
    assert_non_null(strstr(text, "\"created\":1000")); /* the record is kept as it was written */
    size_t lines = 0;
    for (size_t i = 0; i < len; ++i)
        lines += text[i] == '\n';
    assert_int_equal(lines, 1);
    free(text);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* No temporary file is left behind. */
    char cmd[4400];
    snprintf(cmd, sizeof(cmd), "test $(ls -A '%s' | wc -l) -eq 1", dir);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(ca_token_store_peek(store, live, strlen(live), 2001, id, detail, sizeof(detail)), 0);
    assert_int_not_equal(ca_token_store_peek(store, spent, strlen(spent), 2001, id, detail, sizeof(detail)), 0);
    assert_int_not_equal(ca_token_store_peek(store, old, strlen(old), 2001, id, detail, sizeof(detail)), 0);
    /* The store keeps appending to the compacted file. */
    assert_int_equal(ca_token_store_consume(store, live, strlen(live), 2001, WEB, detail, sizeof(detail)), 0);
    ca_token_store_free(store);
    text = read_file(path, &len);
    assert_non_null(strstr(text, "\"op\":\"use\""));
    free(text);
}

/* Another CA compacting the shared file replaces it: this store notices, reloads, and sees new tokens there. */
static void test_file_replaced_under_store(void **state)
{
    char a[CA_TOKEN_MAX + 1], b[CA_TOKEN_MAX + 1], c[CA_TOKEN_MAX + 1], id[CRT_SPIFFE_ID_MAX + 1], detail[256];
    ca_token_store_t *first, *second;
    ca_token_compaction_t report;
    (void)state;

    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, a, detail, sizeof(detail)), 0);
    assert_int_equal(ca_tokens_create(path, WEB, 3600, 1000, b, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_open(path, 1000, &first, NULL, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(first, a, strlen(a), 1001, WEB, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_open(path, 1002, &second, &report, detail, sizeof(detail)), 0);
    assert_int_equal(report.rewritten, 1);
    /* Written to the new file: the one path names now. */
    assert_int_equal(ca_tokens_create(path, DB, 3600, 1000, c, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_peek(first, c, strlen(c), 1003, id, detail, sizeof(detail)), 0);
    assert_string_equal(id, DB);
    assert_int_not_equal(ca_token_store_consume(first, a, strlen(a), 1003, WEB, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(first, b, strlen(b), 1003, WEB, detail, sizeof(detail)), 0);
    assert_int_equal(ca_token_store_consume(second, b, strlen(b), 1003, WEB, detail, sizeof(detail)),
                     CA_E_JOIN_TOKEN_USED);
    ca_token_store_free(first);
    ca_token_store_free(second);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_table),
        cmocka_unit_test(test_index_hit_miss_spent),
        cmocka_unit_test(test_keep_line_table),
        cmocka_unit_test(test_hash_and_prefix),
        cmocka_unit_test_setup_teardown(test_create_peek_consume, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_missing_file_then_created, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_lookups_read_only_appended_bytes, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_unfinished_line, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_overlong_line, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_compaction, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_file_replaced_under_store, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
