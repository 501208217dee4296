/* The issuance journal: append + fsync per certificate, full read at start. */
#include "control/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/info.h"
#include "common/log.h"
#include "control/error.h"

#define SERIAL_SET_MIN_CAP 1024

/* ---- serial set --------------------------------------------------------- */

void ca_serial_set_init(ca_serial_set_t *set)
{
    memset(set, 0, sizeof(*set));
}

void ca_serial_set_dispose(ca_serial_set_t *set)
{
    free(set->slots);
    free(set->used);
    memset(set, 0, sizeof(*set));
}

static size_t serial_hash(const unsigned char serial[CRT_SERIAL_LEN])
{
    /* Serials are random, so their first bytes are already a good hash. */
    size_t h = 0;
    for (size_t i = 0; i < sizeof(size_t) && i < CRT_SERIAL_LEN; ++i)
        h = (h << 8) | serial[i];
    return h;
}

static size_t find_slot(const ca_serial_set_t *set, const unsigned char serial[CRT_SERIAL_LEN])
{
    size_t i = serial_hash(serial) & (set->cap - 1);
    while (set->used[i] && memcmp(set->slots[i], serial, CRT_SERIAL_LEN) != 0)
        i = (i + 1) & (set->cap - 1);
    return i;
}

static int grow(ca_serial_set_t *set)
{
    ca_serial_set_t bigger = {.cap = set->cap == 0 ? SERIAL_SET_MIN_CAP : set->cap * 2};

    if ((bigger.slots = calloc(bigger.cap, CRT_SERIAL_LEN)) == NULL || (bigger.used = calloc(bigger.cap, 1)) == NULL) {
        free(bigger.slots);
        return -1;
    }
    for (size_t i = 0; i < set->cap; ++i) {
        if (set->used[i]) {
            size_t j = find_slot(&bigger, set->slots[i]);
            memcpy(bigger.slots[j], set->slots[i], CRT_SERIAL_LEN);
            bigger.used[j] = 1;
            ++bigger.count;
        }
    }
    ca_serial_set_dispose(set);
    *set = bigger;
    return 0;
}

int ca_serial_set_add(ca_serial_set_t *set, const unsigned char serial[CRT_SERIAL_LEN])
{
    if ((set->count + 1) * 2 > set->cap && grow(set) != 0)
        return -1;
    size_t i = find_slot(set, serial);
    if (set->used[i])
        return 0;
    memcpy(set->slots[i], serial, CRT_SERIAL_LEN);
    set->used[i] = 1;
    ++set->count;
    return 1;
}

int ca_serial_set_contains(const ca_serial_set_t *set, const unsigned char serial[CRT_SERIAL_LEN])
{
    return set->cap != 0 && set->used[find_slot(set, serial)];
}

/* ---- line format -------------------------------------------------------- */

static int parse_hex_serial(const char *s, size_t len, unsigned char serial[CRT_SERIAL_LEN])
{
    if (len != 2 * CRT_SERIAL_LEN)
        return -1;
    for (size_t i = 0; i < len; ++i) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return -1;
        if (i % 2 == 0)
            serial[i / 2] = (unsigned char)(v << 4);
        else
            serial[i / 2] |= (unsigned char)v;
    }
    return 0;
}

static int read_digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Parses "YYYY-MM-DDTHH:MM:SSZ" exactly, as crt_format_time() writes it. */
static int parse_time(json_t *v, time_t *out)
{
    const char *s;
    struct tm tm = {0};
    int year, mon, day, hour, min, sec;

    if (!json_is_string(v) || json_string_length(v) != 20)
        return -1;
    s = json_string_value(v);
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
        read_digits(s, 4, &year) || read_digits(s + 5, 2, &mon) || read_digits(s + 8, 2, &day) ||
        read_digits(s + 11, 2, &hour) || read_digits(s + 14, 2, &min) || read_digits(s + 17, 2, &sec))
        return -1;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *out = timegm(&tm);
    return 0;
}

static int copy_string(json_t *v, char *buf, size_t cap)
{
    if (!json_is_string(v) || json_string_length(v) >= cap || memchr(json_string_value(v), '\0', json_string_length(v)))
        return -1;
    memcpy(buf, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int ca_journal_parse_line(const char *line, size_t len, ca_journal_record_t *rec, char *why, size_t why_cap)
{
    json_error_t jerr;
    json_t *obj = NULL, *serial;
    int ret = -1;

    memset(rec, 0, sizeof(*rec));
    if (len > CA_JOURNAL_LINE_MAX) {
        snprintf(why, why_cap, "longer than %d bytes", CA_JOURNAL_LINE_MAX);
        goto Exit;
    }
    if ((obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL || !json_is_object(obj)) {
        snprintf(why, why_cap, "not a JSON object%s%s", obj == NULL ? ": " : "", obj == NULL ? jerr.text : "");
        goto Exit;
    }
    serial = json_object_get(obj, "serial");
    if (!json_is_string(serial) ||
        parse_hex_serial(json_string_value(serial), json_string_length(serial), rec->serial) != 0) {
        snprintf(why, why_cap, "\"serial\" is not %d lowercase hex digits", 2 * CRT_SERIAL_LEN);
        goto Exit;
    }
    if (copy_string(json_object_get(obj, "spiffe_id"), rec->spiffe_id, sizeof(rec->spiffe_id)) != 0) {
        snprintf(why, why_cap, "\"spiffe_id\" is missing");
        goto Exit;
    }
    if (copy_string(json_object_get(obj, "credential"), rec->credential, sizeof(rec->credential)) != 0) {
        snprintf(why, why_cap, "\"credential\" is missing");
        goto Exit;
    }
    if (parse_time(json_object_get(obj, "ts"), &rec->issued_at) != 0 ||
        parse_time(json_object_get(obj, "not_before"), &rec->not_before) != 0 ||
        parse_time(json_object_get(obj, "not_after"), &rec->not_after) != 0) {
        snprintf(why, why_cap, "\"ts\", \"not_before\" or \"not_after\" is not an RFC 3339 UTC time");
        goto Exit;
    }
    if (json_object_get(obj, "ref") != NULL && copy_string(json_object_get(obj, "ref"), rec->ref, sizeof(rec->ref)) != 0) {
        snprintf(why, why_cap, "\"ref\" is not a short string");
        goto Exit;
    }
    ret = 0;

Exit:
    json_decref(obj);
    return ret;
}

int ca_journal_format(const ca_journal_record_t *rec, char **out, size_t *out_len)
{
    char serial[2 * CRT_SERIAL_LEN + 1], ts[32], nb[32], na[32];
    json_t *obj;
    char *text;

    crt_serial_hex(rec->serial, serial);
    crt_format_time(rec->issued_at, ts, sizeof(ts));
    crt_format_time(rec->not_before, nb, sizeof(nb));
    crt_format_time(rec->not_after, na, sizeof(na));
    obj = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "ts", ts, "serial", serial, "spiffe_id", rec->spiffe_id,
                    "not_before", nb, "not_after", na, "credential", rec->credential, "ref", rec->ref);
    if (obj == NULL)
        return CA_E_NOMEM;
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL)
        return CA_E_NOMEM;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2);
    if (line == NULL) {
        free(text);
        return CA_E_NOMEM;
    }
    line[n] = '\n';
    line[n + 1] = '\0';
    *out = line;
    *out_len = n + 1;
    return 0;
}

