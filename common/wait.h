/* Blocking waits with a deadline, for the command-line clients (diagnose, probe). */
#ifndef SEAM_COMMON_WAIT_H
#define SEAM_COMMON_WAIT_H

/* Milliseconds on the monotonic clock. */
long long cmn_monotonic_ms(void);

/* Waits until fd has any of events (POLLIN, POLLOUT) or deadline_ms passes. Returns 1 ready, 0 timeout, -1 error. */
int cmn_wait_fd(int fd, short events, long long deadline_ms);

#endif
