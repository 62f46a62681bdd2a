#ifndef STATETOOL_BUILD_INFO_H
#define STATETOOL_BUILD_INFO_H

/// The version in the repository's VERSION file, as Package.swift read it.
const char *statetool_build_version(void);

/// The commit the build was made from (12 hex digits), or "unknown" outside a git checkout.
const char *statetool_build_commit(void);

#endif
