// cuda_conv.h: one convolution node through cuDNN at one batch size: NHWC descriptors, the algorithm
// (from the cache or found by timing on the context's buffers, then tried once), and the launch:
//   relu:      cudnnConvolutionBiasActivationForward  y = relu(conv(x, w) + bias + z)
//   otherwise: cudnnConvolutionForward, then channel_affine_activation for bias and z.
#pragma once
#include <cudnn.h>

#include <string>

#include "conv_algo_cache.h"
#include "graph.h"
#include "resnest/engine.h"

namespace resnest {

struct ConvProblem {
    Conv2dAttrs attrs;
    int batch = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
    bool relu = false;
    bool has_z = false;  // residual input
    Precision precision = Precision::fp32;
};

// The problem of convolution node `n` of `g` at `batch` images in precision `p`, fused as the passes fused
// it (ReLU, residual input).
ConvProblem conv_problem(const Graph& g, const Node& n, int batch, Precision p);

// Device pointers of one launch. bias is T (cuDNN's fused call wants the data type), z and bias may be null.
struct ConvBuffers {
    const void* x;       // (N, H, W, Cin) T
    const void* w;       // (Cout, KH, KW, Cin/groups) T
    const void* bias;    // (Cout) T, or null
    const float* bias_f; // (Cout) float (for the unfused epilogue), or null
    const void* z;       // (N, OH, OW, Cout) T, or null
    void* y;             // (N, OH, OW, Cout) T
    void* workspace;
    size_t workspace_bytes;
};

// Whether a cached legacy choice names an algorithm and math type this cuDNN defines (the cache file is the
// user's to edit: an out-of-range value is a stale entry, searched again, never a cuDNN error).
bool legacy_choice_in_range(const ConvAlgoChoice& c);

// Whether a legacy cuDNN math type keeps the precision's promise: fp32 runs FMA math only (no TF32); tf32
// may use tensor cores but never CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, which lets cuDNN convert float inputs
// to half; fp16 data is half already, so every math type keeps it.
bool legacy_math_allowed(Precision p, int math_type);

class ConvLaunch {
  public:
    ConvLaunch() = default;
    ConvLaunch(const ConvLaunch&) = delete;
    ConvLaunch& operator=(const ConvLaunch&) = delete;
    ~ConvLaunch();

    // Creates the descriptors. `node` names the node in errors.
    void describe(const ConvProblem& p, const std::string& node);
    // Takes the cached algorithm for `key`, or times the candidates on `b` (cudnnFind...Ex) and keeps the
    // fastest that fits the workspace, respects the precision (no tensor-op math in fp32) and runs.
    // Not during graph capture. Returns true when the cache answered.
    bool choose_algorithm(cudnnHandle_t handle, const ConvBuffers& b, ConvAlgoCache& cache, const std::string& key);
    // Timed search: rank the candidates by timing the node's own call (fused bias/ReLU/residual included)
    // instead of cuDNN's timing of the plain convolution. Off by default (EngineOptions::conv_search).
    void set_timed_search(bool on) { timed_search_ = on; }
    // Uses `algo` as it is (tests pin an implicit-GEMM algorithm for exact checks); throws if it cannot run.
    void pin_algorithm(cudnnHandle_t handle, const ConvBuffers& b, cudnnConvolutionFwdAlgo_t algo);
    void launch(cudnnHandle_t handle, const ConvBuffers& b, cudaStream_t stream) const;

    const ConvProblem& problem() const { return p_; }
    int algorithm() const { return (int)algo_; }
    size_t workspace_needed() const { return workspace_; }

  private:
    cudnnStatus_t try_launch(cudnnHandle_t handle, const ConvBuffers& b) const;
    // Mean device time of the node's call over a few launches after one untimed one, ms.
    float time_call(cudnnHandle_t handle, const ConvBuffers& b) const;

    ConvProblem p_;
    std::string node_;
    cudnnTensorDescriptor_t x_ = nullptr, y_ = nullptr, bias_ = nullptr;
    cudnnFilterDescriptor_t w_ = nullptr;
    cudnnConvolutionDescriptor_t conv_ = nullptr;
    cudnnActivationDescriptor_t act_ = nullptr;
    cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
    size_t workspace_ = 0;
    bool timed_search_ = false;
};

}  // namespace resnest
