// Attention over the KV cache for a range of query heads, so threads can split one step's heads.
//
// Layouts as ob_attention: q and out [tokens][heads * head_dim]; k_cache, v_cache [capacity][kv_heads * head_dim].

#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    }
    __m256 acc = _mm256_add_ps(acc0, acc1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float total = _mm_cvtss_f32(s);
    for (; i < n; i++) total += a[i] * b[i];
    return total;
}

AVX2 static inline void axpy_avx2(float a, const float *x, float *y, size_t n) {
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}

AVX2 static void heads_avx2(const float *q, const float *k_cache, const float *v_cache, size_t tokens, size_t heads,
                            size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, size_t h0,
                            size_t h1, float *scores, float *out) {
    size_t group = heads / kv_heads;
    size_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
    for (size_t t = 0; t < tokens; t++) {
        size_t length = (size_t)positions[t] + 1;
        for (size_t h = h0; h < h1; h++) {
            const float *qh = q + t * q_width + h * head_dim;
            size_t kvh = h / group;
            float max = -INFINITY;
            for (size_t p = 0; p < length; p++) {
                scores[p] = dot_avx2(qh, k_cache + p * kv_width + kvh * head_dim, head_dim) * scale;
                max = fmaxf(max, scores[p]);
            }
            float sum = 0.0f;
            for (size_t p = 0; p < length; p++) {
                scores[p] = expf(scores[p] - max);
                sum += scores[p];
            }
            float *o = out + t * q_width + h * head_dim;
            for (size_t i = 0; i < head_dim; i++) o[i] = 0.0f;
            for (size_t p = 0; p < length; p++)
                axpy_avx2(scores[p] / sum, v_cache + p * kv_width + kvh * head_dim, o, head_dim);
        }
    }
}
#endif

void ob_attention_heads(int isa, const float *q, const float *k_cache, const float *v_cache, size_t tokens,
                        size_t heads, size_t kv_heads, size_t head_dim, const int32_t *positions, float scale,
                        size_t head_begin, size_t head_end, float *scores, float *out) {
#if defined(__x86_64__)
    // Head vectors are short (64 to 128 floats) and sit in cache: 256-bit vectors are as fast as 512-bit here.
    if (isa == OB_ISA_AVX2 || isa == OB_ISA_AVX512_VNNI) {
        heads_avx2(q, k_cache, v_cache, tokens, heads, kv_heads, head_dim, positions, scale, head_begin, head_end,
                   scores, out);
        return;
    }
#endif
    (void)isa;
    // The scalar path is the reference's loop restricted to the range (the reference itself writes every head).
    size_t group = heads / kv_heads;
    size_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
    for (size_t t = 0; t < tokens; t++) {
        size_t length = (size_t)positions[t] + 1;
        for (size_t h = head_begin; h < head_end; h++) {
            const float *qh = q + t * q_width + h * head_dim;
            size_t kvh = h / group;
            float max = -INFINITY;
            for (size_t p = 0; p < length; p++) {
                const float *k = k_cache + p * kv_width + kvh * head_dim;
                float dot = 0.0f;
                for (size_t i = 0; i < head_dim; i++) dot += qh[i] * k[i];
                scores[p] = dot * scale;
                max = fmaxf(max, scores[p]);
            }
            float sum = 0.0f;
            for (size_t p = 0; p < length; p++) {
                scores[p] = expf(scores[p] - max);
                sum += scores[p];
            }
            float *o = out + t * q_width + h * head_dim;
            for (size_t i = 0; i < head_dim; i++) o[i] = 0.0f;
            for (size_t p = 0; p < length; p++) {
                const float *v = v_cache + p * kv_width + kvh * head_dim;
                float w = scores[p] / sum;
                for (size_t i = 0; i < head_dim; i++) o[i] += w * v[i];
            }
        }
    }
}
