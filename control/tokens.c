/* Join tokens: SHA-256 hashes in an append-only, fsynced, flock-protected file. */
#include "control/tokens.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/error.h"
#include "control/jwt.h"
#include "common/base64url.h"

#define RECORD_MAX (CRT_SPIFFE_ID_MAX + 256)

int ca_token_is_join_token(const char *text, size_t len)
{
    return len > sizeof(CA_TOKEN_PREFIX) - 1 && memcmp(text, CA_TOKEN_PREFIX, sizeof(CA_TOKEN_PREFIX) - 1) == 0;
}

void ca_token_hash(const char *token, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int md_len = 0;

    if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != sizeof(md))
        memset(md, 0, sizeof(md));
    for (size_t i = 0; i < sizeof(md); ++i) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[CA_TOKEN_HASH_HEX] = '\0';
}

static int hash_equals(json_t *v, const char *hash_hex)
{
    return json_is_string(v) && json_string_length(v) == CA_TOKEN_HASH_HEX &&
           CRYPTO_memcmp(json_string_value(v), hash_hex, CA_TOKEN_HASH_HEX) == 0;
}

int ca_tokens_fold(const char *text, size_t len, const char *hash_hex, ca_token_entry_t *entry)
{
    const char *p = text, *end = text + len;

    memset(entry, 0, sizeof(*entry));
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = (nl != NULL ? nl : end) - p;
        json_t *rec = NULL, *op;

        if (line_len == 0)
            goto Next;
        if (line_len > RECORD_MAX || (rec = json_loadb(p, line_len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
            !json_is_object(rec) || !json_is_string(op = json_object_get(rec, "op"))) {
            ++entry->bad_lines;
            goto Next;
        }
        if (strcmp(json_string_value(op), "create") == 0) {
            json_t *id = json_object_get(rec, "spiffe_id"), *exp = json_object_get(rec, "expires");
            if (!json_is_string(id) || json_string_length(id) > CRT_SPIFFE_ID_MAX || !json_is_integer(exp)) {
                ++entry->bad_lines;
                goto Next;
            }
            if (hash_equals(json_object_get(rec, "hash"), hash_hex) && entry->state == CA_TOKEN_UNKNOWN) {
                entry->state = CA_TOKEN_UNUSED;
                memcpy(entry->spiffe_id, json_string_value(id), json_string_length(id) + 1);
                entry->expires = json_integer_value(exp);
            }
        } else if (strcmp(json_string_value(op), "use") == 0) {
            /* A use record wins even if it comes before its create: used is final. */
            if (hash_equals(json_object_get(rec, "hash"), hash_hex))
                entry->state = CA_TOKEN_USED;
        } else {
            ++entry->bad_lines;
        }
    Next:
        json_decref(rec);
        p += line_len + 1;
    }
    return 0;
}

int ca_token_check(const ca_token_entry_t *entry, time_t now)
{
    switch (entry->state) {
    case CA_TOKEN_UNUSED:
        return (long long)now >= entry->expires ? CA_E_JOIN_TOKEN_EXPIRED : 0;
    case CA_TOKEN_USED:
        return CA_E_JOIN_TOKEN_USED;
    default:
        return CA_E_JOIN_TOKEN_UNKNOWN;
    }
}

/* Reads the whole of fd into a new buffer. */
static int read_all(int fd, const char *path, char **out, size_t *out_len, char *detail, size_t detail_cap)
{
    struct stat st;
    char *buf;
    size_t n = 0;

    if (fstat(fd, &st) != 0) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        return CA_E_IO;
    }
    if (st.st_size > CA_TOKENS_FILE_MAX) {
        snprintf(detail, detail_cap, "%s: larger than %d bytes", path, CA_TOKENS_FILE_MAX);
        return CA_E_IO;
    }
    if ((buf = malloc((size_t)st.st_size + 1)) == NULL)
        return CA_E_NOMEM;
    while (n < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + n, (size_t)st.st_size - n, (off_t)n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
            free(buf);
            return CA_E_IO;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* Appends line (which ends in '\n') so that it starts on a line of its own, then fsyncs. */
static int append_record(int fd, const char *path, const char *line, size_t len, char *detail, size_t detail_cap)
{
    struct stat st;
    char last = '\n';

    if (fstat(fd, &st) != 0)
        goto Fail;
    if (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1)
        goto Fail;
    if (last != '\n' && write(fd, "\n", 1) != 1)
        goto Fail;
    while (len > 0) {
        ssize_t w = write(fd, line, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto Fail;
        line += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        goto Fail;
    return 0;

Fail:
    snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
    return CA_E_IO;
}

/* fsyncs the directory holding path, so that a newly created file survives a crash. */
static void sync_parent_dir(const char *path)
{
    char copy[4096];
    int fd;

    snprintf(copy, sizeof(copy), "%s", path);
    if ((fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int ca_tokens_create(const char *path, const char *spiffe_id, long ttl_seconds, time_t now, char *token,
                     char *detail, size_t detail_cap)
{
    unsigned char secret[CA_TOKEN_RANDOM_BYTES];
    char hash[CA_TOKEN_HASH_HEX + 1], line[RECORD_MAX];
    json_t *rec = NULL;
    char *text = NULL;
    int fd = -1, ret = CA_E_INTERNAL, created = 0;
    size_t plen = sizeof(CA_TOKEN_PREFIX) - 1;

    if (RAND_bytes(secret, sizeof(secret)) != 1) {
        snprintf(detail, detail_cap, "no randomness available");
        goto Exit;
    }
    memcpy(token, CA_TOKEN_PREFIX, plen);
    if (cmn_base64url_encode(secret, sizeof(secret), token + plen, CA_TOKEN_MAX + 1 - plen) != 0)
        goto Exit;
    ca_token_hash(token, strlen(token), hash);
    rec = json_pack("{s:s, s:s, s:s, s:I, s:I}", "op", "create", "hash", hash, "spiffe_id", spiffe_id, "expires",
                    (json_int_t)now + ttl_seconds, "created", (json_int_t)now);
    if (rec == NULL || (text = json_dumps(rec, JSON_COMPACT)) == NULL)
        goto Exit;
    int n = snprintf(line, sizeof(line), "%s\n", text);
    if (n < 0 || (size_t)n >= sizeof(line))
        goto Exit;
    if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        created = 1;
    }
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        ret = CA_E_IO;
        goto Exit;
    }
    if ((ret = append_record(fd, path, line, (size_t)n, detail, detail_cap)) != 0)
        goto Exit;
    if (created)
        sync_parent_dir(path);
    ret = 0;

Exit:
    OPENSSL_cleanse(secret, sizeof(secret));
    if (ret != 0)
        OPENSSL_cleanse(token, CA_TOKEN_MAX + 1);
    if (fd >= 0)
        close(fd);
    free(text);
    json_decref(rec);
    return ret;
}

/* Opens, locks and folds the tokens file for token. */
static int load_entry(const char *path, int fd, const char *token, size_t len, ca_token_entry_t *entry, char *detail,
                      size_t detail_cap)
{
    char hash[CA_TOKEN_HASH_HEX + 1], *text = NULL;
    size_t text_len = 0;
    int ret;

    if (len > CA_TOKEN_MAX || !ca_token_is_join_token(token, len)) {
        memset(entry, 0, sizeof(*entry));
        return 0;
    }
    if ((ret = read_all(fd, path, &text, &text_len, detail, detail_cap)) != 0)
        return ret;
    ca_token_hash(token, len, hash);
    ret = ca_tokens_fold(text, text_len, hash, entry);
    free(text);
    return ret;
}

int ca_tokens_peek(const char *path, const char *token, size_t len, time_t now, char *spiffe_id, char *detail,
                   size_t detail_cap)
{
    ca_token_entry_t entry;
    int fd, ret;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 && errno == ENOENT)
        return CA_E_JOIN_TOKEN_UNKNOWN; /* no token was ever created */
    if (fd < 0 || flock(fd, LOCK_SH) != 0) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CA_E_IO;
    }
    ret = load_entry(path, fd, token, len, &entry, detail, detail_cap);
    close(fd);
    if (ret == 0 && (ret = ca_token_check(&entry, now)) == 0)
        memcpy(spiffe_id, entry.spiffe_id, strlen(entry.spiffe_id) + 1);
    return ret;
}

int ca_tokens_consume(const char *path, const char *token, size_t len, time_t now, const char *expected_id,
                      char *detail, size_t detail_cap)
{
    ca_token_entry_t entry;
    char hash[CA_TOKEN_HASH_HEX + 1], line[256];
    int fd, ret;

    if ((fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC)) < 0 && errno == ENOENT)
        return CA_E_JOIN_TOKEN_UNKNOWN;
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return CA_E_IO;
    }
    if ((ret = load_entry(path, fd, token, len, &entry, detail, detail_cap)) != 0)
        goto Exit;
    if ((ret = ca_token_check(&entry, now)) != 0)
        goto Exit;
    if (strcmp(entry.spiffe_id, expected_id) != 0) {
        snprintf(detail, detail_cap, "the join token is for %.200s", entry.spiffe_id);
        ret = CA_E_IDENTITY_MISMATCH;
        goto Exit;
    }
    ca_token_hash(token, len, hash);
    int n = snprintf(line, sizeof(line), "{\"op\":\"use\",\"hash\":\"%s\",\"at\":%lld}\n", hash, (long long)now);
    ret = append_record(fd, path, line, (size_t)n, detail, detail_cap);

Exit:
    close(fd);
    return ret;
}
