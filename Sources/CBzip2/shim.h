#ifndef STATETOOL_CBZIP2_SHIM_H
#define STATETOOL_CBZIP2_SHIM_H

#include <bzlib.h>

#endif
