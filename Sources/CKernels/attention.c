// Attention over the KV cache for a range of query heads, so threads can split one step's heads.
//
// Layouts as ob_attention: q and out [tokens][heads * head_dim]; k_cache, v_cache [capacity][kv_heads * head_dim].

#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// expf, with inputs below its underflow threshold answered directly: a peaked softmax sends most scores there,
// and libm's slow path for them costs more than the rest of the loop. The result is the same 0.
static inline float exp_or_zero(float x) { return x < -104.0f ? 0.0f : expf(x); }

// Scores of one query head against `length` cached keys, four keys at a time so four dot products are in flight.
AVX2 static void scores_avx2(const float *qh, const float *k, size_t kv_width, size_t head_dim, size_t length,
                             float scale, float *scores) {
    size_t vec = head_dim / 8 * 8, p = 0;
    for (; p + 4 <= length; p += 4) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (size_t i = 0; i < vec; i += 8) {
            __m256 qv = _mm256_loadu_ps(qh + i);
            for (int j = 0; j < 4; j++)
                acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + (p + (size_t)j) * kv_width + i), acc[j]);
        }
        for (int j = 0; j < 4; j++) {
            float dot = hsum_avx2(acc[j]);
            for (size_t i = vec; i < head_dim; i++) dot += qh[i] * k[(p + (size_t)j) * kv_width + i];
            scores[p + (size_t)j] = dot * scale;
        }
    }
    for (; p < length; p++) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t i = 0; i < vec; i += 8)
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(qh + i), _mm256_loadu_ps(k + p * kv_width + i), acc);
        float dot = hsum_avx2(acc);
        for (size_t i = vec; i < head_dim; i++) dot += qh[i] * k[p * kv_width + i];
        scores[p] = dot * scale;
    }
}

// o = sum_p weights[p] * v_p, 64 output floats at a time held in registers across all positions.
AVX2 static void weighted_values_avx2(const float *weights, const float *v, size_t kv_width, size_t head_dim,
                                      size_t length, float *o) {
    size_t vec = head_dim / 8 * 8;
    for (size_t i0 = 0; i0 < vec; i0 += 64) {
        int n = (int)((vec - i0 < 64 ? vec - i0 : 64) / 8);
        __m256 acc[8];
        for (int j = 0; j < n; j++) acc[j] = _mm256_setzero_ps();
        for (size_t p = 0; p < length; p++) {
            __m256 w = _mm256_set1_ps(weights[p]);
            const float *row = v + p * kv_width + i0;
            for (int j = 0; j < n; j++) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(row + 8 * j), acc[j]);
        }
        for (int j = 0; j < n; j++) _mm256_storeu_ps(o + i0 + 8 * (size_t)j, acc[j]);
    }
    for (size_t i = vec; i < head_dim; i++) {
        float sum = 0.0f;
        for (size_t p = 0; p < length; p++) sum += weights[p] * v[p * kv_width + i];
        o[i] = sum;
    }
}

AVX2 static void heads_avx2(const float *q, const float *k_cache, const float *v_cache, size_t tokens, size_t heads,
                            size_t kv_heads, size_t head_dim, const int32_t *positions, float scale, size_t h0,
                            size_t h1, float *scores, float *out) {
    size_t group = heads / kv_heads;
    size_t q_width = heads * head_dim, kv_width = kv_heads * head_dim;
    for (size_t t = 0; t < tokens; t++) {
        size_t length = (size_t)positions[t] + 1;
        for (size_t h = h0; h < h1; h++) {
            size_t kvh = h / group;
            scores_avx2(q + t * q_width + h * head_dim, k_cache + kvh * head_dim, kv_width, head_dim, length, scale,
                        scores);
            float max = -INFINITY;
            for (size_t p = 0; p < length; p++) max = fmaxf(max, scores[p]);
            float sum = 0.0f;
            for (size_t p = 0; p < length; p++) {
                scores[p] = exp_or_zero(scores[p] - max);
                sum += scores[p];
            }
            for (size_t p = 0; p < length; p++) scores[p] /= sum;
            weighted_values_avx2(scores, v_cache + kvh * head_dim, kv_width, head_dim, length,
                                 out + t * q_width + h * head_dim);
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
