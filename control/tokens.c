/* Join tokens: SHA-256 hashes in an append-only, fsynced, flock-protected file, indexed in memory. */
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
#include "common/base64url.h"

#define HASH_BYTES 32              /* a SHA-256 */
#define INDEX_MIN_BUCKETS 1024     /* a power of two; the table doubles when it holds as many tokens */
#define LOCK_ATTEMPTS 8            /* reopen-and-lock attempts while the file keeps being replaced */
#define COMPACT_SUFFIX ".compact.XXXXXX"

int ca_token_is_join_token(const char *text, size_t len)
{
    return len > sizeof(CA_TOKEN_PREFIX) - 1 && memcmp(text, CA_TOKEN_PREFIX, sizeof(CA_TOKEN_PREFIX) - 1) == 0;
}

void ca_token_hash(const char *token, size_t len, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[HASH_BYTES];
    unsigned int md_len = 0;

    if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != sizeof(md))
        memset(md, 0, sizeof(md));
    for (size_t i = 0; i < sizeof(md); ++i) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[CA_TOKEN_HASH_HEX] = '\0';
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

/* ---- records ------------------------------------------------------------------------ */

typedef enum { RECORD_CREATE, RECORD_USE } record_op_t;

typedef struct st_ca_token_record_t {
    record_op_t op;
    unsigned char hash[HASH_BYTES];
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1]; /* create only */
    long long expires;                     /* create only */
} ca_token_record_t;

/* Decodes exactly 64 lowercase hex digits, the only spelling ca_token_hash() writes. */
static int decode_hash(const char *hex, size_t len, unsigned char *out)
{
    if (len != CA_TOKEN_HASH_HEX)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        int v = hex[i] >= '0' && hex[i] <= '9' ? hex[i] - '0' : hex[i] >= 'a' && hex[i] <= 'f' ? hex[i] - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        out[i / 2] = (unsigned char)(i % 2 == 0 ? v << 4 : out[i / 2] | v);
    }
    return 0;
}

/* Parses one record line; -1 when it is not a record. */
static int parse_record(const char *line, size_t len, ca_token_record_t *rec)
{
    json_t *root = NULL, *op, *hash, *id, *expires;
    int ret = -1;

    if (line == NULL || len > CA_TOKEN_RECORD_MAX ||
        (root = json_loadb(line, len, JSON_REJECT_DUPLICATES, NULL)) == NULL || !json_is_object(root) ||
        !json_is_string(op = json_object_get(root, "op")))
        goto Exit;
    if (strcmp(json_string_value(op), "create") == 0) {
        id = json_object_get(root, "spiffe_id");
        expires = json_object_get(root, "expires");
        if (!json_is_string(id) || json_string_length(id) > CRT_SPIFFE_ID_MAX || !json_is_integer(expires))
            goto Exit;
        rec->op = RECORD_CREATE;
        memcpy(rec->spiffe_id, json_string_value(id), json_string_length(id) + 1);
        rec->expires = json_integer_value(expires);
    } else if (strcmp(json_string_value(op), "use") == 0) {
        rec->op = RECORD_USE;
    } else {
        goto Exit;
    }
    hash = json_object_get(root, "hash");
    if (!json_is_string(hash) || decode_hash(json_string_value(hash), json_string_length(hash), rec->hash) != 0)
        goto Exit;
    ret = 0;

Exit:
    json_decref(root);
    return ret;
}

/* ---- the index ------------------------------------------------------------------------ */

struct st_ca_token_slot_t {
    struct st_ca_token_slot_t *next;
    unsigned char hash[HASH_BYTES];
    unsigned created : 1; /* a create record was folded (while the token was unused) */
    unsigned used : 1;    /* a use record was folded: final */
    unsigned kept : 1;    /* compaction kept its create record */
    long long expires;
    char *spiffe_id;      /* owned; only while created and unused */
};

struct st_ca_token_index_t {
    struct st_ca_token_slot_t **buckets;
    size_t num_buckets; /* a power of two */
    size_t size;
    size_t bad_lines;
};

