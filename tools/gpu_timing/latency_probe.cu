// The latency floors a one-token decoding step is built from, on the GPU at hand (sm_90 or later): a grid-wide
// barrier, a flag passed between two multiprocessors, a thread-block-cluster barrier, one load from L2, and one
// dependent kernel in a CUDA graph, with and without programmatic dependent launch.
#include <cstdio>
#include <cuda_runtime.h>

#define CHECK(call)                                                                                   \
    do {                                                                                              \
        cudaError_t e = (call);                                                                       \
        if (e != cudaSuccess) {                                                                       \
            printf("%s: %s\n", #call, cudaGetErrorString(e));                                        \
            return 1;                                                                                 \
        }                                                                                             \
    } while (0)

__device__ __forceinline__ unsigned long long load_acquire(const unsigned long long *p) {
    unsigned long long v;
    asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(v) : "l"(p) : "memory");
    return v;
}

__device__ __forceinline__ void add_release(unsigned long long *p) {
    asm volatile("red.release.gpu.global.add.u64 [%0], 1;" ::"l"(p) : "memory");
}

// Every block arrives at a counter that only grows and waits until all have.
__global__ void grid_barriers(unsigned long long *counter, int rounds) {
    for (int r = 1; r <= rounds; r++) {
        __syncthreads();
        if (threadIdx.x == 0) {
            add_release(counter);
            while (load_acquire(counter) < (unsigned long long)r * gridDim.x) {
            }
        }
        __syncthreads();
    }
}

// Two blocks on different multiprocessors (each takes most of one's shared memory) pass a flag back and forth.
__global__ void ping_pong(unsigned long long *flag, int rounds, unsigned *sms) {
    extern __shared__ char hold[];
    if (threadIdx.x) return;
    unsigned sm;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
    sms[blockIdx.x] = sm;
    hold[0] = 0;
    for (int r = 0; r < rounds; r++) {
        const unsigned long long wait = 2ull * r + (blockIdx.x == 0 ? 2 : 1);
        if (blockIdx.x == 0) add_release(flag);
        while (load_acquire(flag) < wait) {
        }
        if (blockIdx.x == 1) add_release(flag);
    }
}

