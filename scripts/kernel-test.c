/* Every kernel of every set this machine runs, against the portable set and against naive
 * references, on random shapes with ragged edges. Plain C, no Swift: scripts/kernel-test.sh
 * compiles it with the C files of Sources/CBLAS and runs it (CI does, and under qemu for arm64).
 *
 * Checks, per set:
 *   - skinny_sgemm and conv_gemm: bit-identical to portable (each element is one FMA chain
 *     along K in every set), and within a bound of a double-precision reference;
 *   - sgemm_nt_add, conv_gemm_nt_add, relu_mask_sum's sum: within 8·K·eps·Σ|terms| of the
 *     reference (their partial sums are as many as the set's lanes);
 *   - im2col3d, col2im, relu_mask_sum's mask, maxpool2, maxpool_frames: bit-identical to
 *     portable and equal to the naive loops (ties in pooling: the first in (z, y, x) order);
 *   - maxpool2_route, bias_relu, adam_step: bit-identical to portable and equal to naive loops
 *     written as the Swift they replace (Adam in double within a few float roundings);
 *   - winograd3 and its weight gradient, where a set has them: within the conv bound of a
 *     double-precision direct convolution and weight gradient (they round otherwise), through
 *     the shared transforms of the weights and of their gradient;
 *   - nothing written outside the output (sentinels after rows and past slack); C not read
 *     when beta = 0 (it holds NaN); a width or N the set does not take returns -1;
 *   - the same call twice gives the same bits; sameA reuses a packed A only for the same A.
 * Usage: kernel-test [SET…] (default: every set built here; a set this CPU cannot run is
 * skipped and said so). `kernel-test --chosen` prints the set OLLIE_KERNELS picks, or its error. */
#include "../Sources/CBLAS/kernels_internal.h"
#include "ollie_blas.h"
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint32_t next(void) {
    state ^= state << 13; state ^= state >> 7; state ^= state << 17;
    return (uint32_t)(state >> 16);
}
static float uniform(void) { return (float)(next() % 2000001) / 1000000.0f - 1.0f; }
static int below(int n) { return (int)(next() % (uint32_t)n); }
static float *randoms(size_t n) {
    float *p = malloc((n + 64) * sizeof(float));
    for (size_t i = 0; i < n + 64; i++) p[i] = uniform();
    return p;
}

static int failures, checks;
static const char *set_name;
#define FAIL(...) do { failures++; fprintf(stderr, "FAIL [%s] ", set_name); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } while (0)

static int same_bits(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

/* |got − want| within 8·K·eps·Σ|terms| (+ a hair for K = 0 sums). */
static int close_enough(float got, double want, double magnitude, int k) {
    return fabs((double)got - want) <= 8.0 * (k + 1) * FLT_EPSILON * magnitude + 1e-30;
}

static const float sentinel = 12345.5f;

static void test_skinny(const ollie_kernels *set, const ollie_kernels *ref) {
    /* Every M mod 6 with full panels before it; K below and above 64 (avx2 runs the tail
     * panel in blocks of 32 columns from K = 64 on). */
    static const int ms[] = {1, 2, 5, 6, 7, 8, 9, 11, 13, 16, 32, 33}, ns[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 100, 257};
    static const int ks[] = {1, 2, 3, 9, 16, 70, 144};
    for (int t = 0; t < 200; t++) {
        int M = ms[below(12)], N = ns[below(14)], K = ks[below(7)], transA = below(2);
        float alpha = below(2) ? 1.0f : 0.5f, beta = (float[]){0.0f, 1.0f, -0.75f}[below(3)];
        int lda = (transA ? M : K) + below(3), ldb = N + below(3), ldc = N + 3;
        int withBias = below(3), relu = withBias == 2;   /* none, a bias, a bias and a ReLU */
        float *A = randoms((size_t)(transA ? K : M) * lda), *B = randoms((size_t)K * ldb), *bias = randoms(M);
        const float *b = withBias ? bias : NULL;
        float *C0 = randoms((size_t)M * ldc), *got = malloc(sizeof(float) * M * ldc), *want = malloc(sizeof(float) * M * ldc);
        for (int i = 0; i < M; i++)
            for (int j = N; j < ldc; j++) C0[i * ldc + j] = sentinel;
        if (beta == 0.0f) for (int i = 0; i < M; i++) for (int j = 0; j < N; j++) C0[i * ldc + j] = NAN;
        memcpy(got, C0, sizeof(float) * M * ldc); memcpy(want, C0, sizeof(float) * M * ldc);
        checks++;
        if (set->skinny_sgemm(transA, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc, 0, b, relu) != 0)
            FAIL("skinny_sgemm returned -1");
        ref->skinny_sgemm(transA, M, N, K, alpha, A, lda, B, ldb, beta, want, ldc, 0, b, relu);
        if (!same_bits(got, want, sizeof(float) * M * ldc))
            FAIL("skinny_sgemm M %d N %d K %d transA %d alpha %g beta %g bias %d relu %d: not portable's bits",
                 M, N, K, transA, alpha, beta, withBias > 0, relu);
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double s = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    double p = (double)(transA ? A[k * lda + i] : A[i * lda + k]) * B[k * ldb + j];
                    s += p; mag += fabs(p);
                }
                s *= alpha; mag *= fabs(alpha);
                if (beta != 0.0f) { s += (double)beta * C0[i * ldc + j]; mag += fabs(beta * C0[i * ldc + j]); }
                if (withBias) { s += bias[i]; mag += fabs(bias[i]); }
                if (relu && s < 0) s = 0;
                if (!close_enough(got[i * ldc + j], s, mag, K)) {
                    FAIL("skinny_sgemm M %d N %d K %d: C[%d][%d] %g, reference %g", M, N, K, i, j, got[i * ldc + j], s);
                    i = M; break;
                }
            }
        /* Same call, same bits; and sameA with the same A reuses the packing correctly. */
        memcpy(want, got, sizeof(float) * M * ldc);
        memcpy(got, C0, sizeof(float) * M * ldc);
        set->skinny_sgemm(transA, M, N, K, alpha, A, lda, B, ldb, beta, got, ldc, 1, b, relu);
        if (!same_bits(got, want, sizeof(float) * M * ldc)) FAIL("skinny_sgemm: a repeated call (sameA) changed bits");
        free(A); free(B); free(bias); free(C0); free(got); free(want);
    }
    /* sameA only reuses the packing of that same A: a different A at a different address is packed. */
    int M = 9, N = 40, K = 20;
    float *A1 = randoms(M * K), *A2 = randoms(M * K), *B = randoms(K * N);
    float got[9 * 40], want[9 * 40];
    set->skinny_sgemm(0, M, N, K, 1, A1, K, B, N, 0, got, N, 1, NULL, 0);
    set->skinny_sgemm(0, M, N, K, 1, A2, K, B, N, 0, got, N, 1, NULL, 0);
    ref->skinny_sgemm(0, M, N, K, 1, A2, K, B, N, 0, want, N, 0, NULL, 0);
    checks++;
    if (!same_bits(got, want, sizeof got)) FAIL("skinny_sgemm: sameA with another A used the stale packing");
    free(A1); free(A2); free(B);
}

