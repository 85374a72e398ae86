/* The avx512 set's kernel for the GEMMs a convolution does as im2col: C[M×N] = op(A)[M×K] · B[K×N]
 * with op(A) small (M·K ≤ a few thousand: the weights) and B long and row-major (the im2col
 * matrix, or the output gradient). OpenBLAS packs all of B before multiplying; here B is read
 * in place, 32 columns at a time, while the packed A panel stays in L1.
 *
 * Tile: 8 rows × 32 columns = 16 zmm accumulators; per k, two loads of B and eight broadcasts
 * of A feed 16 FMAs. Rows past M are zero in the packed panel; columns past N are masked. */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { MR = 8, NR = 32 };

/* 8 floats at p, then 8 at q, in one register. */
__attribute__((target("avx512f"), always_inline))
static inline __m512 eight_and_eight(const float *p, const float *q) {
    __m512d low = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(p)));
    return _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(q)), 1));
}

/* One tile. B's row k starts at B + k·ldb, or, given `row_offsets` (an implicit im2col), at
 * B + row_offsets[k]; the tile's two 16-column halves start `half0` and `half1` floats into each
 * row. Always inlined, so each caller gets its own loop (`row_offsets` is NULL or not there). */
__attribute__((target("avx512f"), always_inline))
static inline void tile_rows(int K, const float *a, const float *B, int ldb, const int *row_offsets, int half0, int half1,
                             const int *eighths, float *C, int ldc, int rows, __mmask16 mask0, __mmask16 mask1,
                             float alpha, float beta, const float *bias, int relu) {
    __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(), c11 = _mm512_setzero_ps();
    __m512 c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(), c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps();
    __m512 c40 = _mm512_setzero_ps(), c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps();
    __m512 c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(), c71 = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const float *b = row_offsets ? B + row_offsets[k] : B + (size_t)k * ldb;
        __m512 b0, b1;
        if (eighths) {
            /* Rows of 8-float segments (8×8 frames): each half of the tile is two of them. */
            b0 = eight_and_eight(b + eighths[0], b + eighths[1]);
            b1 = mask1 ? eight_and_eight(b + eighths[2], b + eighths[3]) : _mm512_setzero_ps();
        } else {
            b0 = _mm512_maskz_loadu_ps(mask0, b + half0);
            b1 = _mm512_maskz_loadu_ps(mask1, b + half1);
        }
        if (!row_offsets) {
            // B is read down K rows far apart: too many streams for the hardware prefetcher, so
            // fetch this row's next 32 columns (the next tile's) ahead of time. (An implicit
            // im2col's rows are a few input rows, shifted: they stay in L1.)
            _mm_prefetch((const char *)(b + 4 * NR), _MM_HINT_T0);
            _mm_prefetch((const char *)(b + 4 * NR + 16), _MM_HINT_T0);
        }
        const float *ak = a + k * MR;
        __m512 x;
        x = _mm512_set1_ps(ak[0]); c00 = _mm512_fmadd_ps(x, b0, c00); c01 = _mm512_fmadd_ps(x, b1, c01);
        x = _mm512_set1_ps(ak[1]); c10 = _mm512_fmadd_ps(x, b0, c10); c11 = _mm512_fmadd_ps(x, b1, c11);
        x = _mm512_set1_ps(ak[2]); c20 = _mm512_fmadd_ps(x, b0, c20); c21 = _mm512_fmadd_ps(x, b1, c21);
        x = _mm512_set1_ps(ak[3]); c30 = _mm512_fmadd_ps(x, b0, c30); c31 = _mm512_fmadd_ps(x, b1, c31);
        x = _mm512_set1_ps(ak[4]); c40 = _mm512_fmadd_ps(x, b0, c40); c41 = _mm512_fmadd_ps(x, b1, c41);
        x = _mm512_set1_ps(ak[5]); c50 = _mm512_fmadd_ps(x, b0, c50); c51 = _mm512_fmadd_ps(x, b1, c51);
        x = _mm512_set1_ps(ak[6]); c60 = _mm512_fmadd_ps(x, b0, c60); c61 = _mm512_fmadd_ps(x, b1, c61);
        x = _mm512_set1_ps(ak[7]); c70 = _mm512_fmadd_ps(x, b0, c70); c71 = _mm512_fmadd_ps(x, b1, c71);
    }
    __m512 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31},
                         {c40, c41}, {c50, c51}, {c60, c61}, {c70, c71}};
    __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *c = C + (size_t)r * ldc;
        __m512 y0 = _mm512_mul_ps(va, acc[r][0]), y1 = _mm512_mul_ps(va, acc[r][1]);
        if (beta != 0.0f) {
            y0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask0, c), y0);
            y1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask1, c + 16), y1);
        }
        if (bias) {   /* a convolution's bias and ReLU, while the tile is in registers */
            __m512 b = _mm512_set1_ps(bias[r]);
            y0 = _mm512_add_ps(y0, b);
            y1 = _mm512_add_ps(y1, b);
            if (relu) {
                y0 = _mm512_max_ps(y0, _mm512_setzero_ps());
                y1 = _mm512_max_ps(y1, _mm512_setzero_ps());
            }
        }
        _mm512_mask_storeu_ps(c, mask0, y0);
        _mm512_mask_storeu_ps(c + 16, mask1, y1);
    }
}

