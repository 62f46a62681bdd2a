#ifndef STATETOOL_CLZMA_SHIM_H
#define STATETOOL_CLZMA_SHIM_H

#include <lzma.h>

#endif