/* ---- file --------------------------------------------------------------- */

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

int ca_journal_open(const char *path, ca_journal_t *journal, char *detail, size_t detail_cap)
{
    FILE *fp = NULL;
    char *line = NULL, why[200];
    size_t line_cap = 0, lineno = 0;
    ssize_t n;
    int last_char = '\n', ret = CA_E_IO;

    memset(journal, 0, sizeof(*journal));
    journal->fd = -1;
    ca_serial_set_init(&journal->serials);
    if ((journal->path = strdup(path)) == NULL) {
        ret = CA_E_NOMEM;
        goto Exit;
    }
    if ((journal->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        goto Exit;
    }
    if ((fp = fopen(path, "r")) == NULL) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        goto Exit;
    }
    while ((n = getline(&line, &line_cap, fp)) > 0) {
        ca_journal_record_t rec;
        size_t len = (size_t)n;
        ++lineno;
        last_char = line[len - 1];
        if (line[len - 1] == '\n')
            --len;
        if (len == 0)
            continue;
        if (ca_journal_parse_line(line, len, &rec, why, sizeof(why)) != 0) {
            cmn_log_warn("journal %s line %zu: corrupt (%s); skipped, left in place", path, lineno, why);
            ++journal->corrupt_lines;
            continue;
        }
        if (ca_serial_set_add(&journal->serials, rec.serial) < 0) {
            ret = CA_E_NOMEM;
            goto Exit;
        }
        ++journal->records;
    }
    if (ferror(fp)) {
        snprintf(detail, detail_cap, "%s: read error", path);
        goto Exit;
    }
    /* A torn last record keeps its bytes; the next one starts on a new line. */
    if (last_char != '\n' && (write_all(journal->fd, "\n", 1) != 0 || fsync(journal->fd) != 0)) {
        snprintf(detail, detail_cap, "%s: %s", path, strerror(errno));
        goto Exit;
    }
    ret = 0;

Exit:
    free(line);
    if (fp != NULL)
        fclose(fp);
    if (ret != 0)
        ca_journal_close(journal);
    return ret;
}

int ca_journal_append(ca_journal_t *journal, const ca_journal_record_t *rec, char *detail, size_t detail_cap)
{
    char *line = NULL;
    size_t len;
    int ret = CA_E_JOURNAL;

    if (ca_journal_format(rec, &line, &len) != 0) {
        snprintf(detail, detail_cap, "%s: out of memory", journal->path);
        goto Exit;
    }
    /* After a failed write the file may end mid-line; start the next record on its own line. */
    if (journal->torn && write_all(journal->fd, "\n", 1) != 0) {
        snprintf(detail, detail_cap, "%s: %s", journal->path, strerror(errno));
        goto Exit;
    }
    journal->torn = 0;
    if (write_all(journal->fd, line, len) != 0 || fsync(journal->fd) != 0) {
        snprintf(detail, detail_cap, "%s: %s", journal->path, strerror(errno));
        journal->torn = 1;
        goto Exit;
    }
    if (ca_serial_set_add(&journal->serials, rec->serial) < 0) {
        snprintf(detail, detail_cap, "%s: out of memory", journal->path);
        goto Exit;
    }
    ++journal->records;
    ret = 0;

Exit:
    free(line);
    return ret;
}

int ca_journal_new_serial(const ca_journal_t *journal, unsigned char serial[CRT_SERIAL_LEN])
{
    /* A collision of 128 random bits is astronomically unlikely; the loop only proves it. */
    for (int attempt = 0; attempt < 16; ++attempt) {
        if (crt_serial_random(serial) != 0)
            return CA_E_INTERNAL;
        if (!ca_serial_set_contains(&journal->serials, serial))
            return 0;
    }
    return CA_E_INTERNAL;
}

void ca_journal_close(ca_journal_t *journal)
{
    if (journal->fd >= 0)
        close(journal->fd);
    journal->fd = -1;
    free(journal->path);
    journal->path = NULL;
    ca_serial_set_dispose(&journal->serials);
}
