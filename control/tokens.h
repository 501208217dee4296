/* One-time join tokens: stored only as SHA-256, consumed atomically in an append-only file. */
#ifndef SEAM_CONTROL_TOKENS_H
#define SEAM_CONTROL_TOKENS_H

#include <stddef.h>
#include <time.h>

#include "certs/spiffe.h"

#define CA_TOKEN_PREFIX "seam-join-"           /* tells a join token from a JWT */
#define CA_TOKEN_RANDOM_BYTES 32               /* 256 bits of secret */
#define CA_TOKEN_MAX 128                       /* longest token text accepted */
#define CA_TOKEN_HASH_HEX 64                   /* SHA-256 in hex */
#define CA_TOKEN_HASH_PREFIX 12                /* hex digits of the hash named in the journal */
#define CA_TOKENS_FILE_MAX (8 * 1024 * 1024)   /* largest tokens file read */
#define CA_TOKEN_TTL_DEFAULT 3600              /* a token not used within 1 h expires */

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
 * Folds the file contents text[0..len) into what is known about the token
 * whose hash is hash_hex. Pure. Always returns 0; entry->state says the result.
 */
int ca_tokens_fold(const char *text, size_t len, const char *hash_hex, ca_token_entry_t *entry);

/*
 * Decides whether a folded entry may be used at now: 0, CA_E_JOIN_TOKEN_UNKNOWN,
 * CA_E_JOIN_TOKEN_USED or CA_E_JOIN_TOKEN_EXPIRED. Pure.
 */
int ca_token_check(const ca_token_entry_t *entry, time_t now);

/*
 * Makes a new token for spiffe_id valid for ttl_seconds from now, appends its
 * hash to path (created 0600) under an exclusive lock, fsyncs, and writes the
 * token text into token (CA_TOKEN_MAX + 1 bytes); the caller prints it once
 * and cleanses it. Returns 0 or CA_E_IO / CA_E_INTERNAL with detail.
 */
int ca_tokens_create(const char *path, const char *spiffe_id, long ttl_seconds, time_t now, char *token,
                     char *detail, size_t detail_cap) __attribute__((warn_unused_result));

/*
 * Looks token up in path without changing it. On 0, spiffe_id (CRT_SPIFFE_ID_MAX + 1
 * bytes) receives the identity it was made for. Returns 0 or the
 * ca_token_check() codes (a missing file knows no token), or CA_E_IO with detail.
 */
int ca_tokens_peek(const char *path, const char *token, size_t len, time_t now, char *spiffe_id, char *detail,
                   size_t detail_cap) __attribute__((warn_unused_result));

/*
 * Consumes token atomically: under an exclusive lock on path, folds the file,
 * checks the token is usable and bound to expected_id, appends a use record
 * and fsyncs before returning 0. A second consume, by this or any later
 * process, gets CA_E_JOIN_TOKEN_USED. Returns as ca_tokens_peek, plus
 * CA_E_IDENTITY_MISMATCH.
 */
int ca_tokens_consume(const char *path, const char *token, size_t len, time_t now, const char *expected_id,
                      char *detail, size_t detail_cap) __attribute__((warn_unused_result));

#endif
