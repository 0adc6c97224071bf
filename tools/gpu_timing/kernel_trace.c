// A CUPTI injection library: loaded by the CUDA driver into any program run with
// CUDA_INJECTION64_PATH=<this library>, it writes one CSV line per kernel, memory copy and driver call to the
// file $TRACE_OUT, with their start and end in nanoseconds on the GPU's clock. Kernels launched from CUDA graphs
// are recorded one by one. TRACE_NO_KERNELS=1 records only the copies and driver calls, which costs the program
// far less time. TRACE_NO_CALLS=1 leaves the driver calls out: recording them slows each call, so the host's time
// between steps, and the GPU's wait for it, look longer than they are. timeline.py reads the file.
//
// The record types are CUPTI's newest for kernels and copies; build.sh passes their names, which depend on the
// CUDA version.
#include <cupti.h>
#include <stdio.h>
#include <stdlib.h>

static FILE *out;

static void CUPTIAPI requested(uint8_t **buffer, size_t *size, size_t *records) {
    *size = 16 << 20;
    *buffer = aligned_alloc(8, *size);
    *records = 0;
}

static void CUPTIAPI completed(CUcontext context, uint32_t stream, uint8_t *buffer, size_t size, size_t valid) {
    CUpti_Activity *record = NULL;
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
            const KERNEL_RECORD *k = (const KERNEL_RECORD *)record;
            fprintf(out, "kernel,%llu,%llu,%u,%u,%u,%d,%s\n", (unsigned long long)k->start,
                    (unsigned long long)k->end, k->gridX, k->gridY, k->blockX, k->graphNodeId != 0, k->name);
        } else if (record->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
            const COPY_RECORD *m = (const COPY_RECORD *)record;
            fprintf(out, "copy,%llu,%llu,%llu,%u,0,0,memcpy\n", (unsigned long long)m->start,
                    (unsigned long long)m->end, (unsigned long long)m->bytes, m->copyKind);
        } else if (record->kind == CUPTI_ACTIVITY_KIND_DRIVER) {
            const CUpti_ActivityAPI *a = (const CUpti_ActivityAPI *)record;
            const char *name = "?";
            cuptiGetCallbackName(CUPTI_CB_DOMAIN_DRIVER_API, a->cbid, &name);
            fprintf(out, "call,%llu,%llu,%u,0,0,0,%s\n", (unsigned long long)a->start, (unsigned long long)a->end,
                    a->cbid, name);
        }
    }
    free(buffer);
}

static void finish(void) {
    cuptiActivityFlushAll(1);
    fclose(out);
}

int InitializeInjection(void) {
    const char *path = getenv("TRACE_OUT");
    out = fopen(path ? path : "kernel_trace.csv", "w");
    if (!out) return 0;
    cuptiActivityRegisterCallbacks(requested, completed);
    if (!getenv("TRACE_NO_KERNELS")) cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
    cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY);
    if (!getenv("TRACE_NO_CALLS")) cuptiActivityEnable(CUPTI_ACTIVITY_KIND_DRIVER);
    atexit(finish);
    return 1;
}
