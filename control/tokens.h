/* One-time join tokens: stored only as SHA-256, consumed atomically in an append-only file. */
#ifndef SEAM_CONTROL_TOKENS_H
#define SEAM_CONTROL_TOKENS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "certs/spiffe.h"

#define CA_TOKEN_PREFIX "seam-join-"           /* tells a join token from a JWT */
#define CA_TOKEN_RANDOM_BYTES 32               /* 256 bits of secret */
#define CA_TOKEN_MAX 128                       /* longest token text accepted */
#define CA_TOKEN_HASH_HEX 64                   /* SHA-256 in hex */
#define CA_TOKEN_HASH_PREFIX 12                /* hex digits of the hash named in the journal */
#define CA_TOKEN_TTL_DEFAULT 3600              /* a token not used within 1 h expires */
#define CA_TOKEN_RECORD_MAX (CRT_SPIFFE_ID_MAX + 256) /* longest record line; longer ones are skipped */
#define CA_TOKENS_READ_CHUNK (64 * 1024)       /* the tokens file is read in pieces this large */

/*
 * The tokens file holds one JSON object per line, appended and fsynced:
 *   {"op":"create","hash":"<sha256 hex>","spiffe_id":"spiffe://...","expires":<unix>}
 *   {"op":"use","hash":"<sha256 hex>","at":<unix>}
 * A token is usable while it has a create record, no use record, and has not
 * expired. Lines that do not parse are counted and skipped: a torn tail line
 * can only be a record that was never acknowledged.
 */

typedef enum { CA_TOKEN_UNKNOWN = 0, CA_TOKEN_UNUSED, CA_TOKEN_USED } ca_token_state_t;

typedef struct st_ca_token_entry_t {
    ca_token_state_t state;
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];
    long long expires;
    size_t bad_lines; /* lines skipped while folding */
} ca_token_entry_t;

/* True when text looks like a join token (starts with CA_TOKEN_PREFIX). */
int ca_token_is_join_token(const char *text, size_t len);

/* Writes the lowercase hex SHA-256 of token[0..len) into hex (CA_TOKEN_HASH_HEX + 1 bytes). */
void ca_token_hash(const char *token, size_t len, char *hex);

/*
 * Decides whether a folded entry may be used at now: 0, CA_E_JOIN_TOKEN_UNKNOWN,
 * CA_E_JOIN_TOKEN_USED or CA_E_JOIN_TOKEN_EXPIRED. Pure.
 */
int ca_token_check(const ca_token_entry_t *entry, time_t now);

/* ---- the index: what the file says about every token, in memory (pure) ---- */

/*
 * A hash table from token hash to its state, built by folding record lines in
 * file order: the first create record of a hash gives its identity and expiry;
 * a use record makes it used for good, even one that comes before its create.
 */
typedef struct st_ca_token_index_t ca_token_index_t;

/* A new, empty index; NULL when out of memory. */
ca_token_index_t *ca_token_index_new(void);

void ca_token_index_free(ca_token_index_t *ix);

/*
 * Folds one record line (without its '\n'); line NULL stands for a line too
 * long to read, which is a bad line. A line that is not a record (bad JSON,
 * unknown op, a hash that is not 64 lowercase hex digits, a create without
 * identity or expiry) is counted in ca_token_index_bad_lines(). Returns 0, or
 * CA_E_NOMEM (the line is then not folded).
 */
int ca_token_index_fold_line(ca_token_index_t *ix, const char *line, size_t len) __attribute__((warn_unused_result));

/* Folds every line of text[0..len); the last one need not end in '\n'. Returns as ca_token_index_fold_line(). */
int ca_token_index_fold_text(ca_token_index_t *ix, const char *text, size_t len) __attribute__((warn_unused_result));

/* What ix knows about the token whose hash is hash_hex; entry->state is CA_TOKEN_UNKNOWN when nothing. */
void ca_token_index_find(const ca_token_index_t *ix, const char *hash_hex, ca_token_entry_t *entry);

/* Tokens (hashes) known, and lines skipped as bad since the index was made. */
size_t ca_token_index_size(const ca_token_index_t *ix);
size_t ca_token_index_bad_lines(const ca_token_index_t *ix);

/*
 * Compaction's rule, asked of the lines of the file ix was folded from, in
 * order: 1 when the line is the first create record of a token that is still
 * usable at now (unused, not expired), which is all a compacted file keeps;
 * 0 for everything else: use records, spent or expired tokens, repeated
 * creates, bad lines (line may be NULL, as in fold_line). Marks what it kept,
 * so ask once per line. Pure.
 */
