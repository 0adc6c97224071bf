// The latency floors a one-token decoding step is built from, on the GPU at hand (sm_90 or later): a grid-wide
// barrier, a flag passed between two multiprocessors, a thread-block-cluster barrier, one load from L2, one
// dependent kernel in a CUDA graph, with and without programmatic dependent launch, and what launching a step's
// graph costs a decoding loop that waits for each step before launching the next.
#include <chrono>
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

// A launch of `blocks` blocks of `threads` threads on `stream`; with `overlap`, one that may start before the kernel
// before it ends (programmatic dependent launch), as `attribute`, which must outlive the launch, says.
static cudaLaunchConfig_t chained_launch(int blocks, int threads, cudaStream_t stream, int overlap,
                                         cudaLaunchAttribute &attribute) {
    cudaLaunchConfig_t config = {};
    config.gridDim = dim3(blocks);
    config.blockDim = dim3(threads);
    config.stream = stream;
    attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute.val.programmaticStreamSerializationAllowed = 1;
    config.attrs = &attribute;
    config.numAttrs = overlap;
    return config;
}

// A decoding step's stand-in: every block waits for the kernel before, then spins for `ns` nanoseconds; block 0
// passes the chain's value on.
__global__ void spin(float *values, int index, unsigned long long ns) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    unsigned long long start, now;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
    do asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
    while (now - start < ns);
    if (blockIdx.x == 0 && threadIdx.x == 0) values[index + 1] = __ldcg(values + index) + 1.0f;
}

static double seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A graph of `kernels` spin kernels of `ns` each, launched `steps` times: each step waited for before the next is
// launched (as a decoding loop that needs each step's token does), then each launched before waiting for the one
// before. Prints the time a step, the host's time in cudaGraphLaunch, and the GPU's time from an event recorded
// before the graph to one after it.
static int graph_launch_cost(int sms, int kernels, unsigned long long ns) {
    float *values;
    CHECK(cudaMalloc(&values, (kernels + 1) * 4));
    CHECK(cudaMemset(values, 0, (kernels + 1) * 4));
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < kernels; i++) {
        cudaLaunchAttribute attribute;
        const cudaLaunchConfig_t config = chained_launch(sms, 128, stream, 1, attribute);
        CHECK(cudaLaunchKernelEx(&config, spin, values, i, ns));
    }
    CHECK(cudaStreamEndCapture(stream, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    const int steps = 50;
    cudaEvent_t before[steps], after[steps];
    for (int i = 0; i < steps; i++) {
        CHECK(cudaEventCreate(&before[i]));
        CHECK(cudaEventCreate(&after[i]));
    }
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    for (int ahead = 0; ahead < 2; ahead++) {
        double launching = 0;
        const double start = seconds();
        for (int i = 0; i < steps; i++) {
            CHECK(cudaEventRecord(before[i], stream));
            const double t = seconds();
            CHECK(cudaGraphLaunch(exec, stream));
            launching += seconds() - t;
            CHECK(cudaEventRecord(after[i], stream));
            if (!ahead) CHECK(cudaEventSynchronize(after[i]));
            else if (i > 0) CHECK(cudaEventSynchronize(after[i - 1]));
        }
        CHECK(cudaStreamSynchronize(stream));
        const double total = seconds() - start;
        float gpu = 0;
        for (int i = 1; i < steps; i++) {
            float ms;
            CHECK(cudaEventElapsedTime(&ms, before[i], after[i]));
            gpu += ms;
        }
        printf("a graph of %d kernels of %.1f us (%.0f us of work), %s: %.1f us a step, %.1f us of it in "
               "cudaGraphLaunch, %.1f us on the GPU from before the graph to after it\n",
               kernels, ns / 1000.0, kernels * ns / 1000.0,
               ahead ? "each launched before waiting for the one before" : "each waited for before the next",
               total * 1e6 / steps, launching * 1e6 / steps, gpu * 1000 / (steps - 1));
    }
    for (int i = 0; i < steps; i++) {
        cudaEventDestroy(before[i]);
        cudaEventDestroy(after[i]);
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    cudaFree(values);
    return 0;
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
                cudaLaunchAttribute attribute;
                const cudaLaunchConfig_t config = chained_launch(blocks, 256, stream, overlap, attribute);
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
    for (int kernels : {272, 304})
        if (graph_launch_cost(sms, kernels, 3000)) return 1;
    return 0;
}