static void test_nt_add(const ollie_kernels *set, const ollie_kernels *ref) {
    static const int ms[] = {1, 2, 3, 4, 5, 7, 16, 33}, ns[] = {1, 2, 4, 5, 6, 7, 9, 13, 144};
    static const int ks[] = {1, 7, 8, 9, 15, 16, 17, 31, 300, 784};
    for (int t = 0; t < 80; t++) {
        int M = ms[below(8)], N = ns[below(9)], K = ks[below(10)], lda = K + below(3), ldb = K + below(3), ldc = N + 2;
        float *A = randoms((size_t)M * lda), *B = randoms((size_t)N * ldb), *C0 = randoms((size_t)M * ldc);
        float *got = malloc(sizeof(float) * M * ldc), *again = malloc(sizeof(float) * M * ldc), *want = malloc(sizeof(float) * M * ldc);
        for (int i = 0; i < M; i++) C0[i * ldc + N] = C0[i * ldc + N + 1] = sentinel;
        memcpy(got, C0, sizeof(float) * M * ldc); memcpy(again, C0, sizeof(float) * M * ldc); memcpy(want, C0, sizeof(float) * M * ldc);
        checks++;
        if (set->sgemm_nt_add(M, N, K, A, lda, B, ldb, got, ldc) != 0) FAIL("sgemm_nt_add returned -1");
        set->sgemm_nt_add(M, N, K, A, lda, B, ldb, again, ldc);
        ref->sgemm_nt_add(M, N, K, A, lda, B, ldb, want, ldc);
        if (!same_bits(got, again, sizeof(float) * M * ldc)) FAIL("sgemm_nt_add: the same call gave other bits");
        for (int i = 0; i < M; i++) {
            if (got[i * ldc + N] != sentinel || got[i * ldc + N + 1] != sentinel) FAIL("sgemm_nt_add wrote past column N");
            for (int j = 0; j < N; j++) {
                double s = C0[i * ldc + j], mag = fabs(s);
                for (int k = 0; k < K; k++) { double p = (double)A[i * lda + k] * B[j * ldb + k]; s += p; mag += fabs(p); }
                if (!close_enough(got[i * ldc + j], s, mag, K) || !close_enough(want[i * ldc + j], s, mag, K)) {
                    FAIL("sgemm_nt_add M %d N %d K %d: C[%d][%d] %g (portable %g), reference %g", M, N, K, i, j,
                         got[i * ldc + j], want[i * ldc + j], s);
                    i = M; break;
                }
            }
        }
        free(A); free(B); free(C0); free(got); free(again); free(want);
    }
}

/* A stride-1 convolution's geometry, as Sources/NN/Convolution/StrideOneConvolution.swift builds
 * it: a zero-bordered input [C, N, Dp, Hp, Wp], tap offsets, and segment starts. */
typedef struct {
    int c, n, dp, hp, wp, kd, kh, kw, od, oh, ow, taps, columns, width;
    float *padded;
    int *offsets, *segments;
} conv;

