#include "CBuildInfo.h"

// Both come from Package.swift (cSettings); the defaults are for a build without them.
#ifndef STATETOOL_VERSION
#define STATETOOL_VERSION "unknown"
#endif
#ifndef STATETOOL_COMMIT
#define STATETOOL_COMMIT "unknown"
#endif

const char *statetool_build_version(void) { return STATETOOL_VERSION; }
const char *statetool_build_commit(void) { return STATETOOL_COMMIT; }
