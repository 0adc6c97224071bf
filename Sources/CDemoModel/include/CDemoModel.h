#ifndef ONEBIT_CDEMOMODEL_H
#define ONEBIT_CDEMOMODEL_H

// The files of onebit's built-in demo model (Models/onebit-demo), compiled into the executable with #embed so a
// static binary needs nothing beside it.

#include <stddef.h>

/// One embedded file: its name in the model directory, its bytes and their count.
typedef struct {
    const char *name;
    const unsigned char *bytes;
    size_t count;
} ob_embedded_file;

/// The embedded files; `*count` receives how many there are.
const ob_embedded_file *ob_demo_model_files(size_t *count);

#endif
