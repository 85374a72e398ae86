/* What one training step's gradient exchange costs: 500 all-gathers of BYTES (default 67,760,
 * the reference convnet's 16,938 gradients + a loss per rank), blocking MPI_Allgather against
 * the MPI_Iallgather + MPI_Test polling ollie uses (spinning NAP_AFTER tests, then 50 µs naps).
 *   mpicc -O2 -o /tmp/mpi_allgather_bench scripts/mpi_allgather_bench.c
 *   mpirun -np 2 /tmp/mpi_allgather_bench [BYTES] [NAP_AFTER] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size; MPI_Comm_rank(MPI_COMM_WORLD, &rank); MPI_Comm_size(MPI_COMM_WORLD, &size);
    int bytes = argc > 1 ? atoi(argv[1]) : 67760; int napAfter = argc > 2 ? atoi(argv[2]) : 2000;
    char *s = calloc(bytes, 1), *r = calloc((size_t)bytes * size, 1);
    for (int mode = 0; mode < 2; mode++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t = MPI_Wtime();
        for (int i = 0; i < 500; i++) {
            if (mode == 0) MPI_Allgather(s, bytes, MPI_BYTE, r, bytes, MPI_BYTE, MPI_COMM_WORLD);
            else {
                MPI_Request q; MPI_Iallgather(s, bytes, MPI_BYTE, r, bytes, MPI_BYTE, MPI_COMM_WORLD, &q);
                for (long spin = 0;; spin++) { int done = 0; MPI_Test(&q, &done, MPI_STATUS_IGNORE); if (done) break;
                    if (spin > napAfter) { struct timespec n = {0, 50000}; nanosleep(&n, NULL); } }
            }
        }
        double dt = (MPI_Wtime() - t) / 500;
        if (rank == 0) printf("%s: %.1f us per allgather of %d bytes\n", mode ? "Iallgather+Test" : "Allgather", dt * 1e6, bytes);
    }
    MPI_Finalize();
}
