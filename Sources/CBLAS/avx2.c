/* The avx2 set: AVX2 + FMA, 8 float lanes (Haswell and later, every AMD Zen).
 *
 * skinny_sgemm / conv_gemm: C[M×N] = op(A)·B with op(A) small (the weights, packed) and B long
 * and read in place (the im2col matrix, an output gradient, or an implicit im2col). Tile: 6 rows
 * × 16 columns = 12 ymm accumulators; per k, two loads of B and six broadcasts of A feed 12
 * FMAs (16 registers: 12 + 2 + 1). When M is not a multiple of 6, the last panel's R rows run
 * as R-row tiles (tail_rows) rather than as 6 with zero rows; columns past N are masked. Each C element is one FMA chain along K, as in the portable and avx512 sets, so
 * all three give the same bits.
 *
 * sgemm_nt_add / conv_gemm_nt_add: C[M×N] += A·Bᵀ, dot products of rows along a long K, both in
 * cache. Tile: 3 rows of A × 4 rows of B = 12 accumulators of 8 partial sums, reduced once at
 * the end of K. Edge tiles repeat the last row (their extra results are dropped).
 *
 * The passes over memory (im2col, col2im, the ReLU mask, 2×2 max pooling) are the avx512 set's
 * loops at 8 lanes, with AVX2's masked loads and stores where AVX-512 has mask registers. */
#include "kernels_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))
#define AVX2_INLINE __attribute__((target("avx2,fma"), always_inline)) static inline

enum { MR = 6, NR = 16, DOT_MR = 3, DOT_NR = 4 };

/* Lanes 0..<n set (n in 0…8), as a maskload/maskstore mask. */
AVX2_INLINE __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* One 6×16 tile. B's row k starts at B + k·ldb, or, given `row_offsets` (an implicit im2col),
 * at B + row_offsets[k]; the tile's two 8-column halves start `half0` and `half1` floats into
 * each row and hold cols0 and cols1 valid columns. `masked` is a compile-time constant in each
 * caller: 0 when both halves are whole, so the K loop has plain loads. */
AVX2_INLINE void tile_rows(int K, const float *a, const float *B, int ldb, const int *row_offsets, int half0, int half1,
                           float *C, int ldc, int rows, int masked, int cols0, int cols1,
                           float alpha, float beta, const float *bias, int relu, int ahead, int resume, int finish) {
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(), c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    __m256i mask0 = first_lanes(cols0), mask1 = first_lanes(cols1);
    if (resume) {   /* a later part of K: the chains go on from the sums the last part stored */
#define RESUME(r, v0, v1) \
        if (r < rows) { \
            v0 = masked ? _mm256_maskload_ps(C + r * ldc, mask0) : _mm256_loadu_ps(C + r * ldc); \
            v1 = masked ? _mm256_maskload_ps(C + r * ldc + 8, mask1) : _mm256_loadu_ps(C + r * ldc + 8); \
        }
        RESUME(0, c00, c01) RESUME(1, c10, c11) RESUME(2, c20, c21) RESUME(3, c30, c31) RESUME(4, c40, c41) RESUME(5, c50, c51)
#undef RESUME
    }
    for (int k = 0; k < K; k++) {
        const float *b = row_offsets ? B + row_offsets[k] : B + (size_t)k * ldb;
        __m256 b0, b1;
        if (masked) {
            b0 = _mm256_maskload_ps(b + half0, mask0);
            b1 = _mm256_maskload_ps(b + half1, mask1);
        } else {
            b0 = _mm256_loadu_ps(b + half0);
            b1 = _mm256_loadu_ps(b + half1);
        }
        /* B is read down K rows far apart (too many streams for the hardware prefetcher):
         * fetch this row's columns `ahead` floats on (see skinny_sgemm). An implicit im2col's
         * rows stay in L1. */
        if (!row_offsets) _mm_prefetch((const char *)(b + ahead), _MM_HINT_T0);
        const float *ak = a + k * MR;
        __m256 x;
        x = _mm256_broadcast_ss(ak + 0); c00 = _mm256_fmadd_ps(x, b0, c00); c01 = _mm256_fmadd_ps(x, b1, c01);
        x = _mm256_broadcast_ss(ak + 1); c10 = _mm256_fmadd_ps(x, b0, c10); c11 = _mm256_fmadd_ps(x, b1, c11);
        x = _mm256_broadcast_ss(ak + 2); c20 = _mm256_fmadd_ps(x, b0, c20); c21 = _mm256_fmadd_ps(x, b1, c21);
        x = _mm256_broadcast_ss(ak + 3); c30 = _mm256_fmadd_ps(x, b0, c30); c31 = _mm256_fmadd_ps(x, b1, c31);
        x = _mm256_broadcast_ss(ak + 4); c40 = _mm256_fmadd_ps(x, b0, c40); c41 = _mm256_fmadd_ps(x, b1, c41);
        x = _mm256_broadcast_ss(ak + 5); c50 = _mm256_fmadd_ps(x, b0, c50); c51 = _mm256_fmadd_ps(x, b1, c51);
    }
    __m256 acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        float *c = C + (size_t)r * ldc;
        if (!finish) {   /* the sums so far, for the next part of K */
            if (masked) {
                _mm256_maskstore_ps(c, mask0, acc[r][0]);
                _mm256_maskstore_ps(c + 8, mask1, acc[r][1]);
            } else {
                _mm256_storeu_ps(c, acc[r][0]);
                _mm256_storeu_ps(c + 8, acc[r][1]);
            }
            continue;
        }
        __m256 y0 = _mm256_mul_ps(va, acc[r][0]), y1 = _mm256_mul_ps(va, acc[r][1]);
        if (beta != 0.0f) {
            y0 = _mm256_fmadd_ps(vb, masked ? _mm256_maskload_ps(c, mask0) : _mm256_loadu_ps(c), y0);
            y1 = _mm256_fmadd_ps(vb, masked ? _mm256_maskload_ps(c + 8, mask1) : _mm256_loadu_ps(c + 8), y1);
        }
        if (bias) {   /* a convolution's bias and ReLU, while the tile is in registers */
            __m256 b = _mm256_set1_ps(bias[r]);
            y0 = _mm256_add_ps(y0, b);
            y1 = _mm256_add_ps(y1, b);
            if (relu) {
                y0 = _mm256_max_ps(y0, _mm256_setzero_ps());
                y1 = _mm256_max_ps(y1, _mm256_setzero_ps());
            }
        }
        if (masked) {
            _mm256_maskstore_ps(c, mask0, y0);
            _mm256_maskstore_ps(c + 8, mask1, y1);
        } else {
            _mm256_storeu_ps(c, y0);
            _mm256_storeu_ps(c + 8, y1);
        }
    }
}

