// cuda_conv_choice.h: how one convolution node runs at one batch size, chosen among
//   cudnn        cuDNN's legacy call on the grouped filter (conv_launch: always there, the fallback)
//   cudnn_dense  the same on the dense block-diagonal filter (grouped convolutions only)
//   cublaslt     one cuBLASLt matmul with the epilogue fused (1x1 convolutions only; cuda_gemm_conv)
//   cudnn_graph  cuDNN's operation graph conv -> bias -> residual -> ReLU (cuda_graph_conv)
//   cudnn_graph_per_group  the same graph for one group, run once a group on its channel slices
//                (grouped convolutions only)
//   im2col_cublaslt  the im2col gather into the workspace, then one cuBLASLt matmul with the dense filter
//                and the epilogue fused (every convolution but the 1x1 ones; where the matrix fits)
//   im2col_cublaslt_per_group  the group-major gather and one cuBLASLt matmul per group (a strided batch)
//   implicit_gemm  kernels/conv3x3_implicit_gemm.cu: one kernel, no im2col matrix (fp16 3x3 stride-1 pad-1
//                convolutions without a residual input, channels a group by 32 in and 64 out); a candidate
//                only when RESNEST_IMPLICIT_GEMM is auto or on (not yet measured on a GPU)
//   conv1x1_wmma  kernels/split_attention_combine_conv1x1.cu without gates or pool: our wmma 1x1 convolution
//                (fp16, C by 32, Cout by 64; bias, residual and ReLU in its epilogue, split K, a dependent
//                launch like our other kernels); likewise only with RESNEST_IMPLICIT_GEMM
// Each candidate is timed on the context's buffers once per layer shape and batch, and the fastest kept;
// the winner is remembered in the algorithm cache, so a later start builds only that one.
// EngineOptions::conv_gemm / conv_graph "on" take that way wherever it runs, "off" never try it (conv_gemm
// covers both cuBLASLt ways, conv_graph both graph ways; "on" means the whole-node graph).
#pragma once
#include <cublasLt.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conv3x3_implicit_gemm_geometry.h"
#include "conv_algo_cache.h"
#include "node_traffic.h"
#include "split_attention_combine_conv1x1_plan.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_gemm_conv.h"
#include "cuda/cuda_graph_conv.h"

namespace resnest {

enum class ConvImpl : int {
    cudnn = 0,
    cudnn_dense = 1,
    cublaslt = 2,
    cudnn_graph = 3,
    cudnn_graph_per_group = 4,
    im2col_cublaslt = 5,
    im2col_cublaslt_per_group = 6,  // a grouped convolution: group-major im2col, one matmul per group (batched)
    implicit_gemm = 7,
    conv1x1_wmma = 8
};
constexpr int kConvImpls = 9;
const char* conv_impl_name(ConvImpl impl);

// The choice's rule over the ways timed for one node, in candidate order (cuDNN's legacy call first): the
// lowest time, where a cuDNN graph way's counts kGraphRebuildMargin more, since its execution plan is built
// again at every start (the cached start's largest cost: 14 plans at batch 1, 0.35 s of choice at 6ebbad4)
// and many of its wins were within 1-2 % (noise); the earlier way on a tie. Returns the index into impls.
constexpr float kGraphRebuildMargin = 0.03f;
size_t fastest_conv_way(const std::vector<ConvImpl>& impls, const std::vector<float>& ms);

// What the choice needs from the context that makes it.
struct ConvChoiceEnv {
    cudnnHandle_t cudnn = nullptr;
    cublasLtHandle_t lt = nullptr;
    cudaStream_t stream = nullptr;
    ConvAlgoCache* cache = nullptr;
    std::string conv_gemm = "auto", conv_graph = "auto";  // auto | on | off
    std::string implicit_gemm = "off";                     // off | auto | on (RESNEST_IMPLICIT_GEMM)
    int multiprocessors = 0;                               // the implicit GEMM's split plan fills one wave
    int* tile_arrivals = nullptr;  // the implicit GEMM's per-tile counts: zero between launches
    // The context's programmatic-dependent-launch flag, read at each launch of our kernels (implicit_gemm,
    // conv1x1_wmma), so that they launch as the context's other kernels do; null: ordinary launches.
    const bool* dependent_launch = nullptr;
    bool prefetch_weights = true;  // our kernels ask L2 for their weights first (KernelStream::prefetch_weights)
    int tile_arrival_slots = 0;
    bool timed_search = false;
    bool verbose = false;
    int cublas_version = 0;
    int cublaslt_version = 0;  // in the keys of cuBLASLt's choices (a serialized algorithm is this build's)
};

// Our split-K kernels' split count on a context: the plan's `planned`, halved until the float partials
// (partial_bytes(splits)) fit the workspace and the `tiles` tile counts fit the context's slots; 1 where
// the context has no counts. Both the implicit 3x3 convolution and the combine + 1x1 kernel take theirs so.
int splits_within(int planned, int tiles, size_t workspace_bytes, const std::function<size_t(int)>& partial_bytes,
                  const ConvChoiceEnv& env);

class ConvNode {
  public:
    // Describes the candidates, chooses, and keeps the chosen one. `grouped` are the node's buffers with
    // the filter as the graph has it; `dense`, for grouped convolutions, with the dense filter.
    void prepare(const ConvProblem& p, const ConvAlgoKeyParts& key, const ConvBuffers& grouped,
                 const ConvBuffers* dense, const ConvChoiceEnv& env, const std::string& node);
    // Our kernels launch as dependent launches where env's flag says so, unless `ordinary` (the choice's
    // timing, which runs before the context's fallback to ordinary launches could catch a refusal).
    void launch(const ConvChoiceEnv& env, bool ordinary = false) const;

