#ifndef ONEBIT_CCUDA_H
#define ONEBIT_CCUDA_H

// Our own declarations of the parts of the CUDA driver API and NVRTC that onebit uses. Nothing here needs CUDA
// headers or libraries to build: the libraries are opened with dlopen at run time and every function is reached
// through the tables below, so a binary built on a machine without CUDA still runs (on the CPU) everywhere.
//
// Symbol names are the ABI-versioned ones that CUDA 13.0's cuda.h maps the plain names to (cuMemAlloc ->
// cuMemAlloc_v2 ...): dlsym sees the real exported names, not the header's macros.

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;
typedef struct CUevent_st *CUevent;

/// A launch attribute as cuda.h lays it out: the id, padding to 8 bytes, then a 64-byte value union of which we
/// only ever set the first int.
typedef struct {
    int id;
    char pad[4];
    union {
        char bytes[64];
        int flag;
    } value;
} ob_cu_launch_attribute;

/// cuLaunchKernelEx's configuration, laid out as cuda.h's CUlaunchConfig.
typedef struct {
    unsigned int gridDimX, gridDimY, gridDimZ;
    unsigned int blockDimX, blockDimY, blockDimZ;
    unsigned int sharedMemBytes;
    CUstream hStream;
    ob_cu_launch_attribute *attrs;
    unsigned int numAttrs;
} ob_cu_launch_config;

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

enum {
    OB_CUDA_SUCCESS = 0,
    OB_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16,
    OB_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
    OB_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
    OB_CU_STREAM_NON_BLOCKING = 1,
    OB_CU_EVENT_DISABLE_TIMING = 2,
    OB_CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1,
    OB_CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION = 4,
    OB_CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION = 6,
    OB_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    OB_CU_FUNC_ATTRIBUTE_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14,
};

/// The driver functions onebit calls, resolved from libcuda.so.1.
typedef struct {
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuGetErrorString)(CUresult error, const char **text);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int length, CUdevice device);
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
    CUresult (*cuMemFree)(CUdeviceptr pointer);
    CUresult (*cuMemGetInfo)(size_t *free, size_t *total);
    CUresult (*cuMemsetD8Async)(CUdeviceptr pointer, unsigned char value, size_t count, CUstream stream);
    CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr destination, const void *source, size_t bytes, CUstream stream);
    CUresult (*cuMemcpyDtoHAsync)(void *destination, CUdeviceptr source, size_t bytes, CUstream stream);
    CUresult (*cuMemAllocHost)(void **pointer, size_t bytes);
    CUresult (*cuMemFreeHost)(void *pointer);
    CUresult (*cuEventCreate)(CUevent *event, unsigned int flags);
    CUresult (*cuEventRecord)(CUevent event, CUstream stream);
    CUresult (*cuEventSynchronize)(CUevent event);
    CUresult (*cuEventDestroy)(CUevent event);
    CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
    CUresult (*cuLaunchKernel)(CUfunction function, unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                               unsigned int blockX, unsigned int blockY, unsigned int blockZ,
                               unsigned int sharedBytes, CUstream stream, void **parameters, void **extra);
    CUresult (*cuLaunchKernelEx)(const ob_cu_launch_config *config, CUfunction function, void **parameters,
                                 void **extra);
    CUresult (*cuOccupancyMaxPotentialClusterSize)(int *size, CUfunction function, const ob_cu_launch_config *config);
    CUresult (*cuStreamCreate)(CUstream *stream, unsigned int flags);
    CUresult (*cuStreamDestroy)(CUstream stream);
    CUresult (*cuStreamSynchronize)(CUstream stream);
    CUresult (*cuStreamBeginCapture)(CUstream stream, int mode);
    CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph *graph);
    CUresult (*cuGraphInstantiate)(CUgraphExec *exec, CUgraph graph, unsigned long long flags);
    CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream);
    CUresult (*cuGraphExecDestroy)(CUgraphExec exec);
    CUresult (*cuGraphDestroy)(CUgraph graph);
} ob_cuda_driver;

/// The NVRTC functions onebit calls, resolved from libnvrtc.so.13.
typedef struct {
    nvrtcResult (*nvrtcVersion)(int *major, int *minor);
    const char *(*nvrtcGetErrorString)(nvrtcResult result);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *program, const char *source, const char *name, int headerCount,
                                      const char *const *headers, const char *const *includeNames);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *program);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram program, int optionCount, const char *const *options);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram program, char *log);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram program, char *cubin);
} ob_nvrtc;

/// Opens the CUDA driver (`library`, e.g. "libcuda.so.1") and resolves every function of `table`. Returns 0, or
/// -1 with a message in `error` (the dlopen or dlsym error); on failure `table` is left unusable.
int ob_cuda_open_driver(const char *library, ob_cuda_driver *table, char *error, size_t error_size);

/// Launches `function` on `stream` with `parameters` and `shared_bytes` of dynamic shared memory. With
/// `overlap_previous`, the launch may begin before the kernel before it on the stream has finished (Hopper's
/// programmatic dependent launch): the kernel itself must wait for its predecessor (`griddepcontrol.wait`) before it
/// reads or writes anything that kernel touches. With `cluster_x` above 1, every `cluster_x` consecutive blocks along
/// x form a thread block cluster (compute capability 9.0 and later); `grid_x` must be a multiple of it.
CUresult ob_cuda_launch(const ob_cuda_driver *driver, CUfunction function, unsigned int grid_x, unsigned int grid_y,
                        unsigned int block_x, unsigned int shared_bytes, CUstream stream, void **parameters,
                        int overlap_previous, unsigned int cluster_x);

/// Opens NVRTC from the first of `libraries` (`count` names or paths) that loads and resolves every function of
/// `table`. Returns 0, or -1 with the last failure in `error`.
int ob_cuda_open_nvrtc(const char *const *libraries, size_t count, ob_nvrtc *table, char *error,
                       size_t error_size);

#ifdef __cplusplus
}
#endif

#endif
