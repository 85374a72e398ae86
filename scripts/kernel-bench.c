/* Where one training step of the reference net spends its kernel time, layer by layer: each
 * kernel of a kernel set timed alone on the shapes one worker thread gives it (64 images of a
 * batch of 128 on 2 threads; the chunk sizes of NN/Convolution/ChunkedPlaneConvolution.swift),
 * best of 7 rounds, times the calls a step makes. A benchmark, not a test: the Swift glue, the
 * optimizer and the threads' waits are not in it (compare the sum with ollie-bench's epoch).
 * A set without GEMMs of its own (portable) is timed with OpenBLAS's, one thread, as
 * Tensor/BLAS.swift routes them.
 *
 *   bash scripts/kernel-bench.sh [SET]        (default: the set this CPU would choose)
 */
#define _GNU_SOURCE
#include "ollie_blas.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *randoms(size_t n) {
    float *p = malloc(sizeof(float) * (n + 64));
    for (size_t i = 0; i < n + 64; i++) p[i] = (float)(rand() % 2001 - 1000) / 1000.0f;
    return p;
}

/* Seconds per call of `body`, best of 7 rounds of `reps` calls. */
#define BEST(reps, body) ({ double best_ = 1e9; \
    for (int round_ = 0; round_ < 7; round_++) { double t0_ = now(); \
        for (int r_ = 0; r_ < (reps); r_++) { body; } \
        double t_ = (now() - t0_) / (reps); if (t_ < best_) best_ = t_; } best_; })

int main(int argc, char **argv) {
    const ollie_kernels *k;
    if (argc > 1) {
        k = ollie_kernels_named(argv[1]);
        if (!k) { fprintf(stderr, "error: no kernel set '%s' here, or this CPU cannot run it\n", argv[1]); return 1; }
    } else {
        if (ollie_kernels_init() != 0) { fprintf(stderr, "error: %s\n", ollie_kernels_error()); return 1; }
        k = ollie_kernels_current();
    }
    enum { IMAGES = 64 };   /* one thread's share of a batch of 128 */
    if (!k->fast_gemm) {
        if (ollie_blas_open(NULL) != 0) { fprintf(stderr, "error: %s\n", ollie_blas_error()); return 1; }
        ollie_blas_set_threads(1);
    }
    /* conv 3x3 (pad 1) + ReLU + pool 2 layers of the reference net: in channels, out channels,
     * input side, images per chunk (cols and pooled output within 512 KB), input gradient? */
    struct { const char *name; int c, oc, side, chunk, backward_data; } layers[] = {
        {"conv1 1-16 28x28", 1, 16, 28, 6, 0}, {"conv2 16-32 14x14", 16, 32, 14, 3, 1}, {"conv3 32-32 7x7", 32, 32, 7, 8, 1},
    };
    printf("kernel set %s%s, reference net:\nmicroseconds per training step of one thread (%d images)\n\n",
           k->name, k->fast_gemm ? "" : " (GEMMs: OpenBLAS)", IMAGES);
    printf("%-17s %8s %8s %8s %8s %8s %8s %8s\n", "layer", "im2col", "W*cols", "pool", "dW", "Wt*dy", "col2im", "total");
    double all = 0;
    for (int l = 0; l < 3; l++) {
        int c = layers[l].c, oc = layers[l].oc, side = layers[l].side, chunk = layers[l].chunk;
        int hp = side + 2, rows = c * 9, span = chunk * side * side, calls = (IMAGES + chunk - 1) / chunk;
        float *padded = randoms((size_t)c * IMAGES * hp * hp), *cols = randoms((size_t)rows * span);
        float *w = randoms((size_t)oc * rows), *y = randoms((size_t)oc * span), *dw = randoms((size_t)oc * rows);
        float *dx = randoms((size_t)c * IMAGES * side * side), *pooled = randoms((size_t)oc * IMAGES * side * side / 4);
        int *winners = malloc(sizeof(int) * ((size_t)oc * IMAGES * side * side / 4 + 64));
        int reps = 50;
        /* Forward: im2col and W·cols per chunk (the bias and ReLU added in the tiles, as the
         * layers ask; w's first values stand in for the bias), the pool per output plane;
         * backward: im2col again (all chunks but the last one forward left), dW += dy·colsᵀ,
         * dcols = Wᵀ·dy and col2im (not for the first layer). */
        double im2col = BEST(reps, k->im2col3d(padded, cols, c, IMAGES, 0, chunk, 0, 1, 1, hp, hp, 1, 3, 3, side, side))
                        * (2 * calls - 1);
        double forward = (k->fast_gemm ? BEST(reps, k->skinny_sgemm(0, oc, span, rows, 1, w, rows, cols, span, 0, y, span, r_ > 0, w, 1))
                                        : BEST(reps, ollie_sgemm(0, 0, oc, span, rows, 1, w, rows, cols, span, 0, y, span))) * calls;
        double pool = BEST(5, for (int q = 0; q < oc * IMAGES; q++)
                               k->maxpool2(y + (size_t)(q % (oc * chunk)) * side * side, pooled + (size_t)q * (side / 2) * (side / 2),
                                           winners + (size_t)q * (side / 2) * (side / 2), side, side));
        double weights = (k->fast_gemm ? BEST(reps, k->sgemm_nt_add(oc, rows, span, y, span, cols, span, dw, rows))
                                        : BEST(reps, ollie_sgemm(0, 1, oc, rows, span, 1, y, span, cols, span, 1, dw, rows))) * calls;
        double data = 0, col2im = 0;
        if (layers[l].backward_data) {
            data = (k->fast_gemm ? BEST(reps, k->skinny_sgemm(1, rows, span, oc, 1, w, rows, y, span, 0, cols, span, r_ > 0, NULL, 0))
                                 : BEST(reps, ollie_sgemm(1, 0, rows, span, oc, 1, w, rows, y, span, 0, cols, span))) * calls;
            col2im = BEST(reps, k->col2im(cols, dx, c, IMAGES, 0, chunk, side, side, 1, 3, 3, side, side)) * calls;
        }
        double total = im2col + forward + pool + weights + data + col2im;
        all += total;
        printf("%-17s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f\n", layers[l].name, im2col * 1e6, forward * 1e6, pool * 1e6,
               weights * 1e6, data * 1e6, col2im * 1e6, total * 1e6);
        free(padded); free(cols); free(w); free(y); free(dw); free(dx); free(pooled); free(winners);
    }
    printf("\nall three layers: %.0f us a step, %.2f s for an epoch's 469 steps\n", all * 1e6, all * 469);
    return 0;
}