/* resume: C holds the sums of an earlier part of K, which the chains go on from; finish: this
 * is K's last part (else the sums are stored as they are). Split parts need alpha 1, beta 0. */
AVX2 static void tile_whole(int K, const float *a, const float *B, int ldb, const int *row_offsets, int half0, int half1,
                            float *C, int ldc, int rows, float alpha, float beta, const float *bias, int relu,
                            int resume, int finish) {
    tile_rows(K, a, B, ldb, row_offsets, half0, half1, C, ldc, rows, 0, 8, 8, alpha, beta, bias, relu, 4 * NR, resume, finish);
}

/* tile_whole prefetching one strip ahead, for K ≥ 64 (see skinny_sgemm). */
AVX2 static void tile_whole_near(int K, const float *a, const float *B, int ldb, const int *row_offsets, int half0,
                                 int half1, float *C, int ldc, int rows, float alpha, float beta, const float *bias, int relu,
                                 int resume, int finish) {
    tile_rows(K, a, B, ldb, row_offsets, half0, half1, C, ldc, rows, 0, 8, 8, alpha, beta, bias, relu, NR, resume, finish);
}

AVX2 static void tile_masked(int K, const float *a, const float *B, int ldb, const int *row_offsets, int half0, int half1,
                             float *C, int ldc, int rows, int cols0, int cols1, float alpha, float beta,
                             const float *bias, int relu, int resume, int finish) {
    tile_rows(K, a, B, ldb, row_offsets, half0, half1, C, ldc, rows, 1, cols0, cols1, alpha, beta, bias, relu, NR, resume, finish);
}

/* The last panel when M is not a multiple of 6 (16 and 32 filters leave 4 and 2 rows): a 6-row
 * tile would compute rows that do not exist (a ninth of M = 32's work), so R rows run as
 * R × V vectors of columns, V chosen to keep 8–10 accumulators in flight. The panel is the
 * packed 6-row one (its first R rows); each C element is the same FMA chain along K. The
 * tail tiles run right after the full panels of the same 32 columns, while that block of B
 * is in L1: run as a pass of their own, they streamed B from L2 again, at half the speed of
 * the full tiles (2 of 32 rows took 13 % of the time). */
AVX2_INLINE void tail_rows(const int R, const int V, int K, const float *a, const float *B, int ldb, const int *row_offsets,
                           const int offsets[4], float *C, int ldc, int masked, const int cols[4],
                           float alpha, float beta, const float *bias, int relu, int resume, int finish) {
    __m256 acc[5][4];
    __m256i masks[4];
    int off[4];
    for (int j = 0; j < V; j++) { masks[j] = first_lanes(masked ? cols[j] : 8); off[j] = offsets[j]; }
    for (int r = 0; r < R; r++)
        for (int j = 0; j < V; j++)
            acc[r][j] = !resume ? _mm256_setzero_ps()
                      : masked ? _mm256_maskload_ps(C + (size_t)r * ldc + 8 * j, masks[j]) : _mm256_loadu_ps(C + (size_t)r * ldc + 8 * j);
    for (int k = 0; k < K; k++) {
        const float *b = row_offsets ? B + row_offsets[k] : B + (size_t)k * ldb;
        __m256 bv[4];
        for (int j = 0; j < V; j++) bv[j] = masked ? _mm256_maskload_ps(b + off[j], masks[j]) : _mm256_loadu_ps(b + off[j]);
        const float *ak = a + k * MR;
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_broadcast_ss(ak + r);
            for (int j = 0; j < V; j++) acc[r][j] = _mm256_fmadd_ps(x, bv[j], acc[r][j]);
        }
    }
    __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    for (int r = 0; r < R; r++) {
        float *c = C + (size_t)r * ldc;
        for (int j = 0; j < V; j++) {
            if (masked && cols[j] == 0) continue;
            __m256 y = finish ? _mm256_mul_ps(va, acc[r][j]) : acc[r][j];
            if (!finish) {
                if (masked) _mm256_maskstore_ps(c + 8 * j, masks[j], y);
                else _mm256_storeu_ps(c + 8 * j, y);
                continue;
            }
            if (beta != 0.0f) y = _mm256_fmadd_ps(vb, masked ? _mm256_maskload_ps(c + 8 * j, masks[j]) : _mm256_loadu_ps(c + 8 * j), y);
            if (bias) {
                y = _mm256_add_ps(y, _mm256_set1_ps(bias[r]));
                if (relu) y = _mm256_max_ps(y, _mm256_setzero_ps());
            }
            if (masked) _mm256_maskstore_ps(c + 8 * j, masks[j], y);
            else _mm256_storeu_ps(c + 8 * j, y);
        }
    }
}