static conv make_conv(int c, int n, int d, int h, int w, int kd, int kh, int kw, int pd, int ph, int pw, int width) {
    conv g = {.c = c, .n = n, .dp = d + 2 * pd, .hp = h + 2 * ph, .wp = w + 2 * pw, .kd = kd, .kh = kh, .kw = kw, .width = width};
    g.od = g.dp - kd + 1; g.oh = g.hp - kh + 1; g.ow = g.wp - kw + 1;
    g.taps = c * kd * kh * kw;
    g.columns = n * g.od * g.oh * g.ow;
    size_t volume = (size_t)g.dp * g.hp * g.wp;
    g.padded = calloc((size_t)c * n * volume + 64, sizeof(float));
    for (int ch = 0; ch < c * n; ch++)
        for (int z = 0; z < d; z++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) g.padded[ch * volume + ((size_t)(z + pd) * g.hp + y + ph) * g.wp + x + pw] = uniform();
    g.offsets = malloc(sizeof(int) * g.taps);
    int t = 0;
    for (int ch = 0; ch < c; ch++)
        for (int a = 0; a < kd; a++)
            for (int b = 0; b < kh; b++)
                for (int e = 0; e < kw; e++) g.offsets[t++] = (int)(ch * n * volume) + (a * g.hp + b) * g.wp + e;
    g.segments = malloc(sizeof(int) * (g.columns / width + 1));
    int s = 0;
    for (int b = 0; b < n; b++)
        for (int z = 0; z < g.od; z++)
            for (int y = 0; y < g.oh; y++)
                for (int x = 0; x < g.ow; x += width) g.segments[s++] = ((b * g.dp + z) * g.hp + y) * g.wp + x;
    return g;
}

/* The input under tap `t` for output column `j`, from the geometry itself (not the tables). */
static float tap_value(const conv *g, int t, int j) {
    int e = t % g->kw, b_ = t / g->kw % g->kh, a = t / (g->kw * g->kh) % g->kd, ch = t / (g->kw * g->kh * g->kd);
    int x = j % g->ow, y = j / g->ow % g->oh, z = j / (g->ow * g->oh) % g->od, b = j / (g->ow * g->oh * g->od);
    size_t volume = (size_t)g->dp * g->hp * g->wp;
    return g->padded[((size_t)ch * g->n + b) * volume + ((size_t)(z + a) * g->hp + y + b_) * g->wp + x + e];
}

static void test_conv(const ollie_kernels *set, const ollie_kernels *ref) {
    /* Shapes whose output rows are whole segments: 16 or 8 wide, one or more per row; 1×1 and 3×3 taps, 2-D and 3-D. */
    static const int shapes[][10] = {
        /* c, n, d, h, w, kd, kh, kw, pad (all axes), width */
        {3, 2, 1, 16, 16, 1, 3, 3, 1, 16}, {2, 1, 1, 32, 32, 1, 3, 3, 1, 16}, {5, 3, 1, 8, 8, 1, 3, 3, 1, 8},
        {4, 2, 1, 8, 8, 1, 1, 1, 0, 8}, {3, 1, 4, 8, 8, 3, 3, 3, 1, 8}, {1, 2, 2, 16, 16, 1, 1, 1, 0, 16},
        {7, 1, 1, 16, 16, 1, 3, 3, 1, 8}, {2, 1, 3, 16, 32, 2, 3, 3, 1, 16}, {3, 1, 1, 16, 24, 1, 3, 3, 1, 8},
        {9, 1, 1, 8, 8, 1, 5, 5, 2, 8},
        /* K above 480, which the avx2 conv_gemm runs in parts: 540 (two), 1000 (three) */
        {20, 1, 3, 8, 8, 3, 3, 3, 1, 8}, {40, 1, 1, 16, 16, 1, 5, 5, 2, 16},
    };
    for (int s = 0; s < (int)(sizeof shapes / sizeof *shapes); s++) {
        const int *v = shapes[s];
        int width = v[9];
        int offered = 0;
        for (int i = 0; set->conv_widths[i]; i++) offered |= set->conv_widths[i] == width;
        conv g = make_conv(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[5] > 1 ? v[8] : 0, v[8], v[8], width);
        int plane = g.oh * g.ow;
        if (!offered || plane % set->conv_columns != 0) { free(g.padded); free(g.offsets); free(g.segments); continue; }
        static const int conv_ms[] = {1, 2, 3, 4, 5, 7, 16, 32};   /* every ragged last row panel (M mod 6, mod 8) */
        for (int mi = 0; mi < (int)(sizeof conv_ms / sizeof *conv_ms); mi++) {
            int M = conv_ms[mi];
            int N = g.columns, K = g.taps, ldc = N + 5;
            float *A = randoms((size_t)M * K), *bias = randoms(M);
            for (int withBias = 0; withBias < 3; withBias++) {
                float *got = malloc(sizeof(float) * M * ldc), *want = malloc(sizeof(float) * M * ldc);
                for (int i = 0; i < M * ldc; i++) got[i] = want[i] = sentinel;
                const float *b = withBias ? bias : NULL;
                int relu = withBias == 2;
                checks++;
                if (set->conv_gemm(M, N, K, A, K, g.padded, g.offsets, g.segments, width, got, ldc, 0, b, relu) != 0)
                    FAIL("conv_gemm returned -1 for width %d N %d", width, N);
                ref->conv_gemm(M, N, K, A, K, g.padded, g.offsets, g.segments, width, want, ldc, 0, b, relu);
                if (!same_bits(got, want, sizeof(float) * M * ldc))
                    FAIL("conv_gemm shape %d M %d bias %d relu %d: not portable's bits", s, M, withBias > 0, relu);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double sum = 0, mag = 0;
                        for (int t = 0; t < K; t++) { double p = (double)A[i * K + t] * tap_value(&g, t, j); sum += p; mag += fabs(p); }
                        if (b) { sum += b[i]; mag += fabs(b[i]); if (relu && sum < 0) sum = 0; }
                        if (!close_enough(got[i * ldc + j], sum, mag, K)) {
                            FAIL("conv_gemm shape %d M %d: C[%d][%d] %g, reference %g", s, M, i, j, got[i * ldc + j], sum);
                            i = M; break;
                        }
                    }
                for (int i = 0; i < M; i++)
                    for (int j = N; j < ldc; j++)
                        if (got[i * ldc + j] != sentinel) { FAIL("conv_gemm wrote past column N"); i = M; break; }
                free(got); free(want);
            }
            /* dW += dy·Bᵀ: M rows of dy along the N columns, K = the taps. */
            float *dy = randoms((size_t)M * N), *got = randoms((size_t)M * K), *want = malloc(sizeof(float) * M * K);
            float *C0 = malloc(sizeof(float) * M * K);
            memcpy(want, got, sizeof(float) * M * K); memcpy(C0, got, sizeof(float) * M * K);
            checks++;
            if (set->conv_gemm_nt_add(M, K, N, dy, N, g.padded, g.offsets, g.segments, width, got, K) != 0)
                FAIL("conv_gemm_nt_add returned -1 for width %d", width);
            ref->conv_gemm_nt_add(M, K, N, dy, N, g.padded, g.offsets, g.segments, width, want, K);
            for (int i = 0; i < M; i++)
                for (int t = 0; t < K; t++) {
                    double sum = C0[i * K + t], mag = fabs(sum);
                    for (int j = 0; j < N; j++) { double p = (double)dy[i * N + j] * tap_value(&g, t, j); sum += p; mag += fabs(p); }
                    if (!close_enough(got[i * K + t], sum, mag, N) || !close_enough(want[i * K + t], sum, mag, N)) {
                        FAIL("conv_gemm_nt_add shape %d M %d: C[%d][%d] %g (portable %g), reference %g", s, M, i, t,
                             got[i * K + t], want[i * K + t], sum);
                        i = M; break;
                    }
                }
            free(A); free(bias); free(dy); free(got); free(want); free(C0);
        }
        /* What the set does not take, it refuses. */
        float out[64];
        checks++;
        if (set != ref && set->conv_gemm(1, set->conv_columns + 1 + (set->conv_columns == 1), 1, g.padded, 1, g.padded,
                                         g.offsets, g.segments, width, out, 64, 0, NULL, 0) != -1
            && set->conv_columns > 1)
            FAIL("conv_gemm took N not a multiple of %d", set->conv_columns);
        if (set->conv_gemm(1, 16, 1, g.padded, 1, g.padded, g.offsets, g.segments, 0, out, 64, 0, NULL, 0) != -1)
            FAIL("conv_gemm took width 0");
        free(g.padded); free(g.offsets); free(g.segments);
    }
}

