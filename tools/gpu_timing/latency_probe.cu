// The latency floors a one-token decoding step is built from, on the GPU at hand (sm_90 or later): a grid-wide
// barrier, a flag passed between two multiprocessors, a thread-block-cluster barrier, one load from L2, one
// dependent kernel in a CUDA graph, with and without programmatic dependent launch, and what launching a step's
// graph costs a decoding loop that waits for each step before launching the next; and a chain of one-block kernels
// shaped like a single-token RMSNorm, built up part by part, so the norm's own time splits into what each part adds.
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

// A block's sum of v in double, as the decoding kernels take it: a warp's shuffles, then the warps' results through
// shared memory, added by a second shuffle tree or (SEQUENTIAL) by every thread one after another.
template <bool SEQUENTIAL> __device__ double block_sum(double v) {
    __shared__ double partial[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double total = 0.0;
    if (SEQUENTIAL) {
        for (int w = 0; w < warps; w++) total += partial[w];
    } else {
        total = lane < warps ? partial[lane] : 0.0;
        for (int o = 16; o; o >>= 1) total += __shfl_xor_sync(0xffffffffu, total, o);
    }
    __syncthreads();
    return total;
}

// The block's largest of values that are not negative, the same way; REDUX: a warp's by one redux.sync on their bits
// (which order such floats as integers do) instead of five shuffles.
template <bool REDUX> __device__ float block_max(float v) {
    __shared__ float partial[32];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = (blockDim.x + 31) >> 5;
    if (REDUX) {
        v = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(v)));
    } else {
        for (int o = 16; o; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    float total = lane < warps ? partial[lane] : 0.0f;
    if (REDUX) {
        total = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(total)));
    } else {
        for (int o = 16; o; o >>= 1) total = fmaxf(total, __shfl_xor_sync(0xffffffffu, total, o));
    }
    __syncthreads();
    return total;
}

// One link of a chain of one-block kernels shaped like a single-token RMSNorm of a row of VALUES * blockDim.x floats:
// each thread reads its VALUES of the row the kernel before wrote and writes them on, so the next kernel needs every
// one. PARTS adds the norm's work one part at a time: 0 copies the row; 1 also sums its squares (double, over the
// block); 2 also finds the largest normalised value (a second block reduction); 3 also multiplies by weights read
// before the wait and writes the int8 row and its scale, as the norm does. REDUX and SEQUENTIAL choose block_max's
// and block_sum's ways.
template <int VALUES, int PARTS, bool REDUX = false, bool SEQUENTIAL = false>
__global__ void row_hop(const float *in, float *out, const float *weight, signed char *q, float *scale) {
    const int n = blockDim.x, width = VALUES * n;
    float g[VALUES], v[VALUES];
#pragma unroll
    for (int k = 0; k < VALUES; k++) g[k] = PARTS >= 3 ? weight[threadIdx.x + k * n] : 1.0f;
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#pragma unroll
    for (int k = 0; k < VALUES; k++) v[k] = __ldcg(in + threadIdx.x + k * n);
    float inv = 1.0f;
    if (PARTS >= 1) {
        double sum = 0.0;
#pragma unroll
        for (int k = 0; k < VALUES; k++) sum += (double)v[k] * (double)v[k];
        sum = block_sum<SEQUENTIAL>(sum);
        inv = 1.0f / sqrtf((float)(sum / width) + 1e-6f);
    }
#pragma unroll
    for (int k = 0; k < VALUES; k++) v[k] = g[k] * (v[k] * inv);
    if (PARTS >= 2) {
        float largest = 0.0f;
#pragma unroll
        for (int k = 0; k < VALUES; k++) largest = fmaxf(largest, fabsf(v[k]));
        largest = block_max<REDUX>(largest);
        const float s = 127.0f / fmaxf(largest, 1e-5f);
        if (PARTS >= 3) {
#pragma unroll
            for (int k = 0; k < VALUES; k++)
                q[threadIdx.x + k * n] = (signed char)fminf(127.0f, fmaxf(-128.0f, rintf(v[k] * s)));
            if (threadIdx.x == 0) *scale = s;
        } else if (threadIdx.x == 0) {
            *scale = s;
        }
    }
#pragma unroll
    for (int k = 0; k < VALUES; k++) out[threadIdx.x + k * n] = v[k];
}