ca_token_index_t *ca_token_index_new(void)
{
    ca_token_index_t *ix = calloc(1, sizeof(*ix));

    if (ix == NULL || (ix->buckets = calloc(INDEX_MIN_BUCKETS, sizeof(*ix->buckets))) == NULL) {
        free(ix);
        return NULL;
    }
    ix->num_buckets = INDEX_MIN_BUCKETS;
    return ix;
}

void ca_token_index_free(ca_token_index_t *ix)
{
    if (ix == NULL)
        return;
    for (size_t i = 0; i < ix->num_buckets; ++i) {
        struct st_ca_token_slot_t *slot = ix->buckets[i], *next;
        for (; slot != NULL; slot = next) {
            next = slot->next;
            free(slot->spiffe_id);
            free(slot);
        }
    }
    free(ix->buckets);
    free(ix);
}

size_t ca_token_index_size(const ca_token_index_t *ix)
{
    return ix->size;
}

size_t ca_token_index_bad_lines(const ca_token_index_t *ix)
{
    return ix->bad_lines;
}

/* The hashes are SHA-256 outputs, so their first bytes spread them evenly already. */
static size_t bucket_of(const unsigned char *hash, size_t num_buckets)
{
    uint64_t h;
    memcpy(&h, hash, sizeof(h));
    return (size_t)(h & (num_buckets - 1));
}

static struct st_ca_token_slot_t *find_slot(const ca_token_index_t *ix, const unsigned char *hash)
{
    for (struct st_ca_token_slot_t *slot = ix->buckets[bucket_of(hash, ix->num_buckets)]; slot != NULL;
         slot = slot->next)
        if (CRYPTO_memcmp(slot->hash, hash, HASH_BYTES) == 0)
            return slot;
    return NULL;
}

/* Doubles the table; on allocation failure it keeps the old one (longer chains, same answers). */
static void grow(ca_token_index_t *ix)
{
    size_t num = ix->num_buckets * 2;
    struct st_ca_token_slot_t **buckets = calloc(num, sizeof(*buckets));

    if (buckets == NULL)
        return;
    for (size_t i = 0; i < ix->num_buckets; ++i) {
        struct st_ca_token_slot_t *slot = ix->buckets[i], *next;
        for (; slot != NULL; slot = next) {
            size_t b = bucket_of(slot->hash, num);
            next = slot->next;
            slot->next = buckets[b];
            buckets[b] = slot;
        }
    }
    free(ix->buckets);
    ix->buckets = buckets;
    ix->num_buckets = num;
}

int ca_token_index_fold_line(ca_token_index_t *ix, const char *line, size_t len)
{
    ca_token_record_t rec;
    struct st_ca_token_slot_t *slot;

    if (line != NULL && len == 0)
        return 0;
    if (parse_record(line, len, &rec) != 0) {
        ++ix->bad_lines;
        return 0;
    }
    if ((slot = find_slot(ix, rec.hash)) == NULL) {
        if ((slot = calloc(1, sizeof(*slot))) == NULL)
            return CA_E_NOMEM;
        memcpy(slot->hash, rec.hash, HASH_BYTES);
        size_t b = bucket_of(slot->hash, ix->num_buckets);
        slot->next = ix->buckets[b];
        ix->buckets[b] = slot;
        if (++ix->size > ix->num_buckets)
            grow(ix);
    }
    if (rec.op == RECORD_USE) {
        /* Used is final, so the identity is never asked for again: keep spent tokens small. */
        slot->used = 1;
        free(slot->spiffe_id);
        slot->spiffe_id = NULL;
        return 0;
    }
    if (slot->created || slot->used)
        return 0; /* the first create record wins; a use before its create still counts */
    if ((slot->spiffe_id = strdup(rec.spiffe_id)) == NULL)
        return CA_E_NOMEM;
    slot->created = 1;
    slot->expires = rec.expires;
    return 0;
}

int ca_token_index_fold_text(ca_token_index_t *ix, const char *text, size_t len)
{
    const char *p = text, *end = text + len;
    int ret;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t line_len = (size_t)((nl != NULL ? nl : end) - p);
        if ((ret = ca_token_index_fold_line(ix, p, line_len)) != 0)
            return ret;
        p += line_len + 1;
    }
    return 0;
}

