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
        try Kernels.load()
        if ollie_blas_open(preferredCoreType()) != 0 {
            throw LoadError(description: String(cString: ollie_blas_error()))
        }
    }

    static func preferredCoreType() -> String? {
        if let chosen = getenv("OLLIE_BLAS_CORETYPE").map({ String(cString: $0) }), !chosen.isEmpty {
            return chosen == "env" ? nil : chosen
        }
        return Kernels.setName == "avx512" ? "SkylakeX" : nil
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

    /// Row-major C[M×N] = alpha·op(A)·op(B) + beta·C, where op(A) is M×K and op(B) is K×N.
    /// lda/ldb/ldc are the row strides of A, B and C as stored. `sameA`: A's values have not
    /// changed since the previous call on this thread (a layer's chunks), so a kernel that
    /// packs A may reuse its packed copy. `bias` (M floats): then C[i, :] += bias[i] and, with
    /// `relu`, max(·, 0): in the skinny kernel's registers, or as a pass over C after the others.
    ///
    /// A convolution's GEMMs go to the kernel set's own GEMMs where it has fast ones (avx2,
    /// avx512; measured faster than OpenBLAS on these shapes with AVX-512): W·cols and Wᵀ·dy
    /// (small op(A), long B read row by row) to the skinny kernel, which streams B instead of
    /// packing it; dW += dy·colsᵀ (long dot products of cache-resident rows) to the dot-product
    /// kernel. The rest, and everything under the portable set, goes to OpenBLAS.
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             sameA: Bool = false, bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        let fast = Kernels.current.fast_gemm != 0
        if fast && transB && !transA && alpha == 1 && beta == 1 && k >= 256 {
            let status = ollie_sgemm_nt_add(Int32(m), Int32(n), Int32(k), a, Int32(lda), b, Int32(ldb), c, Int32(ldc))
            // fatalError, not precondition: this target builds -Ounchecked, which drops preconditions.
            if status != 0 { fatalError("the \(Kernels.setName) kernels' dot GEMM failed on \(m)×\(n)×\(k)") }
            if let bias { ollie_bias_relu(c, bias, Int32(m), Int32(n), Int32(ldc), relu ? 1 : 0) }
            return
        }
        if fast && !transB && m * k <= 32_768 && n >= 256 {
            let status = ollie_skinny_sgemm(transA ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda),
                                           b, Int32(ldb), beta, c, Int32(ldc), sameA ? 1 : 0, bias, relu ? 1 : 0)
            if status != 0 { fatalError("the \(Kernels.setName) kernels' GEMM could not allocate its packed \(m)×\(k) matrix") }
            return
        }
        ollie_sgemm(transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
        if let bias { ollie_bias_relu(c, bias, Int32(m), Int32(n), Int32(ldc), relu ? 1 : 0) }
    }
}

/// ollie's own kernels: one table per instruction set (portable, avx2, avx512), chosen once at
/// start from the CPU or from `OLLIE_KERNELS` (see CBLAS/ollie_kernels.h). Callers ask the table
/// what it takes (`fastGEMM`, `convWidths`, `convColumns`); none knows a register width.
public enum Kernels {
    /// Chooses the set (once); throws the one-line reason when `OLLIE_KERNELS` names a set that
    /// does not exist or that this CPU cannot run. Programs call it at start.
    public static func load() throws {
        if ollie_kernels_init() != 0 {
            throw BLAS.LoadError(description: String(cString: ollie_kernels_error()))
        }
    }

    /// The set in use (a table of C function pointers).
    public static var current: ollie_kernels { ollie_kernels_current().pointee }

    /// Its name: "portable", "avx2" or "avx512".
    public static var setName: String { String(cString: ollie_kernels_current().pointee.name) }

    /// The segment widths (floats) the set's implicit-im2col GEMMs take, widest first; empty:
    /// convolutions write cols and multiply with BLAS.
    public static var convWidths: [Int] {
        let widths = current.conv_widths
        return [widths.0, widths.1, widths.2, widths.3].prefix { $0 != 0 }.map(Int.init)
    }

    /// Those GEMMs' column counts (N, or K of the weight gradient) must be multiples of this.
    public static var convColumns: Int { Int(current.conv_columns) }

    /// The set's Winograd 3×3×3 convolution takes frames of even depth and height whose width
    /// is a multiple of this, or half of it with a height that is a multiple of 4; nil: the set
    /// has none.
    public static var winograd3Width: Int? { current.winograd3 != nil ? Int(current.winograd3_width) : nil }

    /// Whether the set also computes that convolution's weight gradient in Winograd's domain.
    public static var hasWinograd3WeightGradient: Bool { current.winograd3_weight_gradient != nil }

    /// The sets this build has and this CPU runs, worst first (portable first, the default last).
    public static var available: [String] {
        var names: [String] = []
        var p = ollie_kernels_all_names()!
        while let name = p.pointee {
            if ollie_kernels_named(name) != nil { names.append(String(cString: name)) }
            p += 1
        }
        return names
    }

    /// FOR TESTS ONLY: runs `body` with set `name` in force for the whole process, then the
    /// set before it. Not while other threads run kernels.
    public static func withSet<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        let previous = setName
        if ollie_kernels_use(name) != 0 { fatalError("kernel set \(name) is not available here") }
        defer { if ollie_kernels_use(previous) != 0 { fatalError("kernel set \(previous) vanished") } }
        return try body()
    }
}