    // Split attention's pool in the implicit GEMM's epilogue (conv3x3_implicit_gemm.cuh): the chosen way must
    // be implicit_gemm, its output channels split `radix` ways by 64, and the image-by-image tiling within
    // conv3x3_implicit_gemm_pool_tiles_allowed. Then each launch also writes the pool partials
    // (N, pool_chunks(), Cout / radix) to `pool`, which holds `pool_floats`, and true is returned; else (or
    // where the partials would not fit) nothing changes. The K split is planned again for the new tiles.
    // pool_off() goes back to the tiling as timed.
    bool pool_on(float* pool, int64_t pool_floats, int radix, const ConvChoiceEnv& env);
    void pool_off(const ConvChoiceEnv& env);
    int pool_chunks() const { return implicit_.pool_radix > 0 ? implicit_.pool_chunks() : 0; }  // 0: off

    ConvImpl impl() const { return impl_; }
    // The K split of our kernels' ways (implicit_gemm, conv1x1_wmma; they count tiles in the context's
    // tile counts above 1), else 1.
    int k_splits() const {
        return impl_ == ConvImpl::implicit_gemm ? implicit_splits_ : impl_ == ConvImpl::conv1x1_wmma ? conv1x1_splits_ : 1;
    }
    // The filter the chosen way reads where that is a library call (cuDNN, cuBLASLt), and its size in *bytes,
    // for the kernel before it to ask L2 for (KernelStream::prefetch_weights); null for our kernels' ways,
    // which ask for their own.
    const void* library_filter(size_t* bytes) const;
    // How the chosen way runs, for the bytes it moves beyond the node's tensors (node_traffic.h, the profile).
    NodeWay way() const;
    const GraphConvLaunch* graph() const { return graph_.get(); }  // the cuDNN graph ways' launch, else null
    const GemmConvLaunch* gemm() const { return gemm_.get(); }     // the cuBLASLt ways' launch, else null
    bool legacy_from_cache() const { return legacy_from_cache_; }

  private:
    bool build(ConvImpl impl, const ConvProblem& p, const ConvAlgoKeyParts& key, const ConvBuffers& grouped,
               const ConvBuffers* dense, const ConvChoiceEnv& env, const std::string& node, std::string* why);
    float time(const ConvChoiceEnv& env) const;
    // Keeps s as the implicit GEMM's problem, with the most K splits (up to the plan's) that its partials
    // and the context's tile counts hold.
    void set_implicit(const ImplicitConv3x3Shape& s, const ConvChoiceEnv& env);

    ConvImpl impl_ = ConvImpl::cudnn;
    ConvProblem problem_{};  // as the way was built for
    std::unique_ptr<ConvLaunch> legacy_;  // cudnn or cudnn_dense
    std::unique_ptr<GemmConvLaunch> gemm_;
    std::unique_ptr<GraphConvLaunch> graph_;
    ConvBuffers buffers_{};  // the chosen way's buffers
    ImplicitConv3x3Shape implicit_{};  // implicit_gemm: the problem, its K split and whether ReLU follows
    int implicit_splits_ = 1;
    bool implicit_relu_ = false;
    float* implicit_pool_ = nullptr;  // split attention's pool partials, where pool_on
    CombineConv1x1Shape conv1x1_{};    // conv1x1_wmma: the problem (radix 1, no pool), K split, ReLU
    int conv1x1_splits_ = 1;
    bool conv1x1_relu_ = false;
    bool legacy_from_cache_ = false;
};

}  // namespace resnest
