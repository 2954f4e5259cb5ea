// cuda_gemm_conv.h: a 1x1 convolution (see conv_as_gemm.h) as one cuBLASLt matmul at one batch size:
//   y (N*H*W, Cout) = relu?( x (N*H*W, Cin) * w (Cout, Cin)^T + bias + z )
// with the bias and the ReLU in cuBLASLt's epilogue and the residual z as its C matrix (beta = 1). One
// kernel where cuDNN's fused call may run several, and cuBLASLt's Hopper GEMMs for the small-batch shapes.
//
// The algorithm is one of cuBLASLt's heuristic candidates for the actual pointer alignments: the fastest
// of the first few by timing the call on the context's buffers, remembered in the algorithm cache by its
// rank in the heuristic list (the list is the same for the same GPU, library version and problem).
#pragma once
#include <cublasLt.h>

#include <string>

#include "conv_as_gemm.h"
#include "cuda/cuda_conv.h"

namespace resnest {

class GemmConvLaunch {
  public:
    GemmConvLaunch() = default;
    GemmConvLaunch(const GemmConvLaunch&) = delete;
    GemmConvLaunch& operator=(const GemmConvLaunch&) = delete;
    ~GemmConvLaunch();

    // Creates the matmul and matrix descriptors for p (conv_runs_as_gemm must hold) and the buffers `b`
    // (their alignment restricts the candidates; the bias pointer is part of the descriptor). Returns false
    // and says why when cuBLASLt has no matmul for this precision; throws on other failures.
    bool describe(const ConvProblem& p, const ConvBuffers& b, const std::string& node, std::string* why);
    // Takes the cached candidate for `key`, or times up to kMaxCandidates on `b` and keeps the fastest that
    // runs. Not during graph capture. Returns false when no candidate runs (the node stays on cuDNN).
    bool choose_algorithm(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream, ConvAlgoCache& cache,
                          const std::string& key, bool* from_cache);
    void launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;
    // Mean device time of a few launches after one untimed one, ms.
    float time_call(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;

    int algorithm() const { return rank_; }  // rank in cuBLASLt's heuristic list, -1 before a choice
    unsigned alignment() const { return align_; }  // bytes: the least alignment of the x, w, z and y pointers
    size_t workspace_needed() const { return workspace_; }

    static constexpr int kMaxCandidates = 6;
    static constexpr size_t kMaxWorkspaceBytes = 32ull << 20;

  private:
    cublasStatus_t try_launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;
    // cuBLASLt's candidates, best first; fewer than asked (or none) is normal.
    int heuristics(cublasLtHandle_t lt, size_t workspace_bytes, cublasLtMatmulHeuristicResult_t* out) const;

    ConvProblem p_;
    ConvAsGemm g_;
    std::string node_;
    const void* bias_ = nullptr;
    unsigned align_ = 256;  // the smallest alignment of the x, w, z and y pointers, bytes
    cublasLtMatmulDesc_t op_ = nullptr;
    cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;  // filter, x, y (and z)
    cublasLtMatmulAlgo_t algo_{};
    int rank_ = -1;
    size_t workspace_ = 0;
};

}  // namespace resnest
