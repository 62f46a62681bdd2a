#ifndef STATETOOL_SHIMS_H
#define STATETOOL_SHIMS_H

// Linux calls that Swift's Glibc module hides because it is built without
// _GNU_SOURCE, as plain-typed wrappers.

/// open(directory, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode): an unnamed file in
/// `directory` that disappears with the last descriptor unless linked.
/// Returns -1 with errno set (EOPNOTSUPP/EISDIR where the file system lacks it).
int statetool_open_unnamed_temporary(const char *directory, unsigned int mode);

/// Gives the unnamed file `fd` the name `path` (which must not exist), through
/// linkat on /proc/self/fd. Returns -1 with errno set.
int statetool_link_unnamed_temporary(int fd, const char *path);

#include <stddef.h>
#include <sys/types.h>

/// sendmsg of `length` bytes from `data` on `socket`, with `fd_count` file
/// descriptors attached as SCM_RIGHTS (fd_count 0: none), MSG_NOSIGNAL.
/// Returns what sendmsg returns.
ssize_t statetool_send_with_fds(int socket, const void *data, size_t length, const int *fds, int fd_count);

/// recvmsg of up to `length` bytes into `data` from `socket`, with
/// MSG_CMSG_CLOEXEC. Received descriptors go to `fds` (room for
/// `fd_capacity`), their number to `*fd_count`; `*control_truncated` is set
/// when the kernel dropped descriptors for lack of room (MSG_CTRUNC).
/// Returns what recvmsg returns.
ssize_t statetool_receive_with_fds(int socket, void *data, size_t length, int *fds, int fd_capacity,
                                   int *fd_count, int *control_truncated);

/// accept4(socket, NULL, NULL, SOCK_CLOEXEC).
int statetool_accept(int socket);

/// pipe2(fds, O_CLOEXEC).
int statetool_pipe(int fds[2]);

/// fcntl(fd, F_SETPIPE_SZ, size): returns the new capacity, or -1 with errno.
int statetool_set_pipe_size(int fd, int size);

/// splice(in, offset, out, NULL, length, SPLICE_F_MOVE | SPLICE_F_MORE):
/// moves up to `length` bytes from a file (at *offset, which advances) into a pipe.
ssize_t statetool_splice_file_to_pipe(int in, long long *offset, int out, size_t length);

/// name_to_handle_at(fd, "", ..., AT_EMPTY_PATH): the file handle of the file
/// open on `fd`. `*length` is the room in `bytes` on entry (at most 128) and the
/// handle's size on return; `*type` its type. Returns -1 with errno set.
int statetool_file_handle(int fd, int *type, unsigned char *bytes, unsigned int *length);

/// copy_file_range(in, offset, out, NULL, length, 0): copies up to `length`
/// bytes of file `in` from *offset (which advances) to `out` at its file
/// position, inside the kernel. Returns what copy_file_range returns.
ssize_t statetool_copy_file_range(int in, long long *offset, int out, size_t length);

/// openat2(directory, path, {O_PATH | O_NOFOLLOW | O_CLOEXEC, 0,
/// RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS}): opens `path` as an inode
/// location, only if it resolves beneath `directory` (every component, every
/// symbolic link on the way); EXDEV when it would leave it. Returns -1 with
/// errno set.
int statetool_open_path_beneath(int directory, const char *path);

/// open_by_handle_at(mount_fd, handle, O_PATH | O_CLOEXEC): opens the file the
/// file handle (`type`, `length` bytes at `bytes`, at most 128) names on the
/// file system of `mount_fd` (which must not be O_PATH), without opening it for
/// I/O. Needs CAP_DAC_READ_SEARCH (EPERM without it). Returns -1 with errno set
/// (ESTALE when the file system no longer has the file).
int statetool_open_by_handle(int mount_fd, int type, const unsigned char *bytes, unsigned int length);

/// fdopendir(fd): a directory stream that owns `fd` (open for reading) into
/// `*stream`. Returns 0, or -1 with errno set (then `fd` is still the caller's).
int statetool_open_directory_stream(int fd, void **stream);

/// The next entry of `stream` (not "." or ".."): its name (NUL-terminated,
/// at most 255 bytes) into `name`, its inode number and d_type. Returns 1 for
/// an entry, 0 at the end, -1 with errno set.
int statetool_read_directory_entry(void *stream, char name[256], unsigned long long *inode, unsigned char *type);

/// closedir(stream), which closes its descriptor.
void statetool_close_directory_stream(void *stream);

#endif
