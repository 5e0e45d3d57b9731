/*
 * hook_kread.h - the declarations hook_kread.c's real functions need.
 *
 * Owns: the system headers of every call hook_kread.c interposes and the
 * prototypes glibc exports without declaring them (the pre-2.33 stat
 * names, fortify variants, internal aliases), so that internal.h's
 * NB_REAL_FUNCS can take their types.
 * Must not: define anything.
 */
#ifndef NOBOUNCE_HOOK_KREAD_H
#define NOBOUNCE_HOOK_KREAD_H

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <mntent.h>
#include <netinet/in.h>
#include <pty.h>
#include <threads.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/eventfd.h>
#include <sys/fanotify.h>
#include <sys/inotify.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/sendfile.h>
#include <sys/swap.h>
#include <aio.h>
#include <dirent.h>
#include <limits.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <sys/times.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <utime.h>

int __xstat(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
ssize_t __readlink_chk(const char *path, char *buf, size_t n, size_t buflen);
ssize_t __readlinkat_chk(int dirfd, const char *path, char *buf, size_t n, size_t buflen);
int __ttyname_r_chk(int fd, char *buf, size_t n, size_t nreal);
int __getgroups_chk(int n, gid_t *g, size_t glen);
int capget(void *hdr, void *data);
int capset(void *hdr, const void *data);
int __poll_chk(struct pollfd *f, nfds_t n, int t, size_t flen);
int __ppoll_chk(struct pollfd *f, nfds_t n, const struct timespec *t, const sigset_t *m,
		size_t flen);
mqd_t __mq_open_2(const char *name, int flags);
int arch_prctl(int code, unsigned long addr);
ssize_t __read(int fd, void *buf, size_t n);
ssize_t __write(int fd, const void *buf, size_t n);
ssize_t __pread64(int fd, void *buf, size_t n, off_t off);
ssize_t __pwrite64(int fd, const void *buf, size_t n, off_t off);
ssize_t __recv(int fd, void *buf, size_t n, int flags);
ssize_t __send(int fd, const void *buf, size_t n, int flags);
int __pipe(int p[2]);
char *__getcwd_chk(char *buf, size_t n, size_t buflen);
char *__getwd_chk(char *buf, size_t buflen);
int init_module(void *image, unsigned long len, const char *params);
int delete_module(const char *name, unsigned int flags);
int __xmknod(int ver, const char *p, mode_t m, dev_t *dev);
int __xmknodat(int ver, int d, const char *p, mode_t m, dev_t *dev);
size_t __fread_chk(void *p, size_t plen, size_t size, size_t n, FILE *f);
size_t __fread_unlocked_chk(void *p, size_t plen, size_t size, size_t n, FILE *f);
size_t _IO_fread(void *p, size_t size, size_t n, FILE *f);
size_t _IO_fwrite(const void *p, size_t size, size_t n, FILE *f);
size_t _IO_sgetn(FILE *f, void *p, size_t n);
ssize_t _IO_file_read(FILE *f, void *p, ssize_t n);
ssize_t _IO_file_write(FILE *f, const void *p, ssize_t n);
size_t _IO_file_xsputn(FILE *f, const void *p, size_t n);
int _IO_do_write(FILE *f, const char *p, size_t n);
int pivot_root(const char *p, const char *q);
int bindresvport(int fd, struct sockaddr_in *sin);

#endif
