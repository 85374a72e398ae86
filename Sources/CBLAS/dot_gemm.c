/* The avx512 set's kernel for a convolution's weight gradient: C[M×N] += A[M×K] · B[N×K]ᵀ, with A
 * (the output gradient, M = output channels) and B (the im2col matrix, N = C·kh·kw rows) both
 * row-major along a long K (the chunk's output pixels), and both in cache: the chunked-plane convolution hands over
 * one L2-sized chunk at a time. Every C element is a dot product of two contiguous rows, so
 * nothing is packed (OpenBLAS packs all of B first, a third of its time on these shapes).
 *
 * Tile: 4 rows of A × 6 rows of B = 24 zmm accumulators of 16 partial sums; per 16 k, four
 * loads of A and six of B feed 24 FMAs. The 24 sums are reduced once, at the end of K. Tiles
 * at the edges repeat the last row (their extra results are dropped); the K tail is masked. */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { MR = 4, NR = 6 };

/* B's rows are read at b[j] + k, or, given `segments` (an implicit im2col), their 16 floats
 * for k…k+15 at b[j] + segments[k / 16] (K a multiple of 16), or with `width` 8, 8 floats at
 * b[j] + segments[k / 8] and 8 at b[j] + segments[k / 8 + 1]. Always inlined into each caller. */
__attribute__((target("avx512f"), always_inline))
static inline void dot_tile_rows(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                                 int width, float sums[MR][NR]) {
    __m512 acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    /* One loop with masked loads, the last step masked to the K tail: a separate tail step
     * made clang keep the accumulators on the stack. */
    for (int k = 0; k < K; k += 16) {
        __mmask16 lanes = K - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (K - k)) - 1);
        __m512 x[MR];
        for (int i = 0; i < MR; i++) x[i] = _mm512_maskz_loadu_ps(lanes, a[i] + k);
        int at = segments ? segments[k / width] : k, next = segments && width == 8 ? segments[k / 8 + 1] : 0;
        for (int j = 0; j < NR; j++) {
            __m512 y;
            if (segments && width == 8) {
                __m512d low = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(b[j] + at)));
                y = _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(b[j] + next)), 1));
            } else {
                y = _mm512_maskz_loadu_ps(lanes, b[j] + at);
            }
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) sums[i][j] = _mm512_reduce_add_ps(acc[i][j]);
}

__attribute__((target("avx512f")))
static void dot_tile(int K, const float *const a[MR], const float *const b[NR], float sums[MR][NR]) {
    dot_tile_rows(K, a, b, NULL, 16, sums);
}

__attribute__((target("avx512f")))
static void dot_tile_implicit(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                              float sums[MR][NR]) {
    dot_tile_rows(K, a, b, segments, 16, sums);
}

__attribute__((target("avx512f")))
static void dot_tile_implicit8(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                               float sums[MR][NR]) {
    dot_tile_rows(K, a, b, segments, 8, sums);
}

int ollie_avx512_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                           const int *segments, int width, float *C, int ldc) {
    if (K % 16 != 0 || (width != 16 && width != 8)) return -1;
    if (M <= 0 || N <= 0) return 0;
    for (int n0 = 0; n0 < N; n0 += NR) {
        const float *b[NR];
        for (int j = 0; j < NR; j++) b[j] = src + row_offsets[n0 + j < N ? n0 + j : N - 1];
        for (int m0 = 0; m0 < M; m0 += MR) {
            const float *a[MR];
            for (int i = 0; i < MR; i++) a[i] = A + (size_t)(m0 + i < M ? m0 + i : M - 1) * lda;
            float sums[MR][NR];
            if (width == 8) dot_tile_implicit8(K, a, b, segments, sums);
            else dot_tile_implicit(K, a, b, segments, sums);
            for (int i = 0; i < MR && m0 + i < M; i++)
                for (int j = 0; j < NR && n0 + j < N; j++) C[(size_t)(m0 + i) * ldc + n0 + j] += sums[i][j];
        }
    }
    return 0;
}

int ollie_avx512_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc) {
    if (M <= 0 || N <= 0) return 0;
    for (int n0 = 0; n0 < N; n0 += NR) {          /* B's rows stay in L1 across A's row blocks */
        const float *b[NR];
        for (int j = 0; j < NR; j++) b[j] = B + (size_t)(n0 + j < N ? n0 + j : N - 1) * ldb;
        for (int m0 = 0; m0 < M; m0 += MR) {
            const float *a[MR];
            for (int i = 0; i < MR; i++) a[i] = A + (size_t)(m0 + i < M ? m0 + i : M - 1) * lda;
            float sums[MR][NR];
            dot_tile(K, a, b, sums);
            for (int i = 0; i < MR && m0 + i < M; i++)
                for (int j = 0; j < NR && n0 + j < N; j++) C[(size_t)(m0 + i) * ldc + n0 + j] += sums[i][j];
        }
    }
    return 0;
}

#endif