int ca_token_index_keep_line(ca_token_index_t *ix, const char *line, size_t len, time_t now);

/*
 * Folds text as the index does and reports what it says about hash_hex.
 * Pure. Returns 0, or CA_E_NOMEM.
 */
int ca_tokens_fold(const char *text, size_t len, const char *hash_hex, ca_token_entry_t *entry)
    __attribute__((warn_unused_result));

/* ---- the file ---- */

/*
 * Makes a new token for spiffe_id valid for ttl_seconds from now, appends its
 * hash to path (created 0600) under an exclusive lock, fsyncs, and writes the
 * token text into token (CA_TOKEN_MAX + 1 bytes); the caller prints it once
 * and cleanses it. A file replaced while waiting for the lock (compaction)
 * is reopened, so the record lands in the file the CA reads. Returns 0 or
 * CA_E_IO / CA_E_INTERNAL with detail.
 */
int ca_tokens_create(const char *path, const char *spiffe_id, long ttl_seconds, time_t now, char *token,
                     char *detail, size_t detail_cap) __attribute__((warn_unused_result));

/*
 * The tokens file as a running CA sees it: the index, kept current by reading
 * only what was appended since the last read. Owns its path copy, index and
 * file descriptor. One thread at a time.
 */
typedef struct st_ca_token_store_t ca_token_store_t;

/* What opening a store did to the file. */
typedef struct st_ca_token_compaction_t {
    size_t lines_before;  /* record lines (and bad ones) the file held */
    size_t lines_after;   /* lines the compacted file holds; == lines_before when it was left alone */
    size_t bad_lines;     /* of lines_before, lines that were not records */
    int rewritten;        /* the file was replaced by its compacted copy */
    int failed;           /* compaction was due but failed (detail says why); the file is as it was */
} ca_token_compaction_t;

/*
 * Opens the tokens file at path (which need not exist yet: `seam-ca token
 * create` makes it) and compacts it: under an exclusive lock, when anything
 * can go (spent or expired tokens, bad or torn lines), the live create
 * records are written to a temporary file in the same directory, which is
 * fsynced and renamed over path, and the directory fsynced; otherwise the
 * file is left alone. Then loads the index. On 0 *out is a new store and
 * *report (may be NULL) says what was done; a compaction that fails is not
 * fatal: report->failed is set, detail says why, and the file stays as it
 * was. Returns 0, CA_E_IO with detail (the file cannot be opened, locked or
 * read), or CA_E_NOMEM.
 */
int ca_token_store_open(const char *path, time_t now, ca_token_store_t **out, ca_token_compaction_t *report,
                        char *detail, size_t detail_cap) __attribute__((warn_unused_result));

void ca_token_store_free(ca_token_store_t *store);

/*
 * Looks token up without changing the file. A token the index does not know
 * costs a stat and an fstat, plus a read of only the bytes appended since the
 * last read (tokens made after the CA started); the whole file is read again
 * only when it was replaced or truncated. On 0, spiffe_id
 * (CRT_SPIFFE_ID_MAX + 1 bytes) receives the identity the token was made
 * for. Returns 0 or the ca_token_check() codes, or CA_E_IO / CA_E_NOMEM with detail.
 */
int ca_token_store_peek(ca_token_store_t *store, const char *token, size_t len, time_t now, char *spiffe_id,
                        char *detail, size_t detail_cap) __attribute__((warn_unused_result));

/*
 * Consumes token atomically: under an exclusive lock on the file, catches
 * the index up with what other processes appended, checks the token is
 * usable and bound to expected_id, appends a use record and fsyncs before
 * returning 0. A second consume, by this or any other process sharing the
 * file, gets CA_E_JOIN_TOKEN_USED. Returns as ca_token_store_peek(), plus
 * CA_E_IDENTITY_MISMATCH.
 */
int ca_token_store_consume(ca_token_store_t *store, const char *token, size_t len, time_t now,
                           const char *expected_id, char *detail, size_t detail_cap) __attribute__((warn_unused_result));

/* Bytes read from the file since the store was opened (tests check that lookups read only what was appended). */
uint64_t ca_token_store_bytes_read(const ca_token_store_t *store);

/* The store's index, borrowed. */
const ca_token_index_t *ca_token_store_index(const ca_token_store_t *store);

#endif