__global__ void cluster_barriers(int rounds) {
    for (int r = 0; r < rounds; r++)
        asm volatile("barrier.cluster.arrive.release.aligned;\n\tbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// One thread follows a chain of indices through a buffer that fits in L2.
__global__ void l2_chase(const unsigned *next, int steps, unsigned *out) {
    unsigned i = 0;
    for (int s = 0; s < steps; s++) asm volatile("ld.global.cg.u32 %0, [%1];" : "=r"(i) : "l"(next + i));
    *out = i;
}

// One link of a chain of kernels: every block reads what the kernel before wrote; the first writes the next value.
__global__ void hop(float *values, int index, int overlap) {
    if (overlap) {
        asm volatile("griddepcontrol.wait;" ::: "memory");
        asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    }
    const float v = __ldcg(values + index);
    if (blockIdx.x == 0 && threadIdx.x == 0) values[index + 1] = v + 1.0f;
}

int main() {
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    const int sms = prop.multiProcessorCount;
    printf("%s, %d multiprocessors\n", prop.name, sms);
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    float ms;
    unsigned long long *counter;
    CHECK(cudaMalloc(&counter, 8));

    const int rounds = 20000;
    for (int blocks : {sms, 2 * sms}) {
        CHECK(cudaMemset(counter, 0, 8));
        cudaEventRecord(start);
        grid_barriers<<<blocks, 256>>>(counter, rounds);
        cudaEventRecord(stop);
        CHECK(cudaEventSynchronize(stop));
        cudaEventElapsedTime(&ms, start, stop);
        printf("grid barrier, %d blocks of 256 threads: %.3f us\n", blocks, ms * 1000 / rounds);
    }

    unsigned *sm_ids;
    CHECK(cudaMalloc(&sm_ids, 8));
    const int hold = (int)prop.sharedMemPerBlockOptin * 3 / 4;
    CHECK(cudaFuncSetAttribute(ping_pong, cudaFuncAttributeMaxDynamicSharedMemorySize, hold));
    CHECK(cudaMemset(counter, 0, 8));
    cudaEventRecord(start);
    ping_pong<<<2, 32, hold>>>(counter, rounds, sm_ids);
    cudaEventRecord(stop);
    CHECK(cudaEventSynchronize(stop));
    cudaEventElapsedTime(&ms, start, stop);
    unsigned ids[2];
    CHECK(cudaMemcpy(ids, sm_ids, 8, cudaMemcpyDeviceToHost));
    printf("flag passed between multiprocessors %u and %u and back: %.3f us\n", ids[0], ids[1], ms * 1000 / rounds);

    for (int size : {2, 8, 16}) {
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(size * (sms / 16));
        config.blockDim = dim3(256);
        cudaLaunchAttribute attribute;
        attribute.id = cudaLaunchAttributeClusterDimension;
        attribute.val.clusterDim.x = size;
        attribute.val.clusterDim.y = 1;
        attribute.val.clusterDim.z = 1;
        config.attrs = &attribute;
        config.numAttrs = 1;
        if (size > 8) cudaFuncSetAttribute(cluster_barriers, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
        cudaEventRecord(start);
        const cudaError_t launched = cudaLaunchKernelEx(&config, cluster_barriers, rounds);
        cudaEventRecord(stop);
        cudaEventSynchronize(stop);
        if (launched != cudaSuccess) {
            printf("cluster barrier, clusters of %d: %s\n", size, cudaGetErrorString(launched));
            cudaGetLastError();
            continue;
        }
        cudaEventElapsedTime(&ms, start, stop);
        printf("cluster barrier, clusters of %d blocks: %.3f us\n", size, ms * 1000 / rounds);
    }

    {
        const int n = 1 << 22, steps = 100000;  // 16 MB, within L2
        unsigned *next, *out;
        CHECK(cudaMalloc(&next, n * 4));
        CHECK(cudaMalloc(&out, 4));
        unsigned *host = new unsigned[n];
        for (int i = 0; i < n; i++) host[i] = (unsigned)((i + 4099 * 32) % n);
        CHECK(cudaMemcpy(next, host, n * 4, cudaMemcpyHostToDevice));
        delete[] host;
        l2_chase<<<1, 1>>>(next, steps, out);
        cudaEventRecord(start);
        l2_chase<<<1, 1>>>(next, steps, out);
        cudaEventRecord(stop);
        CHECK(cudaEventSynchronize(stop));
        cudaEventElapsedTime(&ms, start, stop);
        printf("one load from L2 (ld.global.cg, 16 MB chain): %.1f ns\n", ms * 1e6 / steps);
    }

    const int hops = 2000;
    float *values;
    CHECK(cudaMalloc(&values, (hops + 1) * 4));
    CHECK(cudaMemset(values, 0, (hops + 1) * 4));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (int overlap = 0; overlap < 2; overlap++)
        for (int blocks : {1, sms, 4 * sms}) {
            cudaGraph_t graph;
            cudaGraphExec_t exec;
            CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
            for (int i = 0; i < hops; i++) {
                cudaLaunchConfig_t config = {};
                config.gridDim = dim3(blocks);
                config.blockDim = dim3(256);
                config.stream = stream;
                cudaLaunchAttribute attribute;
                attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
                attribute.val.programmaticStreamSerializationAllowed = 1;
                config.attrs = &attribute;
                config.numAttrs = overlap;
                CHECK(cudaLaunchKernelEx(&config, hop, values, i, overlap));
            }
            CHECK(cudaStreamEndCapture(stream, &graph));
            CHECK(cudaGraphInstantiate(&exec, graph, 0));
            CHECK(cudaGraphLaunch(exec, stream));
            CHECK(cudaStreamSynchronize(stream));
            cudaEventRecord(start, stream);
            CHECK(cudaGraphLaunch(exec, stream));
            cudaEventRecord(stop, stream);
            CHECK(cudaEventSynchronize(stop));
            cudaEventElapsedTime(&ms, start, stop);
            float last;
            CHECK(cudaMemcpy(&last, values + hops, 4, cudaMemcpyDeviceToHost));
            printf("a graph of %d dependent kernels of %d blocks, %s: %.3f us a kernel%s\n", hops, blocks,
                   overlap ? "programmatic dependent launch" : "plain", ms * 1000 / hops,
                   last == (float)hops ? "" : " (WRONG RESULT)");
            cudaGraphExecDestroy(exec);
            cudaGraphDestroy(graph);
        }
    return 0;
}
