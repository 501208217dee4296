/* Deadline-bounded poll(2) for the blocking clients. */
#include "common/wait.h"

#include <errno.h>
#include <poll.h>
#include <time.h>

long long cmn_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmn_wait_fd(int fd, short events, long long deadline_ms)
{
    for (;;) {
        long long left = deadline_ms - cmn_monotonic_ms();
        if (left <= 0)
            return 0;
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            continue; /* the loop re-checks the deadline */
        return r < 0 ? -1 : 1;
    }
}