/* One function per (R, V), each with its loops unrolled and its accumulators in registers. */
#define TAIL(R, V) \
    AVX2 static void tail_##R##_whole(int K, const float *a, const float *B, int ldb, const int *row_offsets, const int offsets[4], \
                                      float *C, int ldc, float alpha, float beta, const float *bias, int relu, \
                                      int resume, int finish) { \
        static const int whole[4] = {8, 8, 8, 8}; \
        tail_rows(R, V, K, a, B, ldb, row_offsets, offsets, C, ldc, 0, whole, alpha, beta, bias, relu, resume, finish); \
    } \
    AVX2 static void tail_##R##_masked(int K, const float *a, const float *B, int ldb, const int *row_offsets, const int offsets[4], \
                                       float *C, int ldc, const int cols[4], float alpha, float beta, const float *bias, int relu, \
                                       int resume, int finish) { \
        tail_rows(R, V, K, a, B, ldb, row_offsets, offsets, C, ldc, 1, cols, alpha, beta, bias, relu, resume, finish); \
    }
TAIL(1, 4)
TAIL(2, 4)
TAIL(3, 2)
TAIL(4, 2)
TAIL(5, 2)
#undef TAIL

/* Vectors of columns per tail tile, by its rows: a divisor of a block's 4. */
static int tail_vectors(int rows) { return rows <= 2 ? 4 : 2; }

enum { BLOCK = 2 * NR };   /* columns per block: two strips of full tiles, then the tail's */

/* The parts K runs in, each over a whole block of columns before the next: a part's packed A
 * (6 rows) and its rows of a strip of B stay in L1 across the block's row tiles. Up to
 * K_MAX at once; above, equal parts (K = 864: two of 432; one pass ran at 84 GFLOP/s, against
 * 90 for K = 432, on Zen 3). Later parts resume each chain from the stored sums: the same bits. */
enum { K_MAX = 480 };
static int k_part(int K) {
    int parts = (K + K_MAX - 1) / K_MAX;
    return (K + parts - 1) / parts;
}

/* The tail panel (rows M − rem … M − 1) over columns begin ..< N. B's column j of the tile
 * starts at B + offsets: j for a plain B, or the implicit im2col's segment of column j. */
static void tail_panel(int rem, int begin, int N, int K, const float *a, const float *B, int ldb,
                       const int *row_offsets, const int *segments, int width, float *C, int ldc,
                       float alpha, float beta, const float *bias, int relu, int resume, int finish) {
    int V = tail_vectors(rem), step = 8 * V;
    for (int n0 = begin; n0 < N; n0 += step) {
        int offsets[4] = {0, 0, 0, 0}, cols[4] = {0, 0, 0, 0}, whole = 1;
        for (int j = 0; j < V; j++) {
            int first = n0 + 8 * j, left = N - first;
            cols[j] = left >= 8 ? 8 : left > 0 ? left : 0;
            if (cols[j] < 8) whole = 0;
            if (cols[j] > 0) offsets[j] = segments ? segments[first / width] + first % width : first;
        }
        float *c = C + n0;
        switch (rem) {
#define CASE(R) case R: \
            if (whole) tail_##R##_whole(K, a, B, ldb, row_offsets, offsets, c, ldc, alpha, beta, bias, relu, resume, finish); \
            else tail_##R##_masked(K, a, B, ldb, row_offsets, offsets, c, ldc, cols, alpha, beta, bias, relu, resume, finish); \
            break;
        CASE(1) CASE(2) CASE(3) CASE(4) CASE(5)
#undef CASE
        }
    }
}

static int skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                        const float *bias, int relu) {
    const float *panels = ollie_packed_a(MR, transA, M, K, A, lda, sameA);
    if (!panels) return -1;
    int rem = M % MR, full = M - rem;
    /* Tiles prefetch B's rows some strips ahead: four for a short K, but one from K = 64 on,
     * where four strips' lines (K each) outgrow L1 and are evicted before use (conv3's
     * forward GEMM, K = 288: 72 GFLOP/s four strips ahead, 80 one ahead). The distance is
     * a constant in each tile function: passed as a variable, the K = 32 GEMMs ran 5 %
     * slower. */
    int near = K >= 64;
    int step = K >= 64 ? BLOCK : N;   /* a short K's tail ran faster as one pass (conv1: 5 %) */
    for (int block = 0; block < N; block += step) {
        int end = N - block < step ? N : block + step;
        for (int n0 = block; n0 < end; n0 += NR) {
            int cols = N - n0 < NR ? N - n0 : NR;
            for (int m0 = 0; m0 < full; m0 += MR) {
                const float *a = panels + (size_t)(m0 / MR) * K * MR;
                float *c = C + (size_t)m0 * ldc + n0;
                const float *b = bias ? bias + m0 : NULL;
                if (cols == NR && near) tile_whole_near(K, a, B + n0, ldb, NULL, 0, 8, c, ldc, MR, alpha, beta, b, relu, 0, 1);
                else if (cols == NR) tile_whole(K, a, B + n0, ldb, NULL, 0, 8, c, ldc, MR, alpha, beta, b, relu, 0, 1);
                else tile_masked(K, a, B + n0, ldb, NULL, 0, 8, c, ldc, MR, cols < 8 ? cols : 8, cols > 8 ? cols - 8 : 0,
                                 alpha, beta, b, relu, 0, 1);
            }
        }
        if (rem) tail_panel(rem, block, end, K, panels + (size_t)(full / MR) * K * MR, B, ldb, NULL, NULL, 8,
                            C + (size_t)full * ldc, ldc, alpha, beta, bias ? bias + full : NULL, relu, 0, 1);
    }
    return 0;
}

