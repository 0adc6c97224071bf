// RMSNorm fused with per-token int8 quantization, vectorised where that cannot change a single bit.
//
// Layouts as ob_rms_norm_quantize_rows: x row-major float [tokens][width], q int8 [tokens][width], one scale per
// token. The sum of squares stays a sequential double sum, the reference's exact order (a reordered sum could move
// the scale by an ulp, and activation rounding sits on a knife edge); every later step is element-wise or a max,
// which vectors compute exactly as the scalar loop does.

#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static void row_avx2(const float *x, const float *weight, float eps, size_t width, int8_t *q, float *scale) {
    double sum = 0.0;
    for (size_t i = 0; i < width; i++) sum += (double)x[i] * (double)x[i];
    float inv = 1.0f / sqrtf((float)(sum / (double)width) + eps);
    __m256 vinv = _mm256_set1_ps(inv), sign = _mm256_set1_ps(-0.0f), vmax = _mm256_setzero_ps();
    size_t end = width / 8 * 8;
    for (size_t i = 0; i < end; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
        vmax = _mm256_max_ps(vmax, _mm256_andnot_ps(sign, y));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float max = _mm_cvtss_f32(m);
    for (size_t i = end; i < width; i++) max = fmaxf(max, fabsf(weight[i] * (x[i] * inv)));
    float s = 127.0f / fmaxf(max, 1e-5f);
    __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    for (size_t i = 0; i < end; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_loadu_ps(weight + i), _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
        __m256 r = _mm256_round_ps(_mm256_mul_ps(y, vs), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m256i n = _mm256_cvtps_epi32(_mm256_min_ps(hi, _mm256_max_ps(lo, r)));
        // int32 -> int16 -> int8; the values are already in range, so the saturating packs change nothing.
        __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(n), _mm256_extracti128_si256(n, 1));
        _mm_storel_epi64((__m128i *)(q + i), _mm_packs_epi16(w16, w16));
    }
    for (size_t i = end; i < width; i++) q[i] = (int8_t)fminf(127.0f, fmaxf(-128.0f, rintf(weight[i] * (x[i] * inv) * s)));
    *scale = s;
}
#endif

void ob_rms_norm_quantize(int isa, const float *x, const float *weight, float eps, size_t tokens, size_t width,
                          int8_t *q, float *scales) {
#if defined(__x86_64__)
    if (isa == OB_ISA_AVX2 || isa == OB_ISA_AVX512_VNNI) {
        for (size_t t = 0; t < tokens; t++) row_avx2(x + t * width, weight, eps, width, q + t * width, scales + t);
        return;
    }
#endif
    (void)isa;
    ob_rms_norm_quantize_rows(x, weight, eps, tokens, width, q, scales);
}
