#include "CStateToolShims.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <stdio.h>
#include <unistd.h>
#include <errno.h>
#include <sys/uio.h>

int statetool_open_unnamed_temporary(const char *directory, unsigned int mode) {
    return open(directory, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
}

int statetool_link_unnamed_temporary(int fd, const char *path) {
    char procPath[64];
    snprintf(procPath, sizeof procPath, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, procPath, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/// Descriptors attached to one message at most (rust-vmm's limit).
#define STATETOOL_MAX_FDS 32

ssize_t statetool_send_with_fds(int socket, const void *data, size_t length, const int *fds, int fd_count) {
    struct iovec iov = { .iov_base = (void *)data, .iov_len = length };
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1 };
    char control[CMSG_SPACE(sizeof(int) * STATETOOL_MAX_FDS)];
    if (fd_count > 0) {
        if (fd_count > STATETOOL_MAX_FDS) {
            errno = EINVAL;
            return -1;
        }
        memset(control, 0, sizeof control);
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * fd_count);
    }
    return sendmsg(socket, &message, MSG_NOSIGNAL);
}

ssize_t statetool_receive_with_fds(int socket, void *data, size_t length, int *fds, int fd_capacity,
                                   int *fd_count, int *control_truncated) {
    struct iovec iov = { .iov_base = data, .iov_len = length };
    char control[CMSG_SPACE(sizeof(int) * STATETOOL_MAX_FDS)];
    struct msghdr message = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control };
    *fd_count = 0;
    *control_truncated = 0;
    ssize_t received = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
    if (received < 0) {
        return received;
    }
    *control_truncated = (message.msg_flags & MSG_CTRUNC) != 0;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        int count = (int)((header->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        const int *received_fds = (const int *)CMSG_DATA(header);
        for (int i = 0; i < count; i++) {
            if (*fd_count < fd_capacity) {
                fds[(*fd_count)++] = received_fds[i];
            } else {
                close(received_fds[i]);
                *control_truncated = 1;
            }
        }
    }
    return received;
}

int statetool_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int statetool_set_pipe_size(int fd, int size) {
    return fcntl(fd, F_SETPIPE_SZ, size);
}

ssize_t statetool_splice_file_to_pipe(int in, long long *offset, int out, size_t length) {
    loff_t position = (loff_t)*offset;
    ssize_t moved = splice(in, &position, out, NULL, length, SPLICE_F_MOVE | SPLICE_F_MORE);
    *offset = (long long)position;
    return moved;
}

int statetool_file_handle(int fd, int *type, unsigned char *bytes, unsigned int *length) {
    union {
        struct file_handle handle;
        char room[sizeof(struct file_handle) + MAX_HANDLE_SZ];
    } buffer;
    int mount_id;
    if (*length > MAX_HANDLE_SZ) *length = MAX_HANDLE_SZ;
    buffer.handle.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", &buffer.handle, &mount_id, AT_EMPTY_PATH) != 0) return -1;
    if (buffer.handle.handle_bytes > *length) {
        errno = EOVERFLOW;
        return -1;
    }
    *type = buffer.handle.handle_type;
    *length = buffer.handle.handle_bytes;
    memcpy(bytes, buffer.handle.f_handle, buffer.handle.handle_bytes);
    return 0;
}

ssize_t statetool_copy_file_range(int in, long long *offset, int out, size_t length) {
    loff_t position = *offset;
    ssize_t copied = copy_file_range(in, &position, out, NULL, length, 0);
    *offset = position;
    return copied;
}

int statetool_accept(int socket) {
    return accept4(socket, NULL, NULL, SOCK_CLOEXEC);
}

#include <linux/openat2.h>
#include <sys/syscall.h>

int statetool_open_path_beneath(int directory, const char *path) {
    struct open_how how = {
        .flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
        .mode = 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, directory, path, &how, sizeof(how));
}

int statetool_open_by_handle(int mount_fd, int type, const unsigned char *bytes, unsigned int length) {
    union {
        struct file_handle handle;
        char room[sizeof(struct file_handle) + MAX_HANDLE_SZ];
    } buffer;
    if (length > MAX_HANDLE_SZ) {
        errno = EINVAL;
        return -1;
    }
    buffer.handle.handle_bytes = length;
    buffer.handle.handle_type = type;
    memcpy(buffer.handle.f_handle, bytes, length);
    return open_by_handle_at(mount_fd, &buffer.handle, O_PATH | O_CLOEXEC);
}

#include <dirent.h>

int statetool_open_directory_stream(int fd, void **stream) {
    *stream = fdopendir(fd);
    return *stream == NULL ? -1 : 0;
}

int statetool_read_directory_entry(void *stream, char name[256], unsigned long long *inode, unsigned char *type) {
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir((DIR *)stream);
        if (entry == NULL) return errno == 0 ? 0 : -1;
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        strncpy(name, entry->d_name, 255);
        name[255] = 0;
        *inode = entry->d_ino;
        *type = entry->d_type;
        return 1;
    }
}

void statetool_close_directory_stream(void *stream) {
    closedir((DIR *)stream);
}