static void test_im2col(const ollie_kernels *set, const ollie_kernels *ref) {
    for (int t = 0; t < 60; t++) {
        int c = 1 + below(3), n = 1 + below(3), kd = 1 + below(2), kh = 1 + below(3), kw = 1 + below(3);
        int dp = kd + below(3), hp = kh + below(12), wp = kw + below(45);
        int od = dp - kd + 1, oh = hp - kh + 1, ow = wp - kw + 1;
        int first = below(n), count = 1 + below(n - first), z0 = below(od), zn = 1 + below(od - z0);
        size_t inputs = (size_t)c * n * dp * hp * wp, rows = (size_t)c * kd * kh * kw, columns = (size_t)count * zn * oh * ow;
        float *padded = randoms(inputs + 16);
        float *got = malloc(sizeof(float) * (rows * columns + 32)), *want = malloc(sizeof(float) * (rows * columns + 32));
        for (size_t i = 0; i < rows * columns + 32; i++) got[i] = want[i] = sentinel;
        checks++;
        set->im2col3d(padded, got, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
        ref->im2col3d(padded, want, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
        if (!same_bits(got, want, sizeof(float) * rows * columns)) FAIL("im2col3d: not portable's values");
        for (size_t i = rows * columns + 16; i < rows * columns + 32; i++)
            if (got[i] != sentinel) { FAIL("im2col3d wrote past the 16 floats of slack"); break; }
        for (int ch = 0, r = 0; ch < c; ch++)
            for (int a = 0; a < kd; a++)
                for (int b_ = 0; b_ < kh; b_++)
                    for (int e = 0; e < kw; e++, r++)
                        for (int b = first; b < first + count; b++)
                            for (int z = z0; z < z0 + zn; z++)
                                for (int y = 0; y < oh; y++)
                                    for (int x = 0; x < ow; x++) {
                                        size_t col = (((size_t)(b - first) * zn + z - z0) * oh + y) * ow + x;
                                        float v = padded[(((size_t)ch * n + b) * dp + z + a) * hp * wp + (size_t)(y + b_) * wp + x + e];
                                        if (want[r * columns + col] != v) { FAIL("im2col3d: cols[%d][%zu] wrong", r, col); return; }
                                    }
        free(padded); free(got); free(want);
    }
}

static void test_col2im(const ollie_kernels *set, const ollie_kernels *ref) {
    for (int t = 0; t < 120; t++) {
        int c = 1 + below(3), n = 1 + below(3), k = 1 + 2 * below(3), pad = below(k), h = 1 + below(20), w = 1 + below(40);
        int oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
        if (oh < 1 || ow < 1) continue;
        int first = below(n), count = 1 + below(n - first);
        size_t length = (size_t)count * oh * ow, rows = (size_t)c * k * k, dxs = (size_t)c * n * h * w;
        float *cols = randoms(rows * length + 16), *got = malloc(sizeof(float) * (dxs + 16)), *want = malloc(sizeof(float) * (dxs + 16));
        double *naive = calloc(dxs, sizeof(double));
        for (size_t i = 0; i < dxs + 16; i++) got[i] = want[i] = sentinel;
        checks++;
        set->col2im(cols, got, c, n, first, count, h, w, pad, k, k, oh, ow);
        ref->col2im(cols, want, c, n, first, count, h, w, pad, k, k, oh, ow);
        if (!same_bits(got, want, sizeof(float) * (dxs + 16))) FAIL("col2im c %d n %d k %d pad %d h %d w %d: not portable's bits", c, n, k, pad, h, w);
        /* The adjoint of im2col, as a scatter. */
        for (int ch = 0; ch < c; ch++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                    for (int b = first; b < first + count; b++)
                        for (int y = 0; y < oh; y++)
                            for (int x = 0; x < ow; x++) {
                                int iy = y + ky - pad, ix = x + kx - pad;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                naive[(((size_t)ch * n + b) * h + iy) * w + ix] +=
                                    cols[((size_t)(ch * k + ky) * k + kx) * length + ((size_t)(b - first) * oh + y) * ow + x];
                            }
        for (int ch = 0; ch < c; ch++)
            for (int b = 0; b < n; b++)
                for (int i = 0; i < h * w; i++) {
                    size_t at = ((size_t)ch * n + b) * h * w + i;
                    int mine = b >= first && b < first + count;
                    if (mine ? !close_enough(got[at], naive[at], 2.0 * k * k, k * k) : got[at] != sentinel) {
                        FAIL("col2im: dx[%zu] %g, reference %g%s", at, got[at], mine ? naive[at] : sentinel, mine ? "" : " (not its image)");
                        ch = c; b = n; break;
                    }
                }
        free(cols); free(got); free(want); free(naive);
    }
}

static void test_relu(const ollie_kernels *set, const ollie_kernels *ref) {
    static const int counts[] = {0, 1, 5, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000};
    for (int t = 0; t < 13; t++) {
        int count = counts[t];
        float *dy = randoms(count), *y = randoms(count), *got = malloc(sizeof(float) * (count + 4)), *want = malloc(sizeof(float) * (count + 4));
        if (count > 2) y[1] = 0.0f, y[2] = -0.0f;   /* not > 0 */
        for (int i = 0; i < count + 4; i++) got[i] = want[i] = sentinel;
        checks++;
        float s = set->relu_mask_sum(dy, y, got, count), again = set->relu_mask_sum(dy, y, got, count);
        ref->relu_mask_sum(dy, y, want, count);
        if (!same_bits(got, want, sizeof(float) * (count + 4))) FAIL("relu_mask_sum %d: mask not portable's", count);
        double sum = 0, mag = 0;
        for (int i = 0; i < count; i++) {
            float m = y[i] > 0 ? dy[i] : 0;
            if (got[i] != m) { FAIL("relu_mask_sum: masked[%d]", i); break; }
            sum += m; mag += fabs(m);
        }
        if (!close_enough(s, sum, mag, count)) FAIL("relu_mask_sum %d: sum %g, reference %g", count, s, sum);
        if (!same_bits(&s, &again, sizeof s)) FAIL("relu_mask_sum: the same call gave other bits");
        free(dy); free(y); free(got); free(want);
    }
}

/* The first maximum in (z, y, x) order of each window: the naive definition. */
static void naive_pool(const float *x, float *y, int *win, int d, int h, int w, int kd) {
    int oh = h / 2, ow = w / 2;
    for (int oz = 0; oz < d / kd; oz++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++) {
                int best = -1;
                for (int a = 0; a < kd; a++)
                    for (int b = 0; b < 2; b++)
                        for (int e = 0; e < 2; e++) {
                            int at = ((oz * kd + a) * h + 2 * oy + b) * w + 2 * ox + e;
                            if (best < 0 || x[at] > x[best]) best = at;
                        }
                y[(oz * oh + oy) * ow + ox] = x[best];
                win[(oz * oh + oy) * ow + ox] = best;
            }
}

static void test_pool(const ollie_kernels *set, const ollie_kernels *ref) {
    for (int t = 0; t < 60; t++) {
        int kd = 1 + below(3), d = kd * (1 + below(3)) + below(kd), h = 2 + below(30), w = 2 + below(70);
        int ties = t % 2;   /* values from {−1, 0, 1}: many ties */
        size_t volume = (size_t)d * h * w, pooled = (size_t)(d / kd) * (h / 2) * (w / 2), frame = (size_t)(h / 2) * (w / 2);
        float *x = randoms(volume);
        if (ties) for (size_t i = 0; i < volume; i++) x[i] = (float)(below(3) - 1);
        float *y = malloc(sizeof(float) * (pooled + 8)), *ny = malloc(sizeof(float) * (pooled + 8)), *ry = malloc(sizeof(float) * (pooled + 8));
        int *wi = malloc(sizeof(int) * (pooled + 8)), *nw = malloc(sizeof(int) * (pooled + 8)), *rw = malloc(sizeof(int) * (pooled + 8));
        float *fy = malloc(sizeof(float) * (frame + 8)); int *fw = malloc(sizeof(int) * (frame + 8));
        for (size_t i = 0; i < pooled + 8; i++) y[i] = ry[i] = sentinel, wi[i] = rw[i] = -7;
        naive_pool(x, ny, nw, d, h, w, kd);
        checks++;
        if (kd == 1 && d == 1) {
            set->maxpool2(x, y, wi, h, w);
            ref->maxpool2(x, ry, rw, h, w);
        } else {
            set->maxpool_frames(x, y, wi, d, h, w, kd, fy, fw);
            ref->maxpool_frames(x, ry, rw, d, h, w, kd, fy, fw);
        }
        if (!same_bits(y, ry, sizeof(float) * (pooled + 8)) || !same_bits(wi, rw, sizeof(int) * (pooled + 8)))
            FAIL("max pooling d %d h %d w %d kd %d ties %d: not portable's", d, h, w, kd, ties);
        if (!same_bits(y, ny, sizeof(float) * pooled) || !same_bits(wi, nw, sizeof(int) * pooled))
            FAIL("max pooling d %d h %d w %d kd %d ties %d: not the naive maxima and first winners", d, h, w, kd, ties);
        for (size_t i = pooled; i < pooled + 8; i++)
            if (y[i] != sentinel || wi[i] != -7) { FAIL("max pooling wrote past its output"); break; }
        free(x); free(y); free(ny); free(ry); free(wi); free(nw); free(rw); free(fy); free(fw);
    }
}

static void test_route(const ollie_kernels *set, const ollie_kernels *ref) {
    static const int counts[] = {1, 3, 4, 5, 9, 16, 49, 196};
    for (int t = 0; t < 16; t++) {
        int count = counts[t % 8], masked = t >= 8, plane = 4 * count + 3;
        float *dy = randoms(count), *y = randoms(count);
        int *winners = malloc(sizeof(int) * count);
        for (int i = 0; i < count; i++) winners[i] = 4 * i + below(4);   /* one winner a window */
        if (count > 2) y[1] = 0.0f, y[2] = -0.0f;
        float *got = malloc(sizeof(float) * plane), *want = malloc(sizeof(float) * plane), *naive = malloc(sizeof(float) * plane);
        for (int i = 0; i < plane; i++) got[i] = want[i] = naive[i] = 0;
        checks++;
        float s = set->maxpool2_route(dy, y, winners, count, masked, got);
        float r = ref->maxpool2_route(dy, y, winners, count, masked, want);
        /* The Swift loop it replaces: four partial sums, added in order, then the rest. */
        float sums[4] = {0, 0, 0, 0}, total;
        int i = 0;
        for (; i + 4 <= count; i += 4)
            for (int j = 0; j < 4; j++) { float g = !masked || y[i + j] > 0 ? dy[i + j] : 0; naive[winners[i + j]] = g; sums[j] += g; }
        total = ((sums[0] + sums[1]) + sums[2]) + sums[3];
        for (; i < count; i++) { float g = !masked || y[i] > 0 ? dy[i] : 0; naive[winners[i]] = g; total += g; }
        if (!same_bits(got, want, sizeof(float) * plane) || !same_bits(&s, &r, sizeof s)) FAIL("maxpool2_route %d masked %d: not portable's", count, masked);
        if (!same_bits(got, naive, sizeof(float) * plane) || !same_bits(&s, &total, sizeof s)) FAIL("maxpool2_route %d masked %d: not the loop's", count, masked);
        free(dy); free(y); free(winners); free(got); free(want); free(naive);
    }
}

static void test_bias_relu(const ollie_kernels *set, const ollie_kernels *ref) {
    for (int t = 0; t < 24; t++) {
        int rows = 1 + below(5), columns = below(40), stride = columns + below(9), relu = t % 2;
        size_t n = (size_t)rows * stride + 8;
        float *y = randoms(n), *bias = randoms(rows), *got = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
        if (n > 12) y[3] = -bias[0], y[5] = NAN;   /* exactly 0 before the ReLU (row 0), and a NaN kept */
        memcpy(got, y, sizeof(float) * n); memcpy(want, y, sizeof(float) * n);
        checks++;
        set->bias_relu(got, bias, rows, columns, stride, relu);
        ref->bias_relu(want, bias, rows, columns, stride, relu);
        if (!same_bits(got, want, sizeof(float) * n)) FAIL("bias_relu %d×%d stride %d relu %d: not portable's", rows, columns, stride, relu);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < stride; i++) {
                size_t at = (size_t)r * stride + i;
                float x = y[at] + bias[r], expected = i >= columns ? y[at] : relu ? (0 >= x ? 0 : x) : x;   /* Swift's max(x, 0) */
                if (!same_bits(&got[at], &expected, sizeof(float))) { FAIL("bias_relu: y[%d][%d] %g, expected %g", r, i, got[at], expected); r = rows; break; }
            }
        free(y); free(bias); free(got); free(want);
    }
}

/* winograd3 (where the set has one), weights through ollie_winograd3_weights: against a
 * double-precision direct convolution, within the conv bound for K = 27·C (its transforms
 * reorder the sums); only the samples asked for are written; the same call gives the same
 * bits; shapes it does not take return -1. */
static void test_winograd(const ollie_kernels *set) {
    if (!set->winograd3) return;
    int unit = set->winograd3_width;
    static const int shapes[][6] = {
        /* c, oc, n, d, h, w (in halves of winograd3_width: 1 is two rows of tiles a vector) */
        {1, 1, 1, 2, 2, 2}, {5, 13, 3, 4, 6, 6}, {16, 32, 2, 4, 4, 2}, {9, 8, 2, 2, 18, 4}, {32, 16, 1, 6, 2, 2},
        {7, 10, 2, 4, 4, 1}, {32, 32, 1, 2, 8, 1}, {3, 5, 1, 2, 36, 1},
    };
    for (int s = 0; s < (int)(sizeof shapes / sizeof *shapes); s++) {
        int c = shapes[s][0], oc = shapes[s][1], n = shapes[s][2], d = shapes[s][3], h = shapes[s][4], w = shapes[s][5] * unit / 2;
        int dp = d + 2, hp = h + 2, wp = w + 2, volume = d * h * w, ldy = n * volume + 5;
        size_t padded_size = (size_t)c * n * dp * hp * wp;
        float *x = calloc(padded_size + 64, sizeof(float)), *weights = randoms((size_t)oc * c * 27), *bias = randoms(oc);
        for (int ch = 0; ch < c; ch++)
            for (int b = 0; b < n; b++)
                for (int z = 0; z < d; z++)
                    for (int y = 0; y < h; y++)
                        for (int i = 0; i < w; i++) x[(((size_t)(ch * n + b) * dp + z + 1) * hp + y + 1) * wp + i + 1] = uniform();
        float *u = malloc(sizeof(float) * 64 * c * ollie_winograd3_rows(oc));
        ollie_winograd3_weights(weights, oc, c, u);
        size_t out_size = (size_t)oc * ldy;
        float *got = malloc(sizeof(float) * out_size), *again = malloc(sizeof(float) * out_size);
        for (int relu = 0; relu < 2; relu++) {
            const float *b_or_null = relu ? bias : NULL;
            /* samples 1…n−1 (or the one), then 0: every sample written once */
            int first = n > 1 ? 1 : 0;
            for (size_t i = 0; i < out_size; i++) got[i] = sentinel;
            checks++;
            if (set->winograd3(c, oc, n, first, n - first, d, h, w, x, u, b_or_null, relu, got, ldy) != 0) {
                FAIL("winograd3 refused c %d oc %d %d×%d×%d", c, oc, d, h, w);
                continue;
            }
            for (int o = 0; o < oc && n > 1; o++)
                for (int i = 0; i < volume; i++)
                    if (got[(size_t)o * ldy + i] != sentinel) { FAIL("winograd3 wrote sample 0, not asked for"); o = oc; break; }
            if (first) set->winograd3(c, oc, n, 0, 1, d, h, w, x, u, b_or_null, relu, got, ldy);
            for (int o = 0; o < oc; o++)
                for (int i = n * volume; i < ldy; i++)
                    if (got[(size_t)o * ldy + i] != sentinel) { FAIL("winograd3 wrote past the samples"); o = oc; break; }
            for (int o = 0; o < oc; o++)
                for (int b = 0; b < n; b++)
                    for (int z = 0; z < d; z++)
                        for (int y = 0; y < h; y++)
                            for (int i = 0; i < w; i++) {
                                double sum = b_or_null ? bias[o] : 0, magnitude = fabs(sum);
                                for (int ch = 0; ch < c; ch++)
                                    for (int k = 0; k < 27; k++) {
                                        double term = (double)weights[(o * c + ch) * 27 + k]
                                            * x[(((size_t)(ch * n + b) * dp + z + k / 9) * hp + y + k / 3 % 3) * wp + i + k % 3];
                                        sum += term;
                                        magnitude += fabs(term);
                                    }
                                if (relu && sum < 0) sum = 0;
                                float value = got[(size_t)o * ldy + ((size_t)b * d + z) * h * w + (size_t)y * w + i];
                                if (!close_enough(value, sum, magnitude, 27 * c)) {
                                    FAIL("winograd3 c %d oc %d %d×%d×%d relu %d: y[%d][%d][%d][%d][%d] %g, reference %g", c, oc, d, h, w,
                                         relu, o, b, z, y, i, value, sum);
                                    o = oc; b = n; z = d; y = h; break;
                                }
                            }
            checks++;
            for (size_t i = 0; i < out_size; i++) again[i] = sentinel;
            set->winograd3(c, oc, n, 0, n, d, h, w, x, u, b_or_null, relu, again, ldy);
            if (!same_bits(got, again, sizeof(float) * out_size)) FAIL("winograd3: the same call gave other bits");
        }
        /* The weight gradient: du over samples 1… then sample 0 (it accumulates), to dW. */
        if (set->winograd3_weight_gradient) {
            checks++;
            float *dy = randoms((size_t)oc * ldy), *du = calloc((size_t)64 * oc * c, sizeof(float));
            float *dw = calloc((size_t)oc * c * 27, sizeof(float));
            int first = n > 1 ? 1 : 0, status = set->winograd3_weight_gradient(c, oc, n, first, n - first, d, h, w, x, dy, ldy, du);
            if (first) status |= set->winograd3_weight_gradient(c, oc, n, 0, 1, d, h, w, x, dy, ldy, du);
            if (status) FAIL("winograd3_weight_gradient refused c %d oc %d %d×%d×%d", c, oc, d, h, w);
            ollie_winograd3_weight_gradient_add(du, oc, c, dw);
            for (int o = 0; o < oc; o++)
                for (int ch = 0; ch < c; ch++)
                    for (int k = 0; k < 27; k++) {
                        double sum = 0, magnitude = 0;
                        for (int b = 0; b < n; b++)
                            for (int z = 0; z < d; z++)
                                for (int y = 0; y < h; y++)
                                    for (int i = 0; i < w; i++) {
                                        double term = (double)dy[(size_t)o * ldy + ((size_t)b * d + z) * h * w + (size_t)y * w + i]
                                            * x[(((size_t)(ch * n + b) * dp + z + k / 9) * hp + y + k / 3 % 3) * wp + i + k % 3];
                                        sum += term;
                                        magnitude += fabs(term);
                                    }
                        float value = dw[((size_t)o * c + ch) * 27 + k];
                        if (!close_enough(value, sum, magnitude, n * volume)) {
                            FAIL("winograd3_weight_gradient c %d oc %d %d×%d×%d: dW[%d][%d][%d] %g, reference %g", c, oc, d, h, w,
                                 o, ch, k, value, sum);
                            o = oc; ch = c; break;
                        }
                    }
            free(dy); free(du); free(dw);
        }
        free(x); free(weights); free(bias); free(u); free(got); free(again);
    }
    checks++;
    float cell[64] = {0}, out[64];
    if (set->winograd3(1, 1, 1, 0, 1, 3, 2, unit, cell, cell, NULL, 0, out, 64) != -1
        || set->winograd3(1, 1, 1, 0, 1, 2, 2, unit + 1, cell, cell, NULL, 0, out, 64) != -1
        || set->winograd3(1, 1, 1, 0, 1, 2, 2, unit / 2, cell, cell, NULL, 0, out, 64) != -1)
        FAIL("winograd3 took an odd depth, a width not a multiple of %d, or %d with a height not a multiple of 4", unit,
             unit / 2);
}

static void test_adam(const ollie_kernels *set, const ollie_kernels *ref) {
    static const int counts[] = {1, 7, 8, 9, 17, 100};
    for (int t = 0; t < 18; t++) {
        int count = counts[t % 6], steps = 1 + below(20);
        ollie_adam adam = {.lr = 3e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .epsilon = 1e-8f, .wd = 0.01f, .mode = t / 6};
        adam.keep = 1 - adam.lr * adam.wd;
        adam.correction1 = (float)(1 - pow(0.9f, steps)); adam.correction2 = (float)(1 - pow(0.999f, steps));
        float *w = randoms(count), *g = randoms(count), *m = randoms(count), *v = randoms(count);
        for (int i = 0; i < count; i++) v[i] = fabsf(v[i]) * 0.01f;
        float *state[2][3];
        for (int k = 0; k < 2; k++) {
            state[k][0] = malloc(sizeof(float) * count); memcpy(state[k][0], w, sizeof(float) * count);
            state[k][1] = malloc(sizeof(float) * count); memcpy(state[k][1], m, sizeof(float) * count);
            state[k][2] = malloc(sizeof(float) * count); memcpy(state[k][2], v, sizeof(float) * count);
        }
        checks++;
        set->adam_step(state[0][0], g, state[0][1], state[0][2], count, &adam);
        ref->adam_step(state[1][0], g, state[1][1], state[1][2], count, &adam);
        for (int k = 0; k < 3; k++)
            if (!same_bits(state[0][k], state[1][k], sizeof(float) * count)) { FAIL("adam_step %d mode %d: not portable's", count, adam.mode); break; }
        for (int i = 0; i < count; i++) {   /* Adam in double: within float roundings (m and v may nearly cancel) */
            double wi = adam.mode == 1 ? w[i] * (double)adam.keep : w[i], gi = adam.mode == 2 ? g[i] + (double)adam.wd * wi : g[i];
            double mi = 0.9 * m[i] + 0.1 * gi, vi = 0.999 * v[i] + 0.001 * gi * gi;
            double expected = wi - adam.lr * (mi / adam.correction1) / (sqrt(vi / adam.correction2) + adam.epsilon);
            if (fabs(state[0][0][i] - expected) > 1e-5 * (fabs(expected) + adam.lr)) { FAIL("adam_step mode %d: w[%d] %.9g, expected %.9g", adam.mode, i, state[0][0][i], expected); break; }
        }
        for (int k = 0; k < 2; k++) for (int j = 0; j < 3; j++) free(state[k][j]);
        free(w); free(g); free(m); free(v);
    }
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--chosen") == 0) {
        if (ollie_kernels_init() != 0) { printf("error: %s\n", ollie_kernels_error()); return 2; }
        printf("%s\n", ollie_kernels_current()->name);
        return 0;
    }
    const ollie_kernels *ref = ollie_kernels_named("portable");
    const char *const *all = ollie_kernels_all_names();
    int tested = 0;
    for (const char *const *name = all; *name; name++) {
        int wanted = argc == 1;
        for (int i = 1; i < argc; i++) wanted |= strcmp(argv[i], *name) == 0;
        if (!wanted) continue;
        const ollie_kernels *set = ollie_kernels_named(*name);
        if (!set) { printf("%-9s skipped: this CPU cannot run it\n", *name); continue; }
        set_name = *name;
        int before = failures, checked = checks;
        test_skinny(set, ref); test_nt_add(set, ref); test_conv(set, ref); test_im2col(set, ref);
        test_col2im(set, ref); test_relu(set, ref); test_pool(set, ref);
        test_route(set, ref); test_bias_relu(set, ref); test_adam(set, ref); test_winograd(set);
        printf("%-9s %d checks, %d failed\n", *name, checks - checked, failures - before);
        tested++;
    }
    if (!tested) { fprintf(stderr, "no set tested\n"); return 1; }
    return failures ? 1 : 0;
}
