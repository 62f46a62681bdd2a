#ifndef STATETOOL_CZLIB_SHIM_H
#define STATETOOL_CZLIB_SHIM_H

#include <zlib.h>

#endif