__attribute__((target("avx512f")))
static void tile(int K, const float *a, const float *B, int ldb, float *C, int ldc, int rows,
                 __mmask16 mask0, __mmask16 mask1, float alpha, float beta, const float *bias, int relu) {
    tile_rows(K, a, B, ldb, NULL, 0, 16, NULL, C, ldc, rows, mask0, mask1, alpha, beta, bias, relu);
}

__attribute__((target("avx512f")))
static void tile_implicit(int K, const float *a, const float *B, const int *row_offsets, int half0, int half1,
                          float *C, int ldc, int rows, __mmask16 mask1, const float *bias, int relu) {
    tile_rows(K, a, B, 0, row_offsets, half0, half1, NULL, C, ldc, rows, 0xFFFF, mask1, 1.0f, 0.0f, bias, relu);
}

__attribute__((target("avx512f")))
static void tile_implicit8(int K, const float *a, const float *B, const int *row_offsets, const int *eighths,
                           float *C, int ldc, int rows, __mmask16 mask1, const float *bias, int relu) {
    tile_rows(K, a, B, 0, row_offsets, 0, 0, eighths, C, ldc, rows, 0xFFFF, mask1, 1.0f, 0.0f, bias, relu);
}

int ollie_avx512_skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                       const float *bias, int relu) {
    const float *pack_buffer = ollie_packed_a(MR, transA, M, K, A, lda, sameA);
    if (!pack_buffer) return -1;
    for (int n0 = 0; n0 < N; n0 += NR) {
        int cols = N - n0 < NR ? N - n0 : NR;
        __mmask16 mask0 = cols >= 16 ? 0xFFFF : (__mmask16)((1u << cols) - 1);
        __mmask16 mask1 = cols >= 32 ? 0xFFFF : (cols <= 16 ? 0 : (__mmask16)((1u << (cols - 16)) - 1));
        for (int m0 = 0; m0 < M; m0 += MR) {
            int rows = M - m0 < MR ? M - m0 : MR;
            tile(K, pack_buffer + (size_t)(m0 / MR) * K * MR, B + n0, ldb, C + (size_t)m0 * ldc + n0, ldc,
                 rows, mask0, mask1, alpha, beta, bias ? bias + m0 : NULL, relu);
        }
    }
    return 0;
}

int ollie_avx512_conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                    const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu) {
    if (N % 16 != 0 || (width != 16 && width != 8)) return -1;
    const float *pack_buffer = ollie_packed_a(MR, 0, M, K, A, lda, sameA);
    if (!pack_buffer) return -1;
    if (width == 8) {
        for (int n0 = 0; n0 < N; n0 += NR) {
            int second = n0 + 16 < N;
            int eighths[4] = {segments[n0 / 8], segments[n0 / 8 + 1], second ? segments[n0 / 8 + 2] : 0,
                              second ? segments[n0 / 8 + 3] : 0};
            for (int m0 = 0; m0 < M; m0 += MR) {
                int rows = M - m0 < MR ? M - m0 : MR;
                tile_implicit8(K, pack_buffer + (size_t)(m0 / MR) * K * MR, src, row_offsets, eighths,
                               C + (size_t)m0 * ldc + n0, ldc, rows, second ? (__mmask16)0xFFFF : 0, bias ? bias + m0 : NULL, relu);
            }
        }
        return 0;
    }
    for (int n0 = 0; n0 < N; n0 += NR) {
        int second = n0 + 16 < N;   /* the tile's second 16 columns exist */
        int half0 = segments[n0 / 16], half1 = second ? segments[n0 / 16 + 1] : half0;
        for (int m0 = 0; m0 < M; m0 += MR) {
            int rows = M - m0 < MR ? M - m0 : MR;
            tile_implicit(K, pack_buffer + (size_t)(m0 / MR) * K * MR, src, row_offsets, half0, half1,
                          C + (size_t)m0 * ldc + n0, ldc, rows, second ? (__mmask16)0xFFFF : 0, bias ? bias + m0 : NULL, relu);
        }
    }
    return 0;
}

#endif
