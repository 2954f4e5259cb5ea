// cpu_gemm.cpp: single-precision GEMM for the CPU backend: packed panels, a 6x16 register tile written
// with the compiler's vector extension (8 floats per vector: AVX2 when built for x86-64-v3), and a plain
// split of rows or columns over the threads of parallel_for.h's pool. Accumulates in float with FMA.
//
// Blocking (Goto/BLIS style): for each KC-deep slice of K, B's slice is packed into NR-wide strips and A's
// MC-row block into MR-tall strips, so the inner loop streams both from contiguous, aligned memory.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "cpu/cpu_ops.h"
#include "parallel_for.h"

namespace resnest {

namespace {

constexpr int MR = 6;
constexpr int NR = 16;
constexpr int KC = 256;
constexpr int MC = 120;   // multiple of MR
constexpr int NC = 3072;  // multiple of NR

typedef float vec8 __attribute__((vector_size(32)));

struct AlignedFloats {
    float* ptr;
    explicit AlignedFloats(size_t count) {
        ptr = static_cast<float*>(std::aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64));
        if (!ptr) throw std::bad_alloc();
    }
    ~AlignedFloats() { std::free(ptr); }
};

// Packs A[0:mc, 0:kc] (row stride lda) into MR-row strips: strip s holds (kc, MR), zero-padded past mc.
void pack_a(int mc, int kc, const float* A, int lda, float* out) {
    for (int s = 0; s < mc; s += MR) {
        int rows = std::min(MR, mc - s);
        for (int k = 0; k < kc; k++) {
            for (int i = 0; i < rows; i++) out[i] = A[(size_t)(s + i) * lda + k];
            for (int i = rows; i < MR; i++) out[i] = 0.f;
            out += MR;
        }
    }
}

// Packs B[0:kc, 0:nc] (row stride ldb) into NR-column strips: strip s holds (kc, NR), zero-padded.
void pack_b(int kc, int nc, const float* B, int ldb, float* out) {
    for (int s = 0; s < nc; s += NR) {
        int cols = std::min(NR, nc - s);
        for (int k = 0; k < kc; k++) {
            const float* row = B + (size_t)k * ldb + s;
            if (cols == NR) {
                std::memcpy(out, row, NR * sizeof(float));
            } else {
                for (int j = 0; j < cols; j++) out[j] = row[j];
                for (int j = cols; j < NR; j++) out[j] = 0.f;
            }
            out += NR;
        }
    }
}

// C[0:rows, 0:cols] (+)= a_strip (kc, MR) x b_strip (kc, NR).
void gemm_tile_6x16(int kc, const float* a, const float* b, float* C, int ldc, bool accumulate, int rows, int cols) {
    vec8 acc[MR][2];
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = vec8{};
    for (int k = 0; k < kc; k++) {
        vec8 b0 = *reinterpret_cast<const vec8*>(b);
        vec8 b1 = *reinterpret_cast<const vec8*>(b + 8);
        for (int i = 0; i < MR; i++) {
            acc[i][0] += a[i] * b0;
            acc[i][1] += a[i] * b1;
        }
        a += MR;
        b += NR;
    }
    alignas(32) float tile[MR][NR];
    for (int i = 0; i < MR; i++) {
        std::memcpy(&tile[i][0], &acc[i][0], sizeof(vec8));
        std::memcpy(&tile[i][8], &acc[i][1], sizeof(vec8));
    }
    for (int i = 0; i < rows; i++) {
        float* c = C + (size_t)i * ldc;
        if (accumulate)
            for (int j = 0; j < cols; j++) c[j] += tile[i][j];
        else
            for (int j = 0; j < cols; j++) c[j] = tile[i][j];
    }
}

void sgemm_serial(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
                  bool accumulate) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        if (!accumulate)
            for (int i = 0; i < M; i++) std::memset(C + (size_t)i * ldc, 0, N * sizeof(float));
        return;
    }
    int nc_max = std::min(NC, (N + NR - 1) / NR * NR);
    AlignedFloats bpack((size_t)KC * nc_max);
    AlignedFloats apack((size_t)KC * MC);
    for (int jc = 0; jc < N; jc += NC) {
        int nc = std::min(NC, N - jc);
        for (int pc = 0; pc < K; pc += KC) {
            int kc = std::min(KC, K - pc);
            bool acc = accumulate || pc > 0;
            pack_b(kc, nc, B + (size_t)pc * ldb + jc, ldb, bpack.ptr);
            for (int ic = 0; ic < M; ic += MC) {
                int mc = std::min(MC, M - ic);
                pack_a(mc, kc, A + (size_t)ic * lda + pc, lda, apack.ptr);
                for (int jr = 0; jr < nc; jr += NR) {
                    const float* bs = bpack.ptr + (size_t)(jr / NR) * kc * NR;
                    for (int ir = 0; ir < mc; ir += MR) {
                        const float* as = apack.ptr + (size_t)(ir / MR) * kc * MR;
                        gemm_tile_6x16(kc, as, bs, C + (size_t)(ic + ir) * ldc + jc + jr, ldc, acc,
                                       std::min(MR, mc - ir), std::min(NR, nc - jr));
                    }
                }
            }
        }
    }
}

}  // namespace

void cpu_sgemm(int M, int N, int K, const float* A, int lda, const float* B, int ldb, float* C, int ldc,
               bool accumulate, int threads) {
    double flops = 2.0 * M * N * K;
    if (threads <= 1 || flops < 4e6) {
        sgemm_serial(M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    // Split the longer side into `threads` chunks aligned to the register tile.
    bool split_cols = N >= M || M < MR * threads;
    int extent = split_cols ? N : M;
    int align = split_cols ? NR : MR;
    int chunk = ((extent + threads - 1) / threads + align - 1) / align * align;
    int chunks = (extent + chunk - 1) / chunk;
    // A chunk's exception (out of memory for its packing buffers) reaches the caller.
    parallel_for_each_index(chunks, [&](int64_t index) {
        int begin = (int)index * chunk, len = std::min(chunk, extent - begin);
        if (split_cols)
            sgemm_serial(M, len, K, A, lda, B + begin, ldb, C + begin, ldc, accumulate);
        else
            sgemm_serial(len, N, K, A + (size_t)begin * lda, lda, B, ldb, C + (size_t)begin * ldc, ldc, accumulate);
    }, chunks);
}

}  // namespace resnest
