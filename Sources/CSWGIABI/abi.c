/* CSWGIABI holds only the header include/swgi_abi.h; SwiftPM needs one source file. */
#include "swgi_abi.h"
