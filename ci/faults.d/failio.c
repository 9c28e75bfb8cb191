/* An LD_PRELOAD shim for ci/faults: makes write, pwrite, fsync and fdatasync fail
   with an errno for files whose path contains a pattern, while a control file
   says so. Not linked into the plugin; built by ci/faults with gcc.

   The control file (FAILIO_CTL, read at every intercepted call) holds one line:
   "<calls> <errno> <pattern>", where <calls> is a comma list of write,pwrite,
   fsync,fdatasync; e.g. "fsync,fdatasync 5 rust_redo.log" fails syncs of the redo
   log with EIO (5). No file, or an empty one: nothing fails. Each failure is
   counted in FAILIO_CTL.count (one byte appended per failure).

   For the sweep (ci/faults --sweep) the line may carry a fourth field <n> and the
   pattern may be a '|' list: "<calls> <errno> <pat1|pat2> <n>". Then every matching
   call is counted in FAILIO_CTL.seen (one byte appended per call) and only the n-th
   one fails; n = 0 fails none (the counting run). read and pread can be named too.

   <errno> -1 is not a failure but a short transfer: the chosen write, pwrite,
   read or pread moves half of the bytes asked for (all of one byte) and returns
   that count, as a full disk, a signal or a pipe may make them do; a caller that
   does not go on with the rest loses or misreads bytes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static __thread int in_shim;

static int match_any(const char *path, char *pats)
{
  for (char *p = pats; p && *p;) {
    char *bar = strchr(p, '|');
    if (bar) *bar = 0;
    int hit = strstr(path, p) != NULL;
    if (bar) *bar = '|';
    if (hit) return 1;
    p = bar ? bar + 1 : NULL;
  }
  return 0;
}

static int should_fail_locked(const char *call, int fd);

static int should_fail(const char *call, int fd)
{
  if (in_shim) return 0;
  in_shim = 1;
  int r = should_fail_locked(call, fd);
  in_shim = 0;
  return r;
}

static int should_fail_locked(const char *call, int fd)
{
  const char *ctl = getenv("FAILIO_CTL");
  if (!ctl) return 0;
  int saved = errno;
  int cfd = open(ctl, O_RDONLY | O_CLOEXEC);
  if (cfd < 0) { errno = saved; return 0; }
  char buf[512];
  ssize_t n = read(cfd, buf, sizeof buf - 1);
  close(cfd);
  if (n <= 0) { errno = saved; return 0; }
  buf[n] = 0;
  char calls[128], pat[256];
  int err;
  long nth = -1;
  int fields = sscanf(buf, "%127s %d %255s %ld", calls, &err, pat, &nth);
  if (fields < 3) { errno = saved; return 0; }
  if (!strstr(calls, call)) { errno = saved; return 0; }
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t m = readlink(link, path, sizeof path - 1);
  if (m <= 0) { errno = saved; return 0; }
  path[m] = 0;
  if (!match_any(path, pat)) { errno = saved; return 0; }
  char cnt[4200];
  if (fields == 4) {
    snprintf(cnt, sizeof cnt, "%s.seen", ctl);
    int s = open(cnt, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    off_t seen = 0;
    if (s >= 0) {
      if (write(s, call, 1) == 1) seen = lseek(s, 0, SEEK_END);
      close(s);
    }
    if (nth <= 0 || seen != nth) { errno = saved; return 0; }
  }
  snprintf(cnt, sizeof cnt, "%s.count", ctl);
  int k = open(cnt, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (k >= 0) { ssize_t r = write(k, call, 1); (void) r; close(k); }
  return err;
}

/* <errno> -1: a short transfer instead of a failure */
#define SHORT (-1)

static size_t short_len(size_t n)
{
  return n > 1 ? n / 2 : n;
}

#define REAL(name) static __typeof__(name) *real_##name; \
  if (!real_##name) real_##name = (__typeof__(name) *) dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *b, size_t n)
{
  REAL(write);
  int e = fd > 2 ? should_fail("write", fd) : 0;
  if (e == SHORT) return real_write(fd, b, short_len(n));
  if (e) { errno = e; return -1; }
  return real_write(fd, b, n);
}

ssize_t pwrite(int fd, const void *b, size_t n, off_t off)
{
  REAL(pwrite);
  int e = should_fail("pwrite", fd);
  if (e == SHORT) return real_pwrite(fd, b, short_len(n), off);
  if (e) { errno = e; return -1; }
  return real_pwrite(fd, b, n, off);
}

ssize_t pwrite64(int fd, const void *b, size_t n, off_t off)
{
  REAL(pwrite64);
  int e = should_fail("pwrite", fd);
  if (e == SHORT) return real_pwrite64(fd, b, short_len(n), off);
  if (e) { errno = e; return -1; }
  return real_pwrite64(fd, b, n, off);
}

ssize_t read(int fd, void *b, size_t n)
{
  REAL(read);
  int e = fd > 2 ? should_fail("read", fd) : 0;
  if (e == SHORT) return real_read(fd, b, short_len(n));
  if (e) { errno = e; return -1; }
  return real_read(fd, b, n);
}

ssize_t pread(int fd, void *b, size_t n, off_t off)
{
  REAL(pread);
  int e = should_fail("pread", fd);
  if (e == SHORT) return real_pread(fd, b, short_len(n), off);
  if (e) { errno = e; return -1; }
  return real_pread(fd, b, n, off);
}

ssize_t pread64(int fd, void *b, size_t n, off_t off)
{
  REAL(pread64);
  int e = should_fail("pread", fd);
  if (e == SHORT) return real_pread64(fd, b, short_len(n), off);
  if (e) { errno = e; return -1; }
  return real_pread64(fd, b, n, off);
}

int fsync(int fd)
{
  REAL(fsync);
  int e = should_fail("fsync", fd);
  if (e == SHORT) e = 0;
  if (e) { errno = e; return -1; }
  return real_fsync(fd);
}

int fdatasync(int fd)
{
  REAL(fdatasync);
  int e = should_fail("fdatasync", fd);
  if (e == SHORT) e = 0;
  if (e) { errno = e; return -1; }
  return real_fdatasync(fd);
}
