/* Where one training step of the reference net spends its kernel time, layer by layer: each
 * kernel of a kernel set timed alone on the shapes one worker thread gives it (64 images of a
 * batch of 128 on 2 threads; the chunk sizes of NN/Convolution/ChunkedPlaneConvolution.swift),
 * best of 7 rounds, times the calls a step makes. A benchmark, not a test: the Swift glue, the
 * optimizer and the threads' waits are not in it (compare the sum with ollie-bench's epoch).
 * A set without GEMMs of its own (portable) is timed with OpenBLAS's, one thread, as
 * Tensor/BLAS.swift routes them. Then the same for the 3-D trick net's three convolutions and
 * their fused pools (8 clips of a batch of 16; the blocks of StrideOneConvolution.swift), in a
 * set whose conv GEMMs read an implicit im2col; y, dx and dW by Winograd's convolution where
 * the layer would take it (winograd.c).
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

/* Row (c, kz, ky, kx)'s offset in a zero-bordered [channels, n, dp, hp, wp] volume, as
 * StrideOneConvolution.tapOffsets. */
static int *tap_offsets(int channels, int n, int dp, int hp, int wp) {
    int *t = malloc(sizeof(int) * channels * 27), i = 0;
    for (int c = 0; c < channels; c++)
        for (int kz = 0; kz < 3; kz++)
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) t[i++] = c * n * dp * hp * wp + (kz * hp + ky) * wp + kx;
    return t;
}

/* Where each `width` output columns of samples first..<first+count, frames z0..<z0+zn start
 * (StrideOneConvolution.fillSegments); returns how many. */
static int fill_segments(int *s, int first, int count, int z0, int zn, int dp, int hp, int wp, int oh, int ow, int width) {
    int i = 0;
    for (int b = first; b < first + count; b++)
        for (int z = z0; z < z0 + zn; z++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x += width) s[i++] = ((b * dp + z) * hp + y) * wp + x;
    return i;
}

/* The 3-D trick net (conv 3x3x3 16 relu | pool 1x2x2 | conv 3x3x3 32 relu | pool 2 |
 * conv 3x3x3 32 relu | pool 2 | gap | dense 5, clips of 16 frames of 32×32): its fused
 * convolution + pool layers, one thread's 8 clips. Blocks as StrideOneConvolution's: up to
 * 1 MB of (in + out channels) × frame columns, whole samples when they fit. */