void ca_token_index_find(const ca_token_index_t *ix, const char *hash_hex, ca_token_entry_t *entry)
{
    unsigned char hash[HASH_BYTES];
    struct st_ca_token_slot_t *slot;

    memset(entry, 0, sizeof(*entry));
    entry->bad_lines = ix->bad_lines;
    if (decode_hash(hash_hex, strlen(hash_hex), hash) != 0 || (slot = find_slot(ix, hash)) == NULL)
        return;
    if (slot->used) {
        entry->state = CA_TOKEN_USED;
    } else if (slot->created && slot->spiffe_id != NULL) {
        entry->state = CA_TOKEN_UNUSED;
        memcpy(entry->spiffe_id, slot->spiffe_id, strlen(slot->spiffe_id) + 1);
        entry->expires = slot->expires;
    }
}

int ca_token_index_keep_line(ca_token_index_t *ix, const char *line, size_t len, time_t now)
{
    ca_token_record_t rec;
    struct st_ca_token_slot_t *slot;

    if (parse_record(line, len, &rec) != 0 || rec.op != RECORD_CREATE || (slot = find_slot(ix, rec.hash)) == NULL)
        return 0;
    if (slot->used || !slot->created || slot->kept || (long long)now >= slot->expires)
        return 0;
    slot->kept = 1;
    return 1;
}

/* Tokens still usable at now: what a compacted file holds. */
static size_t count_live(const ca_token_index_t *ix, time_t now)
{
    size_t live = 0;
    for (size_t i = 0; i < ix->num_buckets; ++i)
        for (const struct st_ca_token_slot_t *slot = ix->buckets[i]; slot != NULL; slot = slot->next)
            live += !slot->used && slot->created && (long long)now < slot->expires;
    return live;
}

int ca_tokens_fold(const char *text, size_t len, const char *hash_hex, ca_token_entry_t *entry)
{
    ca_token_index_t *ix = ca_token_index_new();
    int ret;

    memset(entry, 0, sizeof(*entry));
    if (ix == NULL)
        return CA_E_NOMEM;
    if ((ret = ca_token_index_fold_text(ix, text, len)) == 0)
        ca_token_index_find(ix, hash_hex, entry);
    ca_token_index_free(ix);
    return ret;
}

/* ---- file helpers ------------------------------------------------------------------------- */

static int io_error(const char *path, const char *what, char *detail, size_t detail_cap)
{
    if (what != NULL)
        snprintf(detail, detail_cap, "%s: %s: %s", path, what, strerror(errno));
    else
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
    return CA_E_IO;
}

typedef int (*on_line_cb)(void *ctx, const char *line, size_t len);

/*
 * Calls on_line for every complete line of fd from offset start on; a line
 * longer than CA_TOKENS_READ_CHUNK is passed as NULL. *end receives the
 * offset just past the last complete line: an unfinished last line (a record
 * being appended, or one torn by a crash) is left for a later read. Returns
 * 0, CA_E_IO (errno set), CA_E_NOMEM, or what on_line returned.
 */
static int read_lines(int fd, off_t start, on_line_cb on_line, void *ctx, off_t *end, uint64_t *bytes_read)
{
    char *buf = malloc(CA_TOKENS_READ_CHUNK);
    size_t have = 0;   /* bytes of an unfinished line at the front of buf */
    off_t base = start; /* file offset of buf[0] */
    off_t pos = start;  /* next offset to read */
    int skipping = 0, ret = 0, saved_errno = 0;

    *end = start;
    if (buf == NULL)
        return CA_E_NOMEM;
    for (;;) {
        ssize_t r = pread(fd, buf + have, CA_TOKENS_READ_CHUNK - have, pos);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            saved_errno = errno;
            ret = CA_E_IO;
            break;
        }
        if (r == 0)
            break;
        pos += r;
        *bytes_read += (uint64_t)r;
        have += (size_t)r;
        char *p = buf, *nl;
        while ((nl = memchr(p, '\n', have - (size_t)(p - buf))) != NULL) {
            if ((ret = on_line(ctx, skipping ? NULL : p, skipping ? 0 : (size_t)(nl - p))) != 0)
                goto Exit;
            skipping = 0;
            p = nl + 1;
        }
        size_t done = (size_t)(p - buf);
        if (done > 0) {
            base += (off_t)done;
            have -= done;
            memmove(buf, p, have);
            *end = base;
        }
        if (have == CA_TOKENS_READ_CHUNK) {
            /* No newline in a whole chunk: no record is this long; drop it up to its end. */
            skipping = 1;
            base += (off_t)have;
            have = 0;
        }
    }

