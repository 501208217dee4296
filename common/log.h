/* Diagnostics on stderr: one line each, prefixed with the program's name. */
#ifndef SEAM_COMMON_LOG_H
#define SEAM_COMMON_LOG_H

/* Sets the prefix ("seam-ca") once at start-up, before any thread starts. */
void cmn_log_init(const char *program);

/* The program name given to cmn_log_init() ("seam" before). */
const char *cmn_log_program(void);

/* Writes "PROGRAM: LEVEL: message\n" to stderr in a single write(2). */
void cmn_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cmn_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void cmn_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
