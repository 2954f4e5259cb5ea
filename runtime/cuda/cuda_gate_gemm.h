// cuda_gate_gemm.h: split attention's gate (kernels/split_attention_gate.cuh) as two cuBLASLt matrix products
// and one kernel, for cardinality 1 and a pool of one chunk per image (the large batches):
//   hidden (N, inter) = relu(gap (N, C) * fc1_w^T / hw + fc1_b)    one matmul, bias + ReLU epilogue
//   attn (N, R*C)     = hidden * fc2_w^T + fc2_b                    one matmul, bias epilogue
//   attn              = softmax over the R splits of each channel   split_attention_radix_softmax.cu
// One block per image reads all the fc weights once per image (layer 4: 1.5 MB, from L2 at batch 128); the
// matrix products read them once for the batch. Float throughout, as the gate kernels (fp32 compute, summed
// in another order). The CUDA backend times this form against the gate kernels per node and batch size.
//
// Column-major view of the row-major buffers: fc1_w (inter, C) is (C x inter), used transposed; gap (N, C)
// is (C x N); hidden (N, inter) is (inter x N) with the bias one value per row; the same for fc2.
#pragma once
#include <cublasLt.h>

#include <string>

#include "kernel_stream.h"
#include "split_attention_gate.cuh"

namespace resnest {

struct GateGemmBuffers {
    const float* gap = nullptr;     // (N, 1, C): the pool's sums, one chunk
    const float* fc1_w = nullptr;   // (inter, C), BN folded in
    const float* fc1_b = nullptr;   // (inter)
    const float* fc2_w = nullptr;   // (R*C, inter)
    const float* fc2_b = nullptr;   // (R*C)
    float* hidden = nullptr;        // (N, inter)
    float* attn = nullptr;          // (N, R*C)
};

class GateGemmLaunch {
  public:
    GateGemmLaunch() = default;
    GateGemmLaunch(const GateGemmLaunch&) = delete;
    GateGemmLaunch& operator=(const GateGemmLaunch&) = delete;
    ~GateGemmLaunch();

    // Creates both matmuls' descriptors. False with why where this form does not apply: cardinality above 1
    // (a grouped fc), a pool in more than one chunk, or a radix over kSplitAttentionMaxRadix.
    bool describe(const SplitAttentionGateShape& s, const GateGemmBuffers& b, const std::string& node, std::string* why);
    // cuBLASLt's first heuristic algorithm for each product (no workspace). False with why when it has none.
    bool choose_algorithms(cublasLtHandle_t lt, std::string* why);
    // Both chosen algorithms serialized (fc1's cublasLtMatmulAlgo_t then fc2's, as hex) for the algorithm
    // cache, and back: restore_algorithms takes them where they parse and cuBLASLt accepts each for its
    // product without workspace (cublasLtMatmulAlgoCheck), so a cached start skips the heuristic queries.
    // False (nothing taken) otherwise: the caller asks the heuristics instead.
    std::string algorithms_hex() const;
    bool restore_algorithms(cublasLtHandle_t lt, const std::string& hex);
    // Both matmuls, then the softmax kernel (a dependent launch where `stream` says so).
    void launch(cublasLtHandle_t lt, KernelStream stream) const;

  private:
    struct Matmul {
        cublasLtMatmulDesc_t op = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
        cublasLtMatmulAlgo_t algo{};
        bool chosen = false;
        float alpha = 1.0f;
        const float *A = nullptr, *B = nullptr, *bias = nullptr;
        float* D = nullptr;
        unsigned align = 256;  // least alignment of A, B, D and their columns, bytes
    };
    // D (m x n) = act(alpha * A^T B + bias), A (k x m), B (k x n), all column-major with leading dimensions k,
    // k and m.
    void describe_matmul(Matmul& mm, int m, int n, int k, const float* A, const float* B, float* D,
                         const float* bias, bool relu, float alpha);
    bool choose(cublasLtHandle_t lt, Matmul& mm);
    static void destroy(Matmul& mm);

    SplitAttentionGateShape s_{};
    GateGemmBuffers b_;
    std::string node_;
    Matmul fc1_, fc2_;
};

}  // namespace resnest
