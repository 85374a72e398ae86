/* The kernel table: chosen once from one CPU probe or from OLLIE_KERNELS, and the entry points
 * (ollie_blas.h) that call through it. */
#include "kernels_internal.h"
#include "ollie_blas.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
const ollie_kernels ollie_kernels_avx512 = {
    .name = "avx512", .fast_gemm = 1, .conv_widths = {16, 8, 0}, .conv_columns = 16,
    .skinny_sgemm = ollie_avx512_skinny_sgemm, .sgemm_nt_add = ollie_avx512_sgemm_nt_add,
    .conv_gemm = ollie_avx512_conv_gemm, .conv_gemm_nt_add = ollie_avx512_conv_gemm_nt_add,
    .col2im = ollie_avx512_col2im, .relu_mask_sum = ollie_avx512_relu_mask_sum,
    .maxpool2 = ollie_avx512_maxpool2, .maxpool_frames = ollie_avx512_maxpool_frames,
    /* Passes over memory that 8 lanes already keep up with, and a scatter: the avx2 set's. */
    .im2col3d = ollie_avx2_im2col3d, .maxpool2_route = ollie_avx2_maxpool2_route, .bias_relu = ollie_avx2_bias_relu,
    .adam_step = ollie_avx2_adam_step,
    .winograd3 = ollie_avx512_winograd3, .winograd3_width = 16,
    .winograd3_weight_gradient = ollie_avx512_winograd3_weight_gradient,
};
#endif

/* The sets built here, worst first; each with what the CPU must have. */
static const struct { const ollie_kernels *set; const char *needs; } sets[] = {
    {&ollie_kernels_portable, NULL},
#if defined(__x86_64__)
    {&ollie_kernels_avx2, "AVX2 and FMA"},
    {&ollie_kernels_avx512, "AVX-512 (F and BW)"},
#endif
#if defined(__aarch64__)
    {&ollie_kernels_neon, NULL},   /* Advanced SIMD is part of every arm64 CPU */
#endif
};
enum { set_count = sizeof sets / sizeof *sets };

static int runs(const ollie_kernels *set) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (set == &ollie_kernels_avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (set == &ollie_kernels_avx512) return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
#endif
    (void)set;
    return 1;
}

const ollie_kernels *ollie_kernels_named(const char *name) {
    for (int i = 0; i < set_count; i++)
        if (strcmp(sets[i].set->name, name) == 0) return runs(sets[i].set) ? sets[i].set : NULL;
    return NULL;
}

