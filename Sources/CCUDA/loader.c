// Resolves the CUDA driver and NVRTC at run time, so onebit builds and runs where neither is installed.

#include "CCUDA.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    size_t offset;
} symbol;

#define DRIVER(field, exported) {exported, offsetof(ob_cuda_driver, field)}
#define NVRTC(field) {#field, offsetof(ob_nvrtc, field)}

static const symbol driver_symbols[] = {
    DRIVER(cuInit, "cuInit"),
    DRIVER(cuDriverGetVersion, "cuDriverGetVersion"),
    DRIVER(cuGetErrorString, "cuGetErrorString"),
    DRIVER(cuDeviceGetCount, "cuDeviceGetCount"),
    DRIVER(cuDeviceGet, "cuDeviceGet"),
    DRIVER(cuDeviceGetName, "cuDeviceGetName"),
    DRIVER(cuDeviceGetAttribute, "cuDeviceGetAttribute"),
    DRIVER(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain"),
    DRIVER(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2"),
    DRIVER(cuCtxSetCurrent, "cuCtxSetCurrent"),
    DRIVER(cuMemAlloc, "cuMemAlloc_v2"),
    DRIVER(cuMemFree, "cuMemFree_v2"),
    DRIVER(cuMemGetInfo, "cuMemGetInfo_v2"),
    DRIVER(cuMemsetD8Async, "cuMemsetD8Async"),
    DRIVER(cuMemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2"),
    DRIVER(cuMemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2"),
    DRIVER(cuMemAllocHost, "cuMemAllocHost_v2"),
    DRIVER(cuMemFreeHost, "cuMemFreeHost"),
    DRIVER(cuEventCreate, "cuEventCreate"),
    DRIVER(cuEventRecord, "cuEventRecord"),
    DRIVER(cuEventSynchronize, "cuEventSynchronize"),
    DRIVER(cuEventDestroy, "cuEventDestroy_v2"),
    DRIVER(cuModuleLoadData, "cuModuleLoadData"),
    DRIVER(cuModuleUnload, "cuModuleUnload"),
    DRIVER(cuModuleGetFunction, "cuModuleGetFunction"),
    DRIVER(cuFuncSetAttribute, "cuFuncSetAttribute"),
    DRIVER(cuLaunchKernel, "cuLaunchKernel"),
    DRIVER(cuLaunchKernelEx, "cuLaunchKernelEx"),
    DRIVER(cuOccupancyMaxPotentialClusterSize, "cuOccupancyMaxPotentialClusterSize"),
    DRIVER(cuStreamCreate, "cuStreamCreate"),
    DRIVER(cuStreamDestroy, "cuStreamDestroy_v2"),
    DRIVER(cuStreamSynchronize, "cuStreamSynchronize"),
    DRIVER(cuStreamBeginCapture, "cuStreamBeginCapture_v2"),
    DRIVER(cuStreamEndCapture, "cuStreamEndCapture"),
    DRIVER(cuGraphInstantiate, "cuGraphInstantiateWithFlags"),
    DRIVER(cuGraphLaunch, "cuGraphLaunch"),
    DRIVER(cuGraphExecDestroy, "cuGraphExecDestroy"),
    DRIVER(cuGraphDestroy, "cuGraphDestroy"),
};

static const symbol nvrtc_symbols[] = {
    NVRTC(nvrtcVersion),
    NVRTC(nvrtcGetErrorString),
    NVRTC(nvrtcCreateProgram),
    NVRTC(nvrtcDestroyProgram),
    NVRTC(nvrtcCompileProgram),
    NVRTC(nvrtcGetProgramLogSize),
    NVRTC(nvrtcGetProgramLog),
    NVRTC(nvrtcGetCUBINSize),
    NVRTC(nvrtcGetCUBIN),
};

static void set_error(char *error, size_t error_size, const char *what, const char *detail) {
    if (error_size == 0) return;
    snprintf(error, error_size, "%s: %s", what, detail ? detail : "unknown error");
}

// Opens `library` and stores each symbol's address at its offset in `table`; closes the library again if any
// symbol is missing, so a partial table is never used.
static int open_library(const char *library, const symbol *symbols, size_t count, void *table, char *error,
                        size_t error_size) {
    void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        set_error(error, error_size, "dlopen", dlerror());
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        void *address = dlsym(handle, symbols[i].name);
        if (!address) {
            set_error(error, error_size, "dlsym", dlerror());
            dlclose(handle);
            return -1;
        }
        memcpy((char *)table + symbols[i].offset, &address, sizeof address);
    }
    return 0;
}

int ob_cuda_open_driver(const char *library, ob_cuda_driver *table, char *error, size_t error_size) {
    return open_library(library, driver_symbols, sizeof driver_symbols / sizeof driver_symbols[0], table, error,
                        error_size);
}

CUresult ob_cuda_launch(const ob_cuda_driver *driver, CUfunction function, unsigned int grid_x, unsigned int grid_y,
                        unsigned int block_x, unsigned int shared_bytes, CUstream stream, void **parameters,
                        int overlap_previous, unsigned int cluster_x) {
    if (!overlap_previous && cluster_x <= 1)
        return driver->cuLaunchKernel(function, grid_x, grid_y, 1, block_x, 1, 1, shared_bytes, stream, parameters,
                                      NULL);
    ob_cu_launch_attribute attributes[2];
    memset(attributes, 0, sizeof attributes);
    unsigned int count = 0;
    if (overlap_previous) {
        attributes[count].id = OB_CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
        attributes[count++].value.flag = 1;
    }
    if (cluster_x > 1) {
        attributes[count].id = OB_CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
        const unsigned int dimensions[3] = {cluster_x, 1, 1};
        memcpy(attributes[count++].value.bytes, dimensions, sizeof dimensions);
    }
    const ob_cu_launch_config config = {grid_x, grid_y, 1, block_x, 1, 1, shared_bytes, stream, attributes, count};
    return driver->cuLaunchKernelEx(&config, function, parameters, NULL);
}

int ob_cuda_open_nvrtc(const char *const *libraries, size_t count, ob_nvrtc *table, char *error,
                       size_t error_size) {
    set_error(error, error_size, "NVRTC", "no library names given");
    for (size_t i = 0; i < count; i++) {
        if (open_library(libraries[i], nvrtc_symbols, sizeof nvrtc_symbols / sizeof nvrtc_symbols[0], table, error,
                         error_size) == 0)
            return 0;
    }
    return -1;
}
