/* How long rank 0 takes to broadcast a dataset to the other ranks, to compare with every rank
 * reading it itself (BENCHMARKS.md, "MPI"). Broadcasts BYTES (default MNIST as ollie holds it:
 * 70,000 × 784 floats + labels = 219.8 MB) REPEAT times and prints the best time.
 *   mpicc -O2 -o /tmp/mpi_broadcast_bench scripts/mpi_broadcast_bench.c
 *   mpirun -np 2 /tmp/mpi_broadcast_bench [BYTES] [REPEAT] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    long bytes = argc > 1 ? atol(argv[1]) : 70000L * 784 * 4 + 70000L * 4;
    int repeat = argc > 2 ? atoi(argv[2]) : 3;
    char *buffer = malloc(bytes);
    memset(buffer, rank, bytes);   /* touch every page first: a real load's memory is resident */
    double best = 1e30;
    for (int r = 0; r < repeat; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        for (long at = 0; at < bytes; at += 1L << 30) {
            long piece = bytes - at < (1L << 30) ? bytes - at : (1L << 30);
            MPI_Bcast(buffer + at, (int)piece, MPI_BYTE, 0, MPI_COMM_WORLD);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        double seconds = MPI_Wtime() - start;
        if (seconds < best) best = seconds;
    }
    if (rank == 0) printf("broadcast of %.1f MB to %d ranks: %.3f s (best of %d), %.2f GB/s\n", bytes / 1e6, size, best, repeat, bytes / best / 1e9);
    free(buffer);
    MPI_Finalize();
    return 0;
}