Exit:
    free(buf);
    errno = saved_errno;
    return ret;
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
    return io_error(path, NULL, detail, detail_cap);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding path, so that a newly created or renamed file survives a crash. */
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

/* True when fd is the file path names now (compaction replaces it by rename). */
static int is_current(int fd, const char *path)
{
    struct stat open_file, on_disk;
    return fstat(fd, &open_file) == 0 && stat(path, &on_disk) == 0 && open_file.st_dev == on_disk.st_dev &&
           open_file.st_ino == on_disk.st_ino;
}

/*
 * Opens path for appending (creating it 0600 when missing) and locks it
 * exclusively. A process that waited for the lock while the file was
 * compacted holds a file nobody reads any more: it lets go and reopens.
 */
static int open_locked(const char *path, int *out_fd, int *created, char *detail, size_t detail_cap)
{
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; ++attempt) {
        int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC), made = 0;
        if (fd < 0 && errno == ENOENT) {
            fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            made = 1;
            if (fd < 0 && errno == EEXIST)
                continue; /* another process made it first */
        }
        if (fd < 0)
            return io_error(path, NULL, detail, detail_cap);
        if (flock(fd, LOCK_EX) != 0) {
            int ret = io_error(path, NULL, detail, detail_cap);
            close(fd);
            return ret;
        }
        if (is_current(fd, path)) {
            *out_fd = fd;
            *created = made;
            return 0;
        }
        close(fd);
    }
    snprintf(detail, detail_cap, "%s: replaced %d times while waiting for its lock", path, LOCK_ATTEMPTS);
    return CA_E_IO;
}