/* Widths: any multiple of 8 (the table offers 16 and 8); columns 8 at a time. */
static int conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                     const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu) {
    if (N % 8 != 0 || width < 8 || width % 8 != 0) return -1;
    const float *panels = ollie_packed_a(MR, 0, M, K, A, lda, sameA);
    if (!panels) return -1;
    int rem = M % MR, full = M - rem;
    int part = k_part(K);
    for (int block = 0; block < N; block += BLOCK) {
        int end = N - block < BLOCK ? N : block + BLOCK;
        for (int k0 = 0; k0 < K; k0 += part) {
            int kn = K - k0 < part ? K - k0 : part, resume = k0 > 0, finish = k0 + kn == K;
            const int *offsets = row_offsets + k0;
            for (int n0 = block; n0 < end; n0 += NR) {
                int second = n0 + 8 < N;   /* the tile's second 8 columns exist */
                int half0 = segments[n0 / width] + n0 % width;
                int half1 = second ? segments[(n0 + 8) / width] + (n0 + 8) % width : half0;
                for (int m0 = 0; m0 < full; m0 += MR) {
                    const float *a = panels + (size_t)(m0 / MR) * K * MR + (size_t)k0 * MR;
                    float *c = C + (size_t)m0 * ldc + n0;
                    const float *b = bias ? bias + m0 : NULL;
                    if (second) tile_whole(kn, a, src, 0, offsets, half0, half1, c, ldc, MR, 1.0f, 0.0f, b, relu, resume, finish);
                    else tile_masked(kn, a, src, 0, offsets, half0, half1, c, ldc, MR, 8, 0, 1.0f, 0.0f, b, relu, resume, finish);
                }
            }
            if (rem) tail_panel(rem, block, end, kn, panels + (size_t)(full / MR) * K * MR + (size_t)k0 * MR, src, 0, offsets,
                                segments, width, C + (size_t)full * ldc, ldc, 1.0f, 0.0f, bias ? bias + full : NULL, relu,
                                resume, finish);
        }
    }
    return 0;
}

/* Σ of a register's 8 lanes, always in the same order. */
AVX2_INLINE float lane_sum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One 3×4 tile of dot products. Rows are read at a[i] + k and b[j] + k, or, given `segments`
 * (an implicit im2col, K a multiple of 8), one side's at row + segments[k / width] + k % width:
 * B's, or A's when `implicit_a`. */
AVX2_INLINE void dot_tile_rows(int K, const float *const a[DOT_MR], const float *const b[DOT_NR], const int *segments,
                               int width, int implicit_a, float sums[DOT_MR][DOT_NR]) {
    __m256 acc[DOT_MR][DOT_NR];
    for (int i = 0; i < DOT_MR; i++)
        for (int j = 0; j < DOT_NR; j++) acc[i][j] = _mm256_setzero_ps();
    int whole = K & ~7;
    for (int k = 0; k < whole; k += 8) {
        int at = segments ? segments[k / width] + k % width : k;
        int at_a = implicit_a ? at : k, at_b = implicit_a ? k : at;
        __m256 x[DOT_MR];
        for (int i = 0; i < DOT_MR; i++) x[i] = _mm256_loadu_ps(a[i] + at_a);
        for (int j = 0; j < DOT_NR; j++) {
            __m256 y = _mm256_loadu_ps(b[j] + at_b);
            for (int i = 0; i < DOT_MR; i++) acc[i][j] = _mm256_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    if (whole < K) {   /* the K tail (never in an implicit im2col) */
        __m256i lanes = first_lanes(K - whole);
        __m256 x[DOT_MR];
        for (int i = 0; i < DOT_MR; i++) x[i] = _mm256_maskload_ps(a[i] + whole, lanes);
        for (int j = 0; j < DOT_NR; j++) {
            __m256 y = _mm256_maskload_ps(b[j] + whole, lanes);
            for (int i = 0; i < DOT_MR; i++) acc[i][j] = _mm256_fmadd_ps(x[i], y, acc[i][j]);
        }
    }
    for (int i = 0; i < DOT_MR; i++)
        for (int j = 0; j < DOT_NR; j++) sums[i][j] = lane_sum(acc[i][j]);
}

AVX2 static void dot_tile(int K, const float *const a[DOT_MR], const float *const b[DOT_NR], float sums[DOT_MR][DOT_NR]) {
    dot_tile_rows(K, a, b, NULL, 8, 0, sums);
}

/* One function per width of the table's conv_widths and implicit side, so that k / width is a
 * shift: as a variable it was a division in every step of the K loop (the 3-D net's conv2
 * weight gradient: 84 GFLOP/s on Zen 3, one thread; 89 with the shift). */
#define DOT_IMPLICIT(name, width, implicit_a) \
    AVX2 static void name(int K, const float *const a[DOT_MR], const float *const b[DOT_NR], const int *segments, \
                          float sums[DOT_MR][DOT_NR]) { \
        dot_tile_rows(K, a, b, segments, width, implicit_a, sums); \
    }
DOT_IMPLICIT(dot_tile_implicit16, 16, 0)
DOT_IMPLICIT(dot_tile_implicit8, 8, 0)
DOT_IMPLICIT(dot_tile_implicit16_a, 16, 1)
DOT_IMPLICIT(dot_tile_implicit8_a, 8, 1)
#undef DOT_IMPLICIT

/* One register tile: C's rows m0… and columns n0… += the dot products of a's and b's rows
 * (their ends repeat the last row; the extra results are dropped). */
static void dot_block(int M, int N, int K, int m0, int n0, const float *const a[DOT_MR], const float *const b[DOT_NR],
                      const int *segments, int width, int implicit_a, float *C, int ldc, int transposed) {
    float sums[DOT_MR][DOT_NR];
    if (!segments) dot_tile(K, a, b, sums);
    else if (implicit_a) {
        if (width == 16) dot_tile_implicit16_a(K, a, b, segments, sums);
        else dot_tile_implicit8_a(K, a, b, segments, sums);
    } else {
        if (width == 16) dot_tile_implicit16(K, a, b, segments, sums);
        else dot_tile_implicit8(K, a, b, segments, sums);
    }
    for (int i = 0; i < DOT_MR && m0 + i < M; i++)
        for (int j = 0; j < DOT_NR && n0 + j < N; j++) {
            if (transposed) C[(size_t)(n0 + j) * ldc + m0 + i] += sums[i][j];
            else C[(size_t)(m0 + i) * ldc + n0 + j] += sums[i][j];
        }
}

/* C += A·Bᵀ over tiles. A's row i starts at A + i·lda, B's row j at B + j·ldb; with segments,
 * the implicit side's rows (B's, or A's when `implicit_a`) start at that side's base +
 * row_offsets[row]. transposed: C is given as Cᵀ (element i, j at C[j·ldc + i]).
 * B's rows stay in L1 while A's stream past them, 3 at a time; where two tiles' worth of B
 * (8 rows) fit in L1 beside those 3, each 3 of A meet both before moving on, so A is read
 * from L2 half as often (the reference net's conv3 weight gradient, K = 392: 75 → 80
 * GFLOP/s; with rows too long for L1 it was slower, so then one tile's worth). */
static void dot_gemm(int M, int N, int K, const float *A, int lda, const float *B, int ldb, const int *row_offsets,
                     const int *segments, int width, int implicit_a, float *C, int ldc, int transposed) {
    int tiles = (size_t)(2 * DOT_NR + DOT_MR) * K * sizeof(float) <= 28 * 1024 ? 2 : 1;
    for (int n00 = 0; n00 < N; n00 += tiles * DOT_NR) {
        const float *b[2][DOT_NR];
        int held = 0;   /* tiles' worth of B rows held */
        for (int n0 = n00; n0 < N && held < tiles; n0 += DOT_NR, held++)
            for (int j = 0; j < DOT_NR; j++) {
                int row = n0 + j < N ? n0 + j : N - 1;
                b[held][j] = segments && !implicit_a ? B + row_offsets[row] : B + (size_t)row * ldb;
            }
        for (int m0 = 0; m0 < M; m0 += DOT_MR) {
            const float *a[DOT_MR];
            for (int i = 0; i < DOT_MR; i++) {
                int row = m0 + i < M ? m0 + i : M - 1;
                a[i] = segments && implicit_a ? A + row_offsets[row] : A + (size_t)row * lda;
            }
            for (int t = 0; t < held; t++)
                dot_block(M, N, K, m0, n00 + t * DOT_NR, a, b[t], segments, width, implicit_a, C, ldc, transposed);
        }
    }
}

/* Rows a tile edge computes for m rows in tiles of `tile` (the last tile repeats a row). */
static int tiled(int m, int tile) { return (m + tile - 1) / tile * tile; }

/* Whether Cᵀ = B·Aᵀ computes fewer repeated rows at its tile edges than C = A·Bᵀ. They are the
 * same dot products (x·y = y·x lane by lane: the same bits), so the product runs the way round
 * with less waste: M = 16, N = 9 (a first convolution's weight gradient) wasted a third of the
 * work as 3×4 tiles, none as Cᵀ's. */
static int transposed_wastes_less(int M, int N) {
    return (long)tiled(N, DOT_MR) * tiled(M, DOT_NR) < (long)tiled(M, DOT_MR) * tiled(N, DOT_NR);
}

static int sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (M <= 0 || N <= 0) return 0;
    if (transposed_wastes_less(M, N)) dot_gemm(N, M, K, B, ldb, A, lda, NULL, NULL, 8, 0, C, ldc, 1);
    else dot_gemm(M, N, K, A, lda, B, ldb, NULL, NULL, 8, 0, C, ldc, 0);
    return 0;
}

/* As sgemm_nt_add, with the implicit im2col on either side of the tile: the 3-D net's first
 * layer (M = 16, N = 27) wastes 16 % of the work in C's tiles and none in Cᵀ's. */
static int conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                            const int *segments, int width, float *C, int ldc) {
    if (K % 8 != 0 || (width != 16 && width != 8)) return -1;   /* the table's conv_widths */
    if (M <= 0 || N <= 0) return 0;
    if (transposed_wastes_less(M, N)) dot_gemm(N, M, K, src, 0, A, lda, row_offsets, segments, width, 1, C, ldc, 1);
    else dot_gemm(M, N, K, A, lda, src, 0, row_offsets, segments, width, 0, C, ldc, 0);
    return 0;
}

