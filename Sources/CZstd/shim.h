#ifndef STATETOOL_CZSTD_SHIM_H
#define STATETOOL_CZSTD_SHIM_H

#include <zstd.h>
#include <zstd_errors.h>

#endif
