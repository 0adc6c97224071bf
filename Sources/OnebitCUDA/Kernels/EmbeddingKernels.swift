extension KernelSource {
    /// Embedding lookup and the NeoX rotary embedding.
    static let embeddingSource = #"""
        // x[t] = table[tokens[t]] in float; blockIdx.y is the token.
        template <int KIND> __device__ void embed_rows(const int *tokens, const void *table, int cols, float *x) {
            const int c = blockIdx.x * blockDim.x + threadIdx.x;
            if (c >= cols) return;
            x[(size_t)blockIdx.y * cols + c] = element<KIND>(table, (size_t)tokens[blockIdx.y] * cols + c);
        }

        extern "C" __global__ void embed_f32(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_F32>(tokens, table, cols, x);
        }
        extern "C" __global__ void embed_f16(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_F16>(tokens, table, cols, x);
        }
        extern "C" __global__ void embed_bf16(const int *tokens, const void *table, int cols, float *x) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            embed_rows<KIND_BF16>(tokens, table, cols, x);
        }

        // The cosine and sine of rotary pair i's angle at `position`, with the same float operations as the CPU
        // reference.
        __device__ __forceinline__ void rope_angle(float theta, int i, int head_dim, float position, float &c, float &s) {
            const float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            const float angle = position * inv_freq;
            c = cosf(angle);
            s = sinf(angle);
        }

        // out[i], out[i + half] = the NeoX rotation of x[i], x[i + half] by the angle of cosine c and sine s (out may
        // be x).
        __device__ __forceinline__ void rotate_pair(const float *x, float *out, int i, int half, float c, float s) {
            const float a = x[i], b = x[i + half];
            out[i] = a * c - b * s;
            out[i + half] = b * c + a * s;
        }

        // NeoX rotary embedding in place, element i paired with i + head_dim / 2; one block per token. Each pair's
        // angle is computed once for all heads (precise powf, cosf and sinf cost more than the rotations).
        extern "C" __global__ void rope_neox(float *x, int heads, int head_dim, const int *positions, float theta) {
            AWAIT_PREVIOUS();
            RELEASE_NEXT();
            __shared__ float cosines[MAX_HEAD_DIM / 2], sines[MAX_HEAD_DIM / 2];
            const int half = head_dim / 2;
            const float pos = (float)positions[blockIdx.x];
            for (int i = threadIdx.x; i < half; i += blockDim.x) rope_angle(theta, i, head_dim, pos, cosines[i], sines[i]);
            __syncthreads();
            for (int k = threadIdx.x; k < heads * half; k += blockDim.x) {
                const int h = k / half, i = k % half;
                float *v = x + ((size_t)blockIdx.x * heads + h) * head_dim;
                rotate_pair(v, v, i, half, cosines[i], sines[i]);
            }
        }
        """#
}
