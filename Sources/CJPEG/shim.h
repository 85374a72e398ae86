#ifndef CJPEG_SHIM_H
#define CJPEG_SHIM_H
// jpeglib.h uses FILE and size_t without including the headers that define them.
#include <stdio.h>
#include <jpeglib.h>
#include <setjmp.h>
#endif