int ca_tokens_create(const char *path, const char *spiffe_id, long ttl_seconds, time_t now, char *token,
                     char *detail, size_t detail_cap)
{
    unsigned char secret[CA_TOKEN_RANDOM_BYTES];
    char hash[CA_TOKEN_HASH_HEX + 1], line[CA_TOKEN_RECORD_MAX];
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
    if ((ret = open_locked(path, &fd, &created, detail, detail_cap)) != 0)
        goto Exit;
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

/* ---- the store ------------------------------------------------------------------------------ */

struct st_ca_token_store_t {
    char *path;               /* owned */
    ca_token_index_t *index;  /* owned */
    int fd;                   /* the file as last opened (O_APPEND), or -1 while there is none */
    dev_t dev;                /* identity of the file fd holds, to notice a replacement */
    ino_t ino;
    off_t folded;             /* the index holds the file up to here: the end of its last complete line */
    uint64_t bytes_read;
};

uint64_t ca_token_store_bytes_read(const ca_token_store_t *store)
{
    return store->bytes_read;
}

const ca_token_index_t *ca_token_store_index(const ca_token_store_t *store)
{
    return store->index;
}

void ca_token_store_free(ca_token_store_t *store)
{
    if (store == NULL)
        return;
    if (store->fd >= 0)
        close(store->fd);
    ca_token_index_free(store->index);
    free(store->path);
    free(store);
}

static int on_index_line(void *ctx, const char *line, size_t len)
{
    return ca_token_index_fold_line(ctx, line, len);
}

/* Folds the file from store->folded to its last complete line. */
static int fold_appended(ca_token_store_t *store, char *detail, size_t detail_cap)
{
    int ret = read_lines(store->fd, store->folded, on_index_line, store->index, &store->folded, &store->bytes_read);
    if (ret == CA_E_IO)
        return io_error(store->path, NULL, detail, detail_cap);
    return ret;
}

/* Forgets everything and opens the file path names now (fd -1 when there is none): it was replaced or removed. */
static int reopen(ca_token_store_t *store, char *detail, size_t detail_cap)
{
    ca_token_index_t *fresh;
    struct stat st = {0};
    int fd = open(store->path, O_RDWR | O_APPEND | O_CLOEXEC);

    if (fd < 0 && errno != ENOENT)
        return io_error(store->path, NULL, detail, detail_cap);
    if (fd >= 0 && fstat(fd, &st) != 0) {
        int ret = io_error(store->path, NULL, detail, detail_cap);
        close(fd);
        return ret;
    }
    if ((fresh = ca_token_index_new()) == NULL) {
        if (fd >= 0)
            close(fd);
        return CA_E_NOMEM;
    }
    if (store->fd >= 0)
        close(store->fd);
    ca_token_index_free(store->index);
    store->index = fresh;
    store->fd = fd;
    store->dev = st.st_dev;
    store->ino = st.st_ino;
    store->folded = 0;
    return 0;
}

/*
 * Brings the index up to date with the file. The common case, nothing
 * appended, costs a stat and an fstat; appended records are read from where
 * the last read stopped. Only a replaced, removed or truncated file is read
 * again from the start.
 */
static int sync_index(ca_token_store_t *store, char *detail, size_t detail_cap)
{
    struct stat on_disk, open_file;
    int ret;

    if (stat(store->path, &on_disk) != 0) {
        if (errno != ENOENT)
            return io_error(store->path, NULL, detail, detail_cap);
        return store->fd < 0 ? 0 : reopen(store, detail, detail_cap);
    }
    if (store->fd < 0 || on_disk.st_dev != store->dev || on_disk.st_ino != store->ino) {
        if ((ret = reopen(store, detail, detail_cap)) != 0 || store->fd < 0)
            return ret;
    }
    if (fstat(store->fd, &open_file) != 0)
        return io_error(store->path, NULL, detail, detail_cap);
    if (open_file.st_size < store->folded) {
        ca_token_index_t *fresh = ca_token_index_new();
        if (fresh == NULL)
            return CA_E_NOMEM;
        ca_token_index_free(store->index);
        store->index = fresh;
        store->folded = 0;
    }
    if (open_file.st_size == store->folded)
        return 0;
    return fold_appended(store, detail, detail_cap);
}

/* Compaction's second pass: copies the lines to keep into a buffered temporary file and a fresh index. */
typedef struct st_ca_token_compact_t {
    ca_token_index_t *old;
    ca_token_index_t *fresh;
    time_t now;
    int fd;
    char *buf;
    size_t len;
    off_t written;
    size_t kept;
} ca_token_compact_t;

static int flush_compact(ca_token_compact_t *c)
{
    if (write_all(c->fd, c->buf, c->len) != 0)
        return CA_E_IO;
    c->written += (off_t)c->len;
    c->len = 0;
    return 0;
}

static int on_compact_line(void *ctx, const char *line, size_t len)
{
    ca_token_compact_t *c = ctx;
    int ret;

    if (!ca_token_index_keep_line(c->old, line, len, c->now))
        return 0;
    if (c->len + len + 1 > CA_TOKENS_READ_CHUNK && (ret = flush_compact(c)) != 0)
        return ret;
    memcpy(c->buf + c->len, line, len);
    c->buf[c->len + len] = '\n';
    c->len += len + 1;
    ++c->kept;
    return ca_token_index_fold_line(c->fresh, line, len);
}

/* The first read at start-up: folds every line and counts them, to see whether compaction would drop any. */
typedef struct st_ca_token_load_t {
    ca_token_index_t *index;
    size_t lines;
} ca_token_load_t;

static int on_load_line(void *ctx, const char *line, size_t len)
{
    ca_token_load_t *load = ctx;
    ++load->lines;
    return ca_token_index_fold_line(load->index, line, len);
}

/*
 * Rewrites the locked file store->fd holds with only its live create records
 * (temporary file, fsync, rename, fsync of the directory) and switches the
 * store to the new file. On failure the old file and index stay as they were.
 */
static int rewrite_compacted(ca_token_store_t *store, time_t now, char *detail, size_t detail_cap)
{
    ca_token_compact_t c = {.old = store->index, .now = now, .fd = -1};
    size_t tmp_len = strlen(store->path) + sizeof(COMPACT_SUFFIX);
    char *tmp = malloc(tmp_len);
    off_t end;
    struct stat st;
    int ret = CA_E_NOMEM, renamed = 0;

    if (tmp == NULL || (c.buf = malloc(CA_TOKENS_READ_CHUNK)) == NULL || (c.fresh = ca_token_index_new()) == NULL)
        goto Exit;
    snprintf(tmp, tmp_len, "%s%s", store->path, COMPACT_SUFFIX);
    if ((c.fd = mkostemp(tmp, O_CLOEXEC | O_APPEND)) < 0) { /* mode 0600 */
        tmp[0] = '\0';
        ret = io_error(store->path, "temporary file for compaction", detail, detail_cap);
        goto Exit;
    }
    if ((ret = read_lines(store->fd, 0, on_compact_line, &c, &end, &store->bytes_read)) != 0) {
        if (ret == CA_E_IO)
            io_error(store->path, NULL, detail, detail_cap);
        goto Exit;
    }
    if (flush_compact(&c) != 0 || fsync(c.fd) != 0 || fstat(c.fd, &st) != 0) {
        ret = io_error(tmp, NULL, detail, detail_cap);
        goto Exit;
    }
    if (rename(tmp, store->path) != 0) {
        ret = io_error(tmp, "rename", detail, detail_cap);
        goto Exit;
    }
    renamed = 1;
    sync_parent_dir(store->path);
    /* Closing the old file releases its lock: writers waiting on it find it replaced and reopen. */
    close(store->fd);
    ca_token_index_free(store->index);
    store->fd = c.fd;
    store->index = c.fresh;
    store->dev = st.st_dev;
    store->ino = st.st_ino;
    store->folded = c.written;
    c.fd = -1;
    c.fresh = NULL;
    ret = 0;

Exit:
    if (c.fd >= 0)
        close(c.fd);
    if (!renamed && tmp != NULL && tmp[0] != '\0')
        unlink(tmp);
    ca_token_index_free(c.fresh);
    free(c.buf);
    free(tmp);
    return ret;
}

int ca_token_store_open(const char *path, time_t now, ca_token_store_t **out, ca_token_compaction_t *report,
                        char *detail, size_t detail_cap)
{
    ca_token_store_t *store = calloc(1, sizeof(*store));
    ca_token_compaction_t done = {0};
    ca_token_load_t load = {0};
    struct stat st;
    int created, ret = CA_E_NOMEM;

    if (store == NULL)
        goto Exit;
    store->fd = -1;
    if ((store->path = strdup(path)) == NULL || (store->index = ca_token_index_new()) == NULL)
        goto Exit;
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        ret = 0; /* no token made yet: `seam-ca token create` makes the file */
        goto Exit;
    }
    if ((ret = open_locked(path, &store->fd, &created, detail, detail_cap)) != 0)
        goto Exit;
    load.index = store->index;
    if ((ret = read_lines(store->fd, 0, on_load_line, &load, &store->folded, &store->bytes_read)) != 0 ||
        fstat(store->fd, &st) != 0) {
        if (ret == 0 || ret == CA_E_IO)
            ret = io_error(path, NULL, detail, detail_cap);
        goto Exit;
    }
    store->dev = st.st_dev;
    store->ino = st.st_ino;
    done.lines_before = done.lines_after = load.lines;
    done.bad_lines = ca_token_index_bad_lines(store->index);
    /* Every line a distinct live token and no torn tail: nothing to drop, leave the file alone. */
    if (count_live(store->index, now) != load.lines || st.st_size != store->folded) {
        /* A CA that cannot compact (disk full, say) still serves from the file as it is. */
        if (rewrite_compacted(store, now, detail, detail_cap) != 0) {
            done.failed = 1;
        } else {
            done.rewritten = 1;
            done.lines_after = ca_token_index_size(store->index);
        }
    }
    ret = 0;

Exit:
    if (store != NULL && store->fd >= 0)
        flock(store->fd, LOCK_UN);
    if (ret != 0) {
        ca_token_store_free(store);
        store = NULL;
    }
    *out = store;
    if (report != NULL)
        *report = done;
    return ret;
}