/* Whole 8-float loads and stores: a row's last store runs past its end into the next row's
 * start, which the next store overwrites (the last lands in the slack). Masked stores would
 * not spill, but measured several times slower; 16-float stores (the avx512 set takes these
 * copies too) write twice the bytes for 7-float rows and cross more cache lines. */
AVX2_INLINE void copy_row_avx2(float *dst, const float *src, int width) {
    if (width <= 8) { _mm256_storeu_ps(dst, _mm256_loadu_ps(src)); return; }
    for (int x = 0; x < width; x += 8) _mm256_storeu_ps(dst + x, _mm256_loadu_ps(src + x));
}

/* Rows of at most 8, 16, 24 and 32 floats: straight-line copies, so the loops of a small
 * plane (7, 14, 28 wide) carry no per-row width tests. */
AVX2_INLINE void copy_row8(float *dst, const float *src, int width) { (void)width; _mm256_storeu_ps(dst, _mm256_loadu_ps(src)); }
AVX2_INLINE void copy_row16(float *dst, const float *src, int width) {
    (void)width;
    __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8);
    _mm256_storeu_ps(dst, a); _mm256_storeu_ps(dst + 8, b);
}
AVX2_INLINE void copy_row24(float *dst, const float *src, int width) {
    (void)width;
    __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8), c = _mm256_loadu_ps(src + 16);
    _mm256_storeu_ps(dst, a); _mm256_storeu_ps(dst + 8, b); _mm256_storeu_ps(dst + 16, c);
}
AVX2_INLINE void copy_row32(float *dst, const float *src, int width) {
    (void)width;
    __m256 a = _mm256_loadu_ps(src), b = _mm256_loadu_ps(src + 8), c = _mm256_loadu_ps(src + 16), d = _mm256_loadu_ps(src + 24);
    _mm256_storeu_ps(dst, a); _mm256_storeu_ps(dst + 8, b); _mm256_storeu_ps(dst + 16, c); _mm256_storeu_ps(dst + 24, d);
}

