/*
 * A fault injector for tests, loaded with LD_PRELOAD: after a read(2) that
 * filled the caller's whole buffer from a non-blocking socket, the next read of
 * that socket fails with EAGAIN. The kernel does this when its queue held
 * exactly one buffer; here it happens every time, so an event loop that takes
 * "nothing to read yet" for an error shows it at once.
 *
 * SEAM_READ_FAULT_COUNT=PREFIX makes the process write the number of reads it
 * failed to PREFIX.PID when it exits.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define FD_LIMIT 65536

static unsigned char full_read[FD_LIMIT]; /* 1: the last read of this descriptor filled its buffer */
static unsigned long faults;

static ssize_t (*next_read)(int, void *, size_t);

static int is_nonblocking_socket(int fd)
{
    struct stat st;
    int flags;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode) && (flags = fcntl(fd, F_GETFL)) >= 0 &&
           (flags & O_NONBLOCK) != 0;
}

ssize_t read(int fd, void *buf, size_t len)
{
    ssize_t n;

    if (next_read == NULL)
        next_read = (ssize_t(*)(int, void *, size_t))dlsym(RTLD_NEXT, "read");
    if (fd < 0 || fd >= FD_LIMIT)
        return next_read(fd, buf, len);
    /* checked again: the descriptor may have been closed and reused for something else */
    if (__atomic_exchange_n(&full_read[fd], 0, __ATOMIC_RELAXED) && is_nonblocking_socket(fd)) {
        __atomic_add_fetch(&faults, 1, __ATOMIC_RELAXED);
        errno = EAGAIN;
        return -1;
    }
    n = next_read(fd, buf, len);
    if (n > 0 && (size_t)n == len && is_nonblocking_socket(fd))
        __atomic_store_n(&full_read[fd], 1, __ATOMIC_RELAXED);
    return n;
}

__attribute__((destructor)) static void write_fault_count(void)
{
    const char *prefix = getenv("SEAM_READ_FAULT_COUNT");
    char path[4096];
    FILE *fp;

    if (prefix == NULL || snprintf(path, sizeof(path), "%s.%d", prefix, (int)getpid()) >= (int)sizeof(path))
        return;
    if ((fp = fopen(path, "w")) == NULL)
        return;
    fprintf(fp, "%lu\n", __atomic_load_n(&faults, __ATOMIC_RELAXED));
    fclose(fp);
}