/*
 * Locks the current file exclusively and folds what other processes appended.
 * A file replaced while we waited (another CA compacting) is reopened and locked again.
 */
static int lock_current(ca_token_store_t *store, char *detail, size_t detail_cap)
{
    int ret;

    for (int attempt = 0; attempt < LOCK_ATTEMPTS; ++attempt) {
        if ((ret = sync_index(store, detail, detail_cap)) != 0)
            return ret;
        if (store->fd < 0)
            return CA_E_JOIN_TOKEN_UNKNOWN; /* no file: no token was ever made */
        if (flock(store->fd, LOCK_EX) != 0)
            return io_error(store->path, NULL, detail, detail_cap);
        if (is_current(store->fd, store->path)) {
            if ((ret = sync_index(store, detail, detail_cap)) != 0)
                flock(store->fd, LOCK_UN);
            return ret;
        }
        flock(store->fd, LOCK_UN);
    }
    snprintf(detail, detail_cap, "%s: replaced %d times while waiting for its lock", store->path, LOCK_ATTEMPTS);
    return CA_E_IO;
}

int ca_token_store_peek(ca_token_store_t *store, const char *token, size_t len, time_t now, char *spiffe_id,
                        char *detail, size_t detail_cap)
{
    char hash[CA_TOKEN_HASH_HEX + 1];
    ca_token_entry_t entry;
    int ret;

    if (len > CA_TOKEN_MAX || !ca_token_is_join_token(token, len))
        return CA_E_JOIN_TOKEN_UNKNOWN;
    ca_token_hash(token, len, hash);
    ca_token_index_find(store->index, hash, &entry);
    if (entry.state == CA_TOKEN_UNKNOWN) {
        /* Perhaps made after the last read: read what was appended since, never the whole file. */
        if ((ret = sync_index(store, detail, detail_cap)) != 0)
            return ret;
        ca_token_index_find(store->index, hash, &entry);
    }
    if ((ret = ca_token_check(&entry, now)) == 0)
        memcpy(spiffe_id, entry.spiffe_id, strlen(entry.spiffe_id) + 1);
    return ret;
}

