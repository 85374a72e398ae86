/* The avx512 set's kernel for a convolution's weight gradient: C[M×N] += A[M×K] · B[N×K]ᵀ, with A
 * (the output gradient, M = output channels) and B (the im2col matrix, N = C·kh·kw rows) both
 * row-major along a long K (the chunk's output pixels), and both in cache: the chunked-plane
 * convolution hands over one L2-sized chunk at a time. Every C element is a dot product of two
 * contiguous rows, so nothing is packed (OpenBLAS packs all of B first, a third of its time on
 * these shapes).
 *
 * Tile: 4 rows of A × 5 rows of B = 20 zmm accumulators of 16 partial sums; per 16 k, four
 * loads of A and five of B feed 20 FMAs. The 20 sums are reduced once, at the end of K. Tiles
 * at the edges repeat the last row (their extra results are dropped). Whole 16-float steps
 * load unmasked and the K tail is one masked step after them. 4×6 tiles (24 accumulators)
 * made clang spill that way; masked in every step, as they were before, they took 7–40 %
 * longer than these (one thread, Zen 4, the reference and 3-D nets' weight gradients). */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

enum { MR = 4, NR = 5 };

/* out[v] = Σ of the 16 lanes of acc[v], for the MR·NR accumulators of a tile, as one tree over
 * all of them: the 256-bit halves of two accumulators are added in one instruction, then the
 * 128-bit quarters of two such, then the 4 lanes within each quarter. A reduction of its own
 * per accumulator made the reference net's conv3 weight gradient (K = 392) 16 % slower. */
__attribute__((target("avx512f"), always_inline))
static inline void lane_sums(const __m512 *acc, float *out) {
    enum { count = MR * NR };
    _Static_assert(count % 4 == 0, "the tree takes accumulators in fours");
    __m512 halves[count / 2], quarters[count / 4];
    for (int p = 0; p < count / 2; p++)   /* [a's 8 partial sums, b's 8] */
        halves[p] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[2 * p], acc[2 * p + 1], 0x44),
                                  _mm512_shuffle_f32x4(acc[2 * p], acc[2 * p + 1], 0xEE));
    for (int q = 0; q < count / 4; q++) { /* [4 partial sums each of four accumulators] */
        __m512 x = _mm512_add_ps(_mm512_shuffle_f32x4(halves[2 * q], halves[2 * q + 1], 0x88),
                                 _mm512_shuffle_f32x4(halves[2 * q], halves[2 * q + 1], 0xDD));
        x = _mm512_add_ps(x, _mm512_permute_ps(x, 0x4E));
        quarters[q] = _mm512_add_ps(x, _mm512_permute_ps(x, 0xB1));
    }
    for (int q = 0; q < count / 4; q++) {
        float lanes[16];
        _mm512_storeu_ps(lanes, quarters[q]);
        for (int r = 0; r < 4; r++) out[4 * q + r] = lanes[4 * r];
    }
}

/* B's rows are read at b[j] + k, or, given `segments` (an implicit im2col, K a multiple of
 * 16), their 16 floats for k…k+15 at b[j] + segments[k / 16], or with `width` 8, 8 floats at
 * b[j] + segments[k / 8] and 8 at b[j] + segments[k / 8 + 1]. Always inlined into each caller,
 * so that `width` is a constant there. */