// A product's stand-in for row_chain_pairs: each of the first `live` blocks waits for the kernel before, reads the
// scale it wrote and writes its share of the row; the other blocks return before waiting, as attention's unused
// splits do.
__global__ void spread_row(const float *scale, float *row, int width, int live) {
    if ((int)blockIdx.x >= live) return;
    asm volatile("griddepcontrol.wait;" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
    const int share = (width + live - 1) / live;
    const float s = __ldcg(scale);
    for (int i = threadIdx.x; i < share && blockIdx.x * share + i < width; i += blockDim.x)
        row[blockIdx.x * share + i] = s * (float)(i + 1) * 1e-3f;
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

// What row_chain and row_chain_pairs work on: two 2,560-wide rows (each kernel reads one and writes the other), the
// norm's weights, its int8 row and its scale.
struct RowBuffers {
    static constexpr int width = 2560;
    float *rows = nullptr, *weight = nullptr, *scale = nullptr;
    signed char *q = nullptr;

    int allocate() {
        CHECK(cudaMalloc(&rows, 2 * width * 4));
        CHECK(cudaMalloc(&weight, width * 4));
        CHECK(cudaMalloc(&scale, 4));
        CHECK(cudaMalloc(&q, width));
        float host[2 * width];
        for (int i = 0; i < 2 * width; i++) host[i] = 1.0f + (float)(i % 7) / 8.0f;
        CHECK(cudaMemcpy(rows, host, sizeof host, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(weight, host, width * 4, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(scale, host, 4, cudaMemcpyHostToDevice));
        return 0;
    }

    ~RowBuffers() {
        cudaFree(rows);
        cudaFree(weight);
        cudaFree(scale);
        cudaFree(q);
    }
};

// The kernels `enqueue(stream)` launches, captured as one graph: the best of three timed launches after a first, in
// `best_ms`.
template <typename Enqueue> static int time_graph(Enqueue enqueue, float &best_ms) {
    cudaStream_t stream;
    CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    CHECK(enqueue(stream));
    CHECK(cudaStreamEndCapture(stream, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    cudaEvent_t start, stop;
    CHECK(cudaEventCreate(&start));
    CHECK(cudaEventCreate(&stop));
    best_ms = 1e30f;
    for (int round = 0; round < 3; round++) {
        CHECK(cudaEventRecord(start, stream));
        CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaEventRecord(stop, stream));
        CHECK(cudaEventSynchronize(stop));
        float ms;
        CHECK(cudaEventElapsedTime(&ms, start, stop));
        best_ms = fminf(best_ms, ms);
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
    return 0;
}

// A graph of 2,000 row_hop<VALUES, PARTS, ...> kernels of `threads` threads (VALUES * threads = 2,560), each reading
// the row the one before wrote, with programmatic dependent launch: prints the time a kernel.
template <int VALUES, int PARTS, bool REDUX = false, bool SEQUENTIAL = false>
static int row_chain(int threads, const char *what) {
    const int links = 2000, width = RowBuffers::width;
    RowBuffers b;
    if (b.allocate()) return 1;
    const auto enqueue = [&](cudaStream_t stream) {
        for (int i = 0; i < links; i++) {
            cudaLaunchAttribute attribute;
            const cudaLaunchConfig_t config = chained_launch(1, threads, stream, 1, attribute);
            const float *in = b.rows + (i % 2) * width;
            float *out = b.rows + (1 - i % 2) * width;
            const cudaError_t e = cudaLaunchKernelEx(&config, row_hop<VALUES, PARTS, REDUX, SEQUENTIAL>, in, out,
                                                     (const float *)b.weight, b.q, b.scale);
            if (e != cudaSuccess) return e;
        }
        return cudaSuccess;
    };
    float ms;
    if (time_graph(enqueue, ms)) return 1;
    printf("a chain of one-block kernels over a row of %d floats, %d threads, %s: %.3f us a kernel\n", width, threads,
           what, ms * 1000 / links);
    return 0;
}

// A graph of 1,000 pairs: spread_row over `blocks` blocks of `threads` threads (`live` of them working), then the
// whole 2,560-wide norm (row_hop<8, 3>, one block) over the row they wrote, each waiting for the one before with
// programmatic dependent launch: prints the time a pair, the norm's share of a step as a kernel trace sees it
// (its end minus the end of the product before it) plus the product's.
static int row_chain_pairs(int blocks, int threads, int live) {
    const int pairs = 1000, width = RowBuffers::width;
    RowBuffers b;
    if (b.allocate()) return 1;
    const auto enqueue = [&](cudaStream_t stream) {
        for (int i = 0; i < pairs; i++) {
            cudaLaunchAttribute first, second;
            const cudaLaunchConfig_t spread = chained_launch(blocks, threads, stream, 1, first);
            cudaError_t e = cudaLaunchKernelEx(&spread, spread_row, (const float *)b.scale, b.rows, width, live);
            if (e != cudaSuccess) return e;
            const cudaLaunchConfig_t norm = chained_launch(1, 320, stream, 1, second);
            e = cudaLaunchKernelEx(&norm, row_hop<8, 3>, (const float *)b.rows, b.rows + width,
                                   (const float *)b.weight, b.q, b.scale);
            if (e != cudaSuccess) return e;
        }
        return cudaSuccess;
    };
    float ms;
    if (time_graph(enqueue, ms)) return 1;
    printf("a product of %d blocks of %d threads (%d working) writing a 2,560-wide row, then its norm: %.3f us a "
           "pair\n", blocks, threads, live, ms * 1000 / pairs);
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
    // The 2,560-wide norm of a 2B-4T layer, as rms_norm_quantize_wide takes it (8 values a thread), part by part,
    // and with 4 and 16 values a thread.
    if (row_chain<8, 0>(320, "copied") || row_chain<8, 1>(320, "its squares summed") ||
        row_chain<8, 2>(320, "normalised, its largest value found") ||
        row_chain<8, 3>(320, "weighted and quantized to int8 (the whole norm)") ||
        row_chain<4, 3>(640, "the whole norm") || row_chain<16, 3>(160, "the whole norm") ||
        row_chain<20, 3>(128, "the whole norm") ||
        row_chain<8, 3, true>(320, "the whole norm, a warp's largest value by redux.sync") ||
        row_chain<8, 3, false, true>(320, "the whole norm, the warps' sums added one after another") ||
        row_chain<8, 3, true, true>(320, "the whole norm, both"))
        return 1;
    // The same norm after products of as many blocks as a 2B-4T single-token step's: 1 and one a multiprocessor
    // for comparison, query/key/value (240 of 256 threads), output and down (160), gate and up (432 of 128), and
    // attention's 20 heads of 32 splits, all or 17 working (a 512-position cache).
    const int shapes[][3] = {{1, 256, 1},       {sms, 256, sms},   {160, 256, 160}, {240, 256, 240},
                             {432, 128, 432}, {640, 128, 640}, {640, 128, 340}};
    for (const auto &shape : shapes)
        if (row_chain_pairs(shape[0], shape[1], shape[2])) return 1;
    for (int kernels : {272, 304})
        if (graph_launch_cost(sms, kernels, 3000)) return 1;
    return 0;
}
