import CBLAS
import Foundation

/// The matrix-multiply backend: OpenBLAS, loaded on first use (see CBLAS/ollie_blas.h).
public enum BLAS {
    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Loads OpenBLAS with the chosen kernel family. By default ollie asks for the AVX-512
    /// ("SkylakeX") kernels where the CPU has them — measured faster on this workload than the
    /// AVX2 ones the environment may ask for (BENCHMARKS.md). `OLLIE_BLAS_CORETYPE` overrides,
    /// and `OLLIE_BLAS_CORETYPE=env` keeps the environment's OPENBLAS_CORETYPE.
    public static func load() throws {
        if ollie_blas_open(preferredCoreType()) != 0 {
            throw LoadError(description: String(cString: ollie_blas_error()))
        }
    }

    static func preferredCoreType() -> String? {
        if let chosen = getenv("OLLIE_BLAS_CORETYPE").map({ String(cString: $0) }), !chosen.isEmpty {
            return chosen == "env" ? nil : chosen
        }
        return ollie_cpu_has_avx512() != 0 ? "SkylakeX" : nil
    }

    /// The kernel family OpenBLAS is using, e.g. "SkylakeX".
    public static var coreName: String {
        try? load()
        return String(cString: ollie_blas_corename())
    }

    /// OpenBLAS's own thread count. ollie parallelizes over the batch itself and keeps this at 1.
    public static var threads: Int {
        get { try? load(); return Int(ollie_blas_get_threads()) }
        set { try? load(); ollie_blas_set_threads(Int32(newValue)) }
    }

    /// Whether ollie's own AVX-512 kernel takes the skinny GEMMs (see CBLAS/skinny_gemm.c):
    /// on CPUs with AVX-512, unless `OLLIE_GEMM=openblas`.
    public static let skinnyKernel: Bool = ollie_cpu_has_avx512() != 0
        && getenv("OLLIE_GEMM").map { String(cString: $0) } != "openblas"

    /// Row-major C[M×N] = alpha·op(A)·op(B) + beta·C, where op(A) is M×K and op(B) is K×N.
    /// lda/ldb/ldc are the row strides of A, B and C as stored. `sameA`: A's values have not
    /// changed since the previous call on this thread (a layer's chunks), so a kernel that
    /// packs A may reuse its packed copy.
    ///
    /// A convolution's GEMMs go to ollie's AVX-512 kernels where measured faster: W·cols and
    /// Wᵀ·dy (small op(A), long B read row by row) to the skinny kernel, which streams B
    /// instead of packing it; dW += dy·colsᵀ (long dot products of cache-resident rows) to the
    /// dot-product kernel. The rest goes to OpenBLAS.
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             sameA: Bool = false) {
        if skinnyKernel && transB && !transA && alpha == 1 && beta == 1 && k >= 256,
           ollie_sgemm_nt_add(Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), c, Int32(ldc)) == 0 {
            return
        }
        if skinnyKernel && !transB && m * k <= 32_768 && n >= 256,
           ollie_skinny_sgemm(transA ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                              b, Int32(ldb), beta, c, Int32(ldc), sameA ? 1 : 0) == 0 {
            return
        }
        ollie_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