AVX2 void ollie_avx2_im2col3d(const float *padded, float *cols, int c, int n, int first, int count,
                              int z0, int zn, int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow) {
    switch ((ow + 7) / 8) {
    case 1: im2col_rows(copy_row8, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow); break;
    case 2: im2col_rows(copy_row16, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow); break;
    case 3: im2col_rows(copy_row24, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow); break;
    case 4: im2col_rows(copy_row32, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow); break;
    default: im2col_rows(copy_row_avx2, padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
    }
}

/* R rows × S segments of 8 columns of one dx plane (rows iy0 …, columns x0 …), from `top`,
 * the plane's cols at ky = kx = 0 (image b, oy = 0, x = pad): each of the R·S sums is its
 * own accumulator, so the additions of different rows and segments overlap instead of
 * waiting on one chain of kh·kw. Each element adds the same terms in the same order as
 * portable.c (ky, then kx; invalid lanes ANDed to +0, which adds exactly). lanes[s·kw + kx]:
 * segment s's valid lanes for kx. `safe`: every 8-float load stays inside cols (else masked
 * loads). Whole stores where the spill lands in columns written after this one (this row's,
 * or the next row's in a plane of one block); else lane by lane (masked stores are slow on
 * AMD). */
AVX2_INLINE void col2im_rows(const int R, const int S, const float *top, size_t row_length, int h, int w, int pad,
                             int kh, int kw, int oh, int ow, int iy0, int x0, int safe, const __m256i *lanes,
                             float *plane) {
    __m256 acc[8][4];
    for (int r = 0; r < R; r++)
        for (int s = 0; s < S; s++) acc[r][s] = _mm256_setzero_ps();
    for (int ky = 0; ky < kh; ky++)
        for (int r = 0; r < R; r++) {
            int oy = iy0 + r + pad - ky;
            if (oy < 0 || oy >= oh) continue;
            const float *row = top + (size_t)ky * kw * row_length + (size_t)oy * ow + x0;
            for (int kx = 0; kx < kw; kx++) {
                const float *p = row + kx * row_length - kx;
                for (int s = 0; s < S; s++) {
                    __m256i valid = lanes[s * kw + kx];
                    __m256 v = safe ? _mm256_and_ps(_mm256_loadu_ps(p + 8 * s), _mm256_castsi256_ps(valid))
                                    : _mm256_maskload_ps(p + 8 * s, valid);
                    acc[r][s] = _mm256_add_ps(acc[r][s], v);
                }
            }
        }
    for (int r = 0; r < R; r++) {
        float *out = plane + (size_t)(iy0 + r) * w + x0;
        for (int s = 0; s < S; s++) {
            int inside = x0 + 8 * s + 8 <= w   /* the spill stays in this row, or the next row's first block is later */
                      || (x0 == 0 && (size_t)(iy0 + r) * w + 8 * s + 8 <= (size_t)h * w);
            if (inside) _mm256_storeu_ps(out + 8 * s, acc[r][s]);
            else {
                float sums[8];
                _mm256_storeu_ps(sums, acc[r][s]);
                for (int i = 0; i < w - x0 - 8 * s && i < 8; i++) out[8 * s + i] = sums[i];
            }
        }
    }
}

typedef void col2im_rows_fn(const float *top, size_t row_length, int h, int w, int pad, int kh, int kw, int oh,
                            int ow, int iy0, int x0, int safe, const __m256i *lanes, float *plane);

/* One function per (R, S), its accumulators in registers (R·S ≤ 8). */
#define COL2IM_ROWS(R, S) \
    AVX2 static void col2im_##R##x##S(const float *top, size_t row_length, int h, int w, int pad, int kh, int kw, \
                                      int oh, int ow, int iy0, int x0, int safe, const __m256i *lanes, float *plane) { \
        if (safe) col2im_rows(R, S, top, row_length, h, w, pad, kh, kw, oh, ow, iy0, x0, 1, lanes, plane); \
        else col2im_rows(R, S, top, row_length, h, w, pad, kh, kw, oh, ow, iy0, x0, 0, lanes, plane); \
    }
COL2IM_ROWS(8, 1) COL2IM_ROWS(4, 1) COL2IM_ROWS(2, 1) COL2IM_ROWS(1, 1)
COL2IM_ROWS(4, 2) COL2IM_ROWS(2, 2) COL2IM_ROWS(1, 2)
COL2IM_ROWS(2, 3) COL2IM_ROWS(1, 3)
COL2IM_ROWS(2, 4) COL2IM_ROWS(1, 4)
#undef COL2IM_ROWS

/* By segments (1–4), the row groups from the most rows down: the largest that fits the rows left. */
static col2im_rows_fn *const col2im_groups[4][4] = {
    {col2im_8x1, col2im_4x1, col2im_2x1, col2im_1x1}, {col2im_4x2, col2im_2x2, col2im_1x2, NULL},
    {col2im_2x3, col2im_1x3, NULL, NULL}, {col2im_2x4, col2im_1x4, NULL, NULL},
};
static const int col2im_group_rows[4][4] = {{8, 4, 2, 1}, {4, 2, 1, 0}, {2, 1, 0, 0}, {2, 1, 0, 0}};

/* portable.c's gather, 8 columns of a dx row at a time: the shifted cols rows' valid lanes
 * picked by masks per segment and kx, worked out once, added in the same order as the
 * portable loop (same bits). Each plane runs in blocks of up to 4 segments (32 columns),
 * each in groups of rows (col2im_rows). */