__attribute__((target("avx512f"), always_inline))
static inline void dot_tile_rows(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                                 int width, float sums[MR][NR]) {
    __m512 acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm512_setzero_ps();
    int whole = K & ~15;
    for (int k = 0; k < whole; k += 16) {
        __m512 x[MR];
        for (int i = 0; i < MR; i++) x[i] = _mm512_loadu_ps(a[i] + k);
        int at = segments ? segments[k / width] : k, next = segments && width == 8 ? segments[k / 8 + 1] : 0;
        for (int j = 0; j < NR; j++) {
            __m512 y;
            if (segments && width == 8) {
                __m512d low = _mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(b[j] + at)));
                y = _mm512_castpd_ps(_mm512_insertf64x4(low, _mm256_castps_pd(_mm256_loadu_ps(b[j] + next)), 1));
            } else {
                y = _mm512_loadu_ps(b[j] + at);
            }
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    if (whole < K) {   /* the K tail (never in an implicit im2col) */
        __mmask16 lanes = (__mmask16)((1u << (K - whole)) - 1);
        __m512 x[MR];
        for (int i = 0; i < MR; i++) x[i] = _mm512_maskz_loadu_ps(lanes, a[i] + whole);
        for (int j = 0; j < NR; j++) {
            __m512 y = _mm512_maskz_loadu_ps(lanes, b[j] + whole);
            for (int i = 0; i < MR; i++) acc[i][j] = _mm512_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    lane_sums(&acc[0][0], &sums[0][0]);
}

__attribute__((target("avx512f")))
static void dot_tile(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                     float sums[MR][NR]) {
    (void)segments;
    dot_tile_rows(K, a, b, NULL, 16, sums);
}

__attribute__((target("avx512f")))
static void dot_tile_implicit16(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                                float sums[MR][NR]) {
    dot_tile_rows(K, a, b, segments, 16, sums);
}

__attribute__((target("avx512f")))
static void dot_tile_implicit8(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                               float sums[MR][NR]) {
    dot_tile_rows(K, a, b, segments, 8, sums);
}

typedef void dot_tile_fn(int K, const float *const a[MR], const float *const b[NR], const int *segments,
                         float sums[MR][NR]);

/* C += A·Bᵀ over tiles. A's row i starts at A + i·lda; B's row j at B + j·ldb, or, given
 * `row_offsets`, at B + row_offsets[j]. B's rows stay in L1 while A's stream past them, 4 at
 * a time; where two tiles' worth of B fit in L1 beside those 4, each 4 of A meet both before
 * moving on, so A is read from L2 half as often. */
static void dot_gemm(dot_tile_fn *tile, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                     const int *row_offsets, const int *segments, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int tiles = (size_t)(2 * NR + MR) * K * sizeof(float) <= 28 * 1024 ? 2 : 1;
    for (int n00 = 0; n00 < N; n00 += tiles * NR) {
        const float *b[2][NR];
        int held = 0;   /* tiles' worth of B rows held */
        for (int n0 = n00; n0 < N && held < tiles; n0 += NR, held++)
            for (int j = 0; j < NR; j++) {
                int row = n0 + j < N ? n0 + j : N - 1;
                b[held][j] = row_offsets ? B + row_offsets[row] : B + (size_t)row * ldb;
            }
        for (int m0 = 0; m0 < M; m0 += MR) {
            const float *a[MR];
            for (int i = 0; i < MR; i++) a[i] = A + (size_t)(m0 + i < M ? m0 + i : M - 1) * lda;
            for (int t = 0; t < held; t++) {
                int n0 = n00 + t * NR;
                float sums[MR][NR];
                tile(K, a, b[t], segments, sums);
                for (int i = 0; i < MR && m0 + i < M; i++)
                    for (int j = 0; j < NR && n0 + j < N; j++) C[(size_t)(m0 + i) * ldc + n0 + j] += sums[i][j];
            }
        }
    }
}

int ollie_avx512_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                                  const int *segments, int width, float *C, int ldc) {
    if (K % 16 != 0 || (width != 16 && width != 8)) return -1;
    dot_gemm(width == 8 ? dot_tile_implicit8 : dot_tile_implicit16, M, N, K, A, lda, src, 0, row_offsets, segments, C, ldc);
    return 0;
}

int ollie_avx512_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                              float *C, int ldc) {
    dot_gemm(dot_tile, M, N, K, A, lda, B, ldb, NULL, NULL, C, ldc);
    return 0;
}

#endif
