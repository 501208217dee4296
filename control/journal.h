/* The issuance journal: one fsynced JSON line per certificate, read back at start so serials never repeat. */
#ifndef SEAM_CONTROL_JOURNAL_H
#define SEAM_CONTROL_JOURNAL_H

#include <stddef.h>
#include <time.h>

#include "certs/issue.h"
#include "certs/spiffe.h"

#define CA_JOURNAL_LINE_MAX (CRT_SPIFFE_ID_MAX + 1024) /* longest line read back */
#define CA_JOURNAL_REF_MAX 300                         /* credential reference (jti, hash prefix, serial) */

/*
 * A journal line:
 *   {"ts":"2026-11-27T19:24:18Z","serial":"<32 hex>","spiffe_id":"spiffe://...",
 *    "not_before":"...","not_after":"...","credential":"jwt","ref":"jti:..."}
 * credential is jwt, join_token, client_cert or serving (the CA's own certificate).
 */
typedef struct st_ca_journal_record_t {
    unsigned char serial[CRT_SERIAL_LEN];
    char spiffe_id[CRT_SPIFFE_ID_MAX + 1];
    time_t issued_at;
    time_t not_before;
    time_t not_after;
    char credential[32];
    char ref[CA_JOURNAL_REF_MAX + 1];
} ca_journal_record_t;

/* A set of serials (open addressing, grows). */
typedef struct st_ca_serial_set_t {
    unsigned char (*slots)[CRT_SERIAL_LEN];
    unsigned char *used;
    size_t cap;
    size_t count;
} ca_serial_set_t;

void ca_serial_set_init(ca_serial_set_t *set);
void ca_serial_set_dispose(ca_serial_set_t *set);
/* Adds serial. Returns 1 if added, 0 if already present, -1 on allocation failure. */
int ca_serial_set_add(ca_serial_set_t *set, const unsigned char serial[CRT_SERIAL_LEN]);
int ca_serial_set_contains(const ca_serial_set_t *set, const unsigned char serial[CRT_SERIAL_LEN]);

/* Parses one line (without its newline). Pure. Returns 0, or -1 with why set. */
int ca_journal_parse_line(const char *line, size_t len, ca_journal_record_t *rec, char *why, size_t why_cap);

/* Formats rec as one line ending in '\n' into a new heap string (caller frees). Returns 0 or CA_E_NOMEM. */
int ca_journal_format(const ca_journal_record_t *rec, char **out, size_t *out_len) __attribute__((warn_unused_result));

/* An open journal: its file and every serial it holds. */
typedef struct st_ca_journal_t {
    int fd;
    char *path;
    ca_serial_set_t serials;
    size_t records;        /* valid records read and appended */
    size_t corrupt_lines;  /* lines skipped at load */
    int torn;              /* the last append failed part-way */
} ca_journal_t;

/*
 * Opens path (created 0600 if missing), reads every line, adds each serial to
 * the set, and reports each corrupt line on stderr by line number; a corrupt
 * line is skipped, never removed. A torn last line gets a newline so the next
 * record starts clean. Returns 0 or CA_E_IO / CA_E_NOMEM with detail.
 */
int ca_journal_open(const char *path, ca_journal_t *journal, char *detail, size_t detail_cap)
    __attribute__((warn_unused_result));

/* Appends rec and fsyncs before returning 0, and adds its serial to the set. Returns 0 or CA_E_JOURNAL. */
int ca_journal_append(ca_journal_t *journal, const ca_journal_record_t *rec, char *detail, size_t detail_cap)
    __attribute__((warn_unused_result));

/* Picks a random serial that the journal has never seen. Returns 0 or CA_E_INTERNAL. */
int ca_journal_new_serial(const ca_journal_t *journal, unsigned char serial[CRT_SERIAL_LEN])
    __attribute__((warn_unused_result));

void ca_journal_close(ca_journal_t *journal);

#endif