AVX2 static void col2im(const float *cols, float *dx, int c, int n, int first, int count,
                        int h, int w, int pad, int kh, int kw, int oh, int ow) {
    size_t row_length = (size_t)count * oh * ow;
    const float *end = cols + (size_t)c * kh * kw * row_length;
    int segments = (w + 7) / 8;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256i lanes[segments * kw];
    for (int s = 0; s < segments; s++)
        for (int kx = 0; kx < kw; kx++) {
            /* Lanes j with 0 ≤ 8s + j + pad − kx < ow and 8s + j < w. */
            int x0 = 8 * s, lo = kx - pad - x0, hi = ow + kx - pad - x0;
            if (hi > w - x0) hi = w - x0;
            lanes[s * kw + kx] = _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32(lo), lane),
                                                     _mm256_cmpgt_epi32(_mm256_set1_epi32(hi), lane));
        }
    for (int ch = 0; ch < c; ch++)
        for (int b = first; b < first + count; b++) {
            const float *top = cols + (size_t)ch * kh * kw * row_length + (size_t)(b - first) * oh * ow + pad;
            /* The plane's last load: ky, kx and oy at their largest, the last segment. */
            const float *last = top + ((size_t)(kh - 1) * kw + kw - 1) * row_length - (kw - 1)
                              + (size_t)(oh - 1) * ow + 8 * (segments - 1);
            int safe = last + 8 <= end;
            float *plane = dx + ((size_t)ch * n + b) * h * w;
            for (int s0 = 0; s0 < segments; s0 += 4) {
                int S = segments - s0 < 4 ? segments - s0 : 4;
                for (int iy = 0, g = 0; iy < h;) {
                    while (iy + col2im_group_rows[S - 1][g] > h) g++;
                    col2im_groups[S - 1][g](top, row_length, h, w, pad, kh, kw, oh, ow, iy, 8 * s0, safe,
                                            lanes + (size_t)s0 * kw, plane);
                    iy += col2im_group_rows[S - 1][g];
                }
            }
        }
}

AVX2 static float relu_mask_sum(const float *dy, const float *y, float *masked, int count) {
    __m256 sum = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 keep = _mm256_cmp_ps(_mm256_loadu_ps(y + i), _mm256_setzero_ps(), _CMP_GT_OQ);
        __m256 g = _mm256_and_ps(keep, _mm256_loadu_ps(dy + i));
        _mm256_storeu_ps(masked + i, g);
        sum = _mm256_add_ps(sum, g);
    }
    if (i < count) {
        __m256i lanes = first_lanes(count - i);
        __m256 keep = _mm256_cmp_ps(_mm256_maskload_ps(y + i, lanes), _mm256_setzero_ps(), _CMP_GT_OQ);
        __m256 g = _mm256_and_ps(keep, _mm256_maskload_ps(dy + i, lanes));
        _mm256_maskstore_ps(masked + i, lanes, g);
        sum = _mm256_add_ps(sum, g);
    }
    return lane_sum(sum);
}

/* 8 even and 8 odd floats of a and b (p[0..<8], p[8..<16]), in order. */
AVX2_INLINE void split_even_odd(__m256 a, __m256 b, __m256 *even, __m256 *odd) {
    /* shuffle_ps works per 128-bit half: [a0 a2 b0 b2 | a4 a6 b4 b6]; the permute puts the
     * 64-bit pairs in order. */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

/* The 8 windows of output row oy from column ox, given their rows' 16 floats each (r0: top,
 * r1: bottom), compared as portable.c's loop: left unless right is strictly greater, top
 * unless bottom is. */
AVX2_INLINE void pool_eight(__m256 r0a, __m256 r0b, __m256 r1a, __m256 r1b, int first, int w, __m256 *y, __m256i *winners) {
    const __m256i even = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    __m256 tl, tr, bl, br;
    split_even_odd(r0a, r0b, &tl, &tr);
    split_even_odd(r1a, r1b, &bl, &br);
    __m256i index = _mm256_add_epi32(_mm256_set1_epi32(first), even);
    __m256 right = _mm256_cmp_ps(tr, tl, _CMP_GT_OQ);
    __m256 top = _mm256_blendv_ps(tl, tr, right);
    __m256i topIndex = _mm256_sub_epi32(index, _mm256_castps_si256(right));   /* + 1 where right */
    __m256 rightBelow = _mm256_cmp_ps(br, bl, _CMP_GT_OQ);
    __m256 bottom = _mm256_blendv_ps(bl, br, rightBelow);
    __m256i bottomIndex = _mm256_sub_epi32(_mm256_add_epi32(index, _mm256_set1_epi32(w)), _mm256_castps_si256(rightBelow));
    __m256 below = _mm256_cmp_ps(bottom, top, _CMP_GT_OQ);
    *y = _mm256_blendv_ps(top, bottom, below);
    *winners = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(topIndex), _mm256_castsi256_ps(bottomIndex), below));
}

/* 2×2 max pooling, 8 outputs per step. A row's last ow mod 8 outputs are one more step, whose
 * extra lanes are dropped, so small planes (14×14, 7×7) run vectorized too. */