static void trick_net(const ollie_kernels *k) {
    int width16 = 0, width8 = 0;
    for (int i = 0; k->conv_widths[i]; i++) { width16 |= k->conv_widths[i] == 16; width8 |= k->conv_widths[i] == 8; }
    if (!width16 || !width8) { printf("\n3-D trick net: the %s set reads no implicit im2col (its layers write cols)\n", k->name); return; }
    enum { CLIPS = 8 };
    struct { const char *name; int c, oc, d, side, kd, backward_data; } layers[] = {
        {"conv1 1-16 16x32x32", 1, 16, 16, 32, 1, 0}, {"conv2 16-32 16x16x16", 16, 32, 16, 16, 2, 1},
        {"conv3 32-32 8x8x8", 32, 32, 8, 8, 2, 1},
    };
    printf("\n3-D trick net, kernel set %s:\nmicroseconds per training step of one thread (%d clips)\n\n", k->name, CLIPS);
    printf("%-20s %8s %8s %8s %8s %8s %8s\n", "layer", "W*x", "pool", "route", "dW", "Wt*dy", "total");
    double all = 0;
    for (int l = 0; l < 3; l++) {
        int c = layers[l].c, oc = layers[l].oc, d = layers[l].d, side = layers[l].side, kd = layers[l].kd;
        int dp = d + 2, hp = side + 2, plane = side * side, volume = d * plane, width = side % 16 == 0 ? 16 : 8;
        int rows = c * 27, back_rows = oc * 27, ldy = CLIPS * volume;
        int frames = (1 << 20) / ((oc + c) * plane * 4);
        if (frames < 1) frames = 1;
        int samples = frames >= d ? (frames / d < CLIPS ? frames / d : CLIPS) : 1, zn = frames >= d ? d : frames;
        float *x = randoms((size_t)c * CLIPS * dp * hp * hp), *g = randoms((size_t)oc * CLIPS * dp * hp * hp);
        float *w = randoms((size_t)oc * rows), *y = randoms((size_t)oc * ldy), *dw = randoms((size_t)oc * rows);
        float *dx = randoms((size_t)c * ldy), *dy = randoms((size_t)oc * ldy);
        int pooled_volume = (d / kd) * (side / 2) * (side / 2);
        float *pooled = randoms((size_t)oc * CLIPS * pooled_volume), *frame_y = randoms(plane / 4);
        int *winners = malloc(sizeof(int) * ((size_t)oc * CLIPS * pooled_volume + 64)), *frame_winners = malloc(sizeof(int) * (plane / 4 + 64));
        int *taps = tap_offsets(c, CLIPS, dp, hp, hp), *back_taps = tap_offsets(oc, CLIPS, dp, hp, hp);
        int *segments = malloc(sizeof(int) * (size_t)CLIPS * volume / 8);
        int reps = 3;
        double forward = 0, weights = 0, data = 0;
        /* Where the set has Winograd's convolution and the layer's shapes take it (as
         * StrideOneConvolution.usesWinograd: 8 channels in or more), y and dx go that way:
         * the weights' transform, then one call a clip. */
        int wino_w = k->winograd3 && (side % k->winograd3_width == 0 || (2 * side == k->winograd3_width && side % 4 == 0));
        float *u = malloc(sizeof(float) * 64 * (size_t)(c > oc ? c : oc) * ollie_winograd3_rows(c > oc ? c : oc));
        int wino_forward = wino_w && c >= 8, wino_data = wino_w && oc >= 8;
        /* Every block of the step: forward, the weight gradient and (but for the first layer) the
         * input gradient, whose blocks are the input's frames (the same sizes here). */
        for (int first = 0; first < CLIPS; first += samples)
            for (int z0 = 0; z0 < d; z0 += zn) {
                int count = CLIPS - first < samples ? CLIPS - first : samples, frames_here = d - z0 < zn ? d - z0 : zn;
                int n = fill_segments(segments, first, count, z0, frames_here, dp, hp, hp, side, side, width);
                int span = n * width, at = (first * d + z0) * plane;
                if (!wino_forward)
                    forward += BEST(reps, k->conv_gemm(oc, span, rows, w, rows, x, taps, segments, width, y + at, ldy, r_ > 0, w, 1));
                if (!(wino_w && k->winograd3_weight_gradient && c >= 8 && oc >= 8))
                    weights += BEST(reps, k->conv_gemm_nt_add(oc, rows, span, dy + at, ldy, x, taps, segments, width, dw, rows));
                if (layers[l].backward_data && !wino_data)
                    data += BEST(reps, k->conv_gemm(c, span, back_rows, w, back_rows, g, back_taps, segments, width, dx + at, ldy,
                                                    r_ > 0, NULL, 0));
            }
        if (wino_forward)
            forward = BEST(reps, ollie_winograd3_weights(w, oc, c, u);
                           for (int b = 0; b < CLIPS; b++) k->winograd3(c, oc, CLIPS, b, 1, d, side, side, x, u, w, 1, y, ldy));
        if (wino_w && k->winograd3_weight_gradient && c >= 8 && oc >= 8) {   /* and dW, from 8 channels each side */
            float *du = malloc(sizeof(float) * 64 * (size_t)oc * c);
            weights = BEST(reps, memset(du, 0, sizeof(float) * 64 * (size_t)oc * c);
                           k->winograd3_weight_gradient(c, oc, CLIPS, 0, CLIPS, d, side, side, x, dy, ldy, du);
                           ollie_winograd3_weight_gradient_add(du, oc, c, dw));
            free(du);
        }
        if (layers[l].backward_data && wino_data)
            data = BEST(reps, ollie_winograd3_weights(w, c, oc, u);
                        for (int b = 0; b < CLIPS; b++) k->winograd3(oc, c, CLIPS, b, 1, d, side, side, g, u, NULL, 0, dx, ldy));
        /* The fused pool of each (channel, clip) volume, and its backward: the output gradient
         * zeroed, then the pooled gradient routed to the winners under the ReLU's mask. */
        double pool = BEST(reps, for (int q = 0; q < oc * CLIPS; q++)
                                     k->maxpool_frames(y + (size_t)q * volume, pooled + (size_t)q * pooled_volume,
                                                       winners + (size_t)q * pooled_volume, d, side, side, kd, frame_y, frame_winners));
        double route = BEST(reps, memset(dy, 0, sizeof(float) * oc * ldy);
                            for (int q = 0; q < oc * CLIPS; q++)
                                k->maxpool2_route(pooled + (size_t)q * pooled_volume, pooled + (size_t)q * pooled_volume,
                                                  winners + (size_t)q * pooled_volume, pooled_volume, 1, dy + (size_t)q * volume));
        double total = forward + pool + route + weights + data;
        all += total;
        printf("%-20s %8.0f %8.0f %8.0f %8.0f %8.0f %8.0f\n", layers[l].name, forward * 1e6, pool * 1e6, route * 1e6,
               weights * 1e6, data * 1e6, total * 1e6);
        free(x); free(g); free(w); free(y); free(dw); free(dx); free(dy); free(pooled); free(frame_y);
        free(winners); free(frame_winners); free(taps); free(back_taps); free(segments); free(u);
    }
    printf("\nall three layers: %.0f us a step, %.2f s for an epoch's 50 steps\n", all * 1e6, all * 50);
}

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
    trick_net(k);
    return 0;
}
