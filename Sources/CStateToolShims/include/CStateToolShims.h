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

#endif
