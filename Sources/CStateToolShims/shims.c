#include "CStateToolShims.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int statetool_open_unnamed_temporary(const char *directory, unsigned int mode) {
    return open(directory, O_TMPFILE | O_WRONLY | O_CLOEXEC, (mode_t)mode);
}

int statetool_link_unnamed_temporary(int fd, const char *path) {
    char procPath[64];
    snprintf(procPath, sizeof procPath, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, procPath, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}