int ca_token_store_consume(ca_token_store_t *store, const char *token, size_t len, time_t now,
                           const char *expected_id, char *detail, size_t detail_cap)
{
    char hash[CA_TOKEN_HASH_HEX + 1], line[256];
    ca_token_entry_t entry;
    int ret;

    if (len > CA_TOKEN_MAX || !ca_token_is_join_token(token, len))
        return CA_E_JOIN_TOKEN_UNKNOWN;
    if ((ret = lock_current(store, detail, detail_cap)) != 0)
        return ret;
    ca_token_hash(token, len, hash);
    ca_token_index_find(store->index, hash, &entry);
    if ((ret = ca_token_check(&entry, now)) != 0)
        goto Exit;
    if (strcmp(entry.spiffe_id, expected_id) != 0) {
        snprintf(detail, detail_cap, "the join token is for %.200s", entry.spiffe_id);
        ret = CA_E_IDENTITY_MISMATCH;
        goto Exit;
    }
    int n = snprintf(line, sizeof(line), "{\"op\":\"use\",\"hash\":\"%s\",\"at\":%lld}\n", hash, (long long)now);
    if ((ret = append_record(store->fd, store->path, line, (size_t)n, detail, detail_cap)) != 0)
        goto Exit;
    /*
     * The index learns of the spend at once; the next read folds the same
     * record again, which changes nothing. Should this fail for memory, the
     * record on disk still stops a second consume, which reads it under the lock.
     */
    int folded = ca_token_index_fold_line(store->index, line, (size_t)n - 1);
    (void)folded;

Exit:
    flock(store->fd, LOCK_UN);
    return ret;
}