const char *const *ollie_kernels_all_names(void) {
    static const char *names[set_count + 1];
    for (int i = 0; i < set_count; i++) names[i] = sets[i].set->name;
    names[set_count] = NULL;
    return names;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const ollie_kernels *chosen;   /* read by every kernel call, from any thread: atomic */
static char error_text[256];

static void choose(void) {
    const char *wanted = getenv("OLLIE_KERNELS");
    if (!wanted || !*wanted) {
        const ollie_kernels *best = &ollie_kernels_portable;
        for (int i = 0; i < set_count; i++)
            if (runs(sets[i].set)) best = sets[i].set;
        __atomic_store_n(&chosen, best, __ATOMIC_RELEASE);
        return;
    }
    for (int i = 0; i < set_count; i++) {
        if (strcmp(sets[i].set->name, wanted) != 0) continue;
        if (runs(sets[i].set)) { __atomic_store_n(&chosen, sets[i].set, __ATOMIC_RELEASE); return; }
        snprintf(error_text, sizeof error_text, "OLLIE_KERNELS=%s: this CPU has no %s; unset it or use portable",
                 wanted, sets[i].needs);
        return;
    }
    int used = snprintf(error_text, sizeof error_text, "OLLIE_KERNELS=%s: no such kernel set here; use one of", wanted);
    for (int i = 0; i < set_count && used > 0 && (size_t)used < sizeof error_text; i++)
        used += snprintf(error_text + used, sizeof error_text - (size_t)used, "%s %s", i ? "," : "", sets[i].set->name);
}

int ollie_kernels_init(void) {
    pthread_once(&once, choose);
    return __atomic_load_n(&chosen, __ATOMIC_ACQUIRE) ? 0 : -1;
}

const char *ollie_kernels_error(void) { return error_text; }

const ollie_kernels *ollie_kernels_current(void) {
    const ollie_kernels *set = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (set) return set;
    if (ollie_kernels_init() != 0) {
        fprintf(stderr, "error: %s\n", error_text);
        exit(2);
    }
    return __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
}

int ollie_kernels_use(const char *name) {
    const ollie_kernels *set = ollie_kernels_named(name);
    if (!set) return -1;
    pthread_once(&once, choose);   /* so a later first call does not choose over it */
    __atomic_store_n(&chosen, set, __ATOMIC_RELEASE);
    return 0;
}

/* The packed A of the skinny and conv GEMMs, per thread. */
static __thread float *pack_buffer;
static __thread size_t pack_capacity;
static __thread struct { const float *A; int mr, transA, M, K, lda; } packed;

static void pack_a(int mr, int transA, int M, int K, const float *A, int lda, float *out) {
    int panels = (M + mr - 1) / mr;
    for (int p = 0; p < panels; p++, out += (size_t)K * mr)
        for (int k = 0; k < K; k++)
            for (int r = 0; r < mr; r++) {
                int i = p * mr + r;
                out[k * mr + r] = i < M ? (transA ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) : 0.0f;
            }
}

const float *ollie_packed_a(int mr, int transA, int M, int K, const float *A, int lda, int sameA) {
    size_t need = (size_t)((M + mr - 1) / mr) * mr * K;
    if (need > pack_capacity) {
        free(pack_buffer);
        pack_buffer = malloc((need ? need : 1) * sizeof(float));
        pack_capacity = pack_buffer ? need : 0;
        packed.A = NULL;
        if (!pack_buffer) return NULL;
    }
    if (!(sameA && packed.A == A && packed.mr == mr && packed.transA == transA && packed.M == M && packed.K == K
          && packed.lda == lda)) {
        pack_a(mr, transA, M, K, A, lda, pack_buffer);
        packed.A = A; packed.mr = mr; packed.transA = transA; packed.M = M; packed.K = K; packed.lda = lda;
    }
    return pack_buffer;
}

/* ollie_blas.h's entry points: the chosen set's kernels. */
int ollie_skinny_sgemm(int transA, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc, int sameA,
                       const float *bias, int relu) {
    return ollie_kernels_current()->skinny_sgemm(transA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, sameA, bias, relu);
}

int ollie_sgemm_nt_add(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    return ollie_kernels_current()->sgemm_nt_add(M, N, K, A, lda, B, ldb, C, ldc);
}

int ollie_conv_gemm(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                    const int *segments, int width, float *C, int ldc, int sameA, const float *bias, int relu) {
    return ollie_kernels_current()->conv_gemm(M, N, K, A, lda, src, row_offsets, segments, width, C, ldc, sameA, bias, relu);
}

int ollie_conv_gemm_nt_add(int M, int N, int K, const float *A, int lda, const float *src, const int *row_offsets,
                           const int *segments, int width, float *C, int ldc) {
    return ollie_kernels_current()->conv_gemm_nt_add(M, N, K, A, lda, src, row_offsets, segments, width, C, ldc);
}

void ollie_im2col3d(const float *padded, float *cols, int c, int n, int first, int count, int z0, int zn,
                    int dp, int hp, int wp, int kd, int kh, int kw, int oh, int ow) {
    ollie_kernels_current()->im2col3d(padded, cols, c, n, first, count, z0, zn, dp, hp, wp, kd, kh, kw, oh, ow);
}

void ollie_im2col(const float *padded, float *cols, int c, int n, int first, int count,
                  int hp, int wp, int kh, int kw, int oh, int ow) {
    ollie_im2col3d(padded, cols, c, n, first, count, 0, 1, 1, hp, wp, 1, kh, kw, oh, ow);
}

void ollie_col2im(const float *cols, float *dx, int c, int n, int first, int count,
                  int h, int w, int pad, int kh, int kw, int oh, int ow) {
    ollie_kernels_current()->col2im(cols, dx, c, n, first, count, h, w, pad, kh, kw, oh, ow);
}

float ollie_relu_mask_sum(const float *dy, const float *y, float *masked, int count) {
    return ollie_kernels_current()->relu_mask_sum(dy, y, masked, count);
}

float ollie_maxpool2_route(const float *dy, const float *y, const int *winners, int count, int masked, float *dx) {
    return ollie_kernels_current()->maxpool2_route(dy, y, winners, count, masked, dx);
}

void ollie_bias_relu(float *y, const float *bias, int rows, int columns, int stride, int relu) {
    ollie_kernels_current()->bias_relu(y, bias, rows, columns, stride, relu);
}

void ollie_adam_step(float *w, const float *g, float *m, float *v, int count, const ollie_adam *adam) {
    ollie_kernels_current()->adam_step(w, g, m, v, count, adam);
}

int ollie_maxpool2(const float *x, float *y, int *winners, int h, int w) {
    return ollie_kernels_current()->maxpool2(x, y, winners, h, w);
}

int ollie_maxpool_frames(const float *x, float *y, int *winners, int d, int h, int w, int kd,
                         float *frame_y, int *frame_winners) {
    return ollie_kernels_current()->maxpool_frames(x, y, winners, d, h, w, kd, frame_y, frame_winners);
}

int ollie_winograd3(int c, int oc, int n, int first, int count, int d, int h, int w, const float *padded,
                    const float *u, const float *bias, int relu, float *y, int ldy) {
    const ollie_kernels *set = ollie_kernels_current();
    return set->winograd3 ? set->winograd3(c, oc, n, first, count, d, h, w, padded, u, bias, relu, y, ldy) : -1;
}

int ollie_winograd3_weight_gradient(int c, int oc, int n, int first, int count, int d, int h, int w,
                                    const float *padded, const float *dy, int ldy, float *du) {
    const ollie_kernels *set = ollie_kernels_current();
    return set->winograd3_weight_gradient
        ? set->winograd3_weight_gradient(c, oc, n, first, count, d, h, w, padded, dy, ldy, du) : -1;
}