AVX2 static int maxpool2(const float *x, float *y, int *winners, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (int oy = 0; oy < oh; oy++) {
        const float *r0 = x + (size_t)2 * oy * w, *r1 = r0 + w;
        float *yrow = y + (size_t)oy * ow;
        int *wrow = winners + (size_t)oy * ow;
        int ox = 0;
        for (; ox + 8 <= ow; ox += 8) {
            __m256 out;
            __m256i win;
            pool_eight(_mm256_loadu_ps(r0 + 2 * ox), _mm256_loadu_ps(r0 + 2 * ox + 8),
                       _mm256_loadu_ps(r1 + 2 * ox), _mm256_loadu_ps(r1 + 2 * ox + 8), 2 * oy * w + 2 * ox, w, &out, &win);
            _mm256_storeu_ps(yrow + ox, out);
            _mm256_storeu_si256((__m256i *)(wrow + ox), win);
        }
        if (ox < ow) {
            int left = ow - ox;   /* 1…7 windows: 2·left floats of each row */
            __m256 out, r0a, r0b, r1a, r1b;
            __m256i win;
            /* Whole loads while 16 floats of the bottom row stay inside the plane (the extra
             * lanes are never used); masked ones at its end. */
            if ((size_t)(2 * oy + 1) * w + 2 * ox + 16 <= (size_t)h * w) {
                r0a = _mm256_loadu_ps(r0 + 2 * ox); r0b = _mm256_loadu_ps(r0 + 2 * ox + 8);
                r1a = _mm256_loadu_ps(r1 + 2 * ox); r1b = _mm256_loadu_ps(r1 + 2 * ox + 8);
            } else {
                __m256i lanes0 = first_lanes(2 * left), lanes1 = first_lanes(2 * left - 8);
                r0a = _mm256_maskload_ps(r0 + 2 * ox, lanes0); r0b = _mm256_maskload_ps(r0 + 2 * ox + 8, lanes1);
                r1a = _mm256_maskload_ps(r1 + 2 * ox, lanes0); r1b = _mm256_maskload_ps(r1 + 2 * ox + 8, lanes1);
            }
            pool_eight(r0a, r0b, r1a, r1b, 2 * oy * w + 2 * ox, w, &out, &win);
            if ((size_t)oy * ow + ox + 8 <= (size_t)oh * ow) {
                /* Whole stores: the extra lanes land in later rows of this plane, written after. */
                _mm256_storeu_ps(yrow + ox, out);
                _mm256_storeu_si256((__m256i *)(wrow + ox), win);
            } else {   /* the plane's end: lane by lane (masked stores are slow on AMD) */
                float outs[8];
                int wins[8];
                _mm256_storeu_ps(outs, out);
                _mm256_storeu_si256((__m256i *)wins, win);
                for (int i = 0; i < left; i++) { yrow[ox + i] = outs[i]; wrow[ox + i] = wins[i]; }
            }
        }
    }
    return 0;
}

static int maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                          float *frame_y, int *frame_winners) {
    return ollie_maxpool_frames_with(maxpool2, x, y, winners, d, h, w, kd, frame_y, frame_winners);
}

/* portable.c's four partial sums as one 4-lane register (the same additions in the same order),
 * the mask a compare; the scatter stays four scalar stores. */
AVX2 float ollie_avx2_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx) {
    __m128 sums = _mm_setzero_ps();
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        __m128 g = _mm_loadu_ps(dy + i);
        if (masked) g = _mm_and_ps(g, _mm_cmpgt_ps(_mm_loadu_ps(y + i), _mm_setzero_ps()));
        sums = _mm_add_ps(sums, g);
        float lanes[4];
        _mm_storeu_ps(lanes, g);
        dx[winners[i]] = lanes[0]; dx[winners[i + 1]] = lanes[1];
        dx[winners[i + 2]] = lanes[2]; dx[winners[i + 3]] = lanes[3];
    }
    float s[4];
    _mm_storeu_ps(s, sums);
    float total = s[0] + s[1] + s[2] + s[3];
    if (i < count) total += ollie_portable_maxpool2_route(dy + i, y + i, winners + i, count - i, masked, dx);
    return total;
}

/* The shared loop compiled for AVX2: the compiler vectorizes and unrolls it (faster here than
 * 8 lanes written by hand: 1.2 against 2.2 µs for a 32×588 chunk), with the same operations. */
AVX2 void ollie_avx2_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu) {
    ollie_bias_relu_rows(y, bias, rows, columns, stride, relu);
}

/* 8 at a time; the ragged end in portable.c's loop (same bits: no fused operations here). */
AVX2 void ollie_avx2_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam) {
    const __m256 b1 = _mm256_set1_ps(adam->beta1), b2 = _mm256_set1_ps(adam->beta2);
    const __m256 rest1 = _mm256_set1_ps(1 - adam->beta1), rest2 = _mm256_set1_ps(1 - adam->beta2);
    const __m256 c1 = _mm256_set1_ps(adam->correction1), c2 = _mm256_set1_ps(adam->correction2);
    const __m256 lr = _mm256_set1_ps(adam->lr), eps = _mm256_set1_ps(adam->epsilon);
    const __m256 keep = _mm256_set1_ps(adam->keep), wd = _mm256_set1_ps(adam->wd);
    int whole = count & ~7;
    for (int i = 0; i < whole; i += 8) {
        __m256 wi = _mm256_loadu_ps(w + i), gi = _mm256_loadu_ps(g + i);
        if (adam->mode == 1) wi = _mm256_mul_ps(wi, keep);
        if (adam->mode == 2) gi = _mm256_add_ps(gi, _mm256_mul_ps(wd, wi));
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(rest1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(_mm256_mul_ps(rest2, gi), gi));
        __m256 step = _mm256_div_ps(_mm256_mul_ps(lr, _mm256_div_ps(mi, c1)),
                                    _mm256_add_ps(_mm256_sqrt_ps(_mm256_div_ps(vi, c2)), eps));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(w + i, _mm256_sub_ps(wi, step));
    }
    if (whole < count) ollie_portable_adam_step(w + whole, g + whole, m + whole, v + whole, count - whole, adam);
}

const ollie_kernels ollie_kernels_avx2 = {
    .name = "avx2", .fast_gemm = 1, .conv_widths = {16, 8, 0}, .conv_columns = 8,
    .skinny_sgemm = skinny_sgemm, .sgemm_nt_add = sgemm_nt_add,
    .conv_gemm = conv_gemm, .conv_gemm_nt_add = conv_gemm_nt_add,
    .im2col3d = ollie_avx2_im2col3d, .col2im = col2im, .relu_mask_sum = relu_mask_sum,
    .maxpool2 = maxpool2, .maxpool_frames = maxpool_frames,
    .maxpool2_route = ollie_avx2_maxpool2_route, .bias_relu = ollie_avx2_bias_relu, .adam_step = ollie_avx2_adam_step,
};
#endif
