// cuda_engine.cpp: the CUDA backend's engine (cuda_engine.h): the weights on the device, the memory plan,
// the algorithm cache, and cuda_backend.h's factory.
#include "cuda/cuda_engine.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "conv3x3_implicit_gemm_geometry.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_l2_weights.h"
#include "fusion_pairs.h"
#include "planner.h"
#include "split_attention_combine.cuh"
#include "split_attention_gate.cuh"
#include "split_attention_pool.cuh"

namespace resnest {

CudaEngine::CudaEngine(Graph graph, const HostWeights& weights, const EngineOptions& options,
                       const ModelSummary& summary, std::vector<std::string> pass_log)
    : graph_(std::move(graph)) {
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    options_ = options;
    summary_ = summary;
    pass_log_ = std::move(pass_log);
    // The host's part first: it runs beside CUDA's initialisation where Engine::load started it.
    esize_ = (size_t)storage_bytes(options.precision);
    // The environment's settings; a value that is none of a setting's is named in a warning.
    std::string warning;
    auto warn = [&] {
        if (!warning.empty()) std::fprintf(stderr, "resnest: warning: %s\n", warning.c_str());
    };
    row_lanes_requested_ = attention_pool_row_lanes_from(std::getenv("RESNEST_ATTENTION_POOL"), &warning);
    warn();
    implicit_gemm_mode_ = implicit_gemm_mode_from(std::getenv("RESNEST_IMPLICIT_GEMM"), &warning);
    warn();
    weight_prefetch_ = weight_prefetch_from(std::getenv("RESNEST_WEIGHT_PREFETCH"), &warning);
    warn();
    l2_weights_mode_ = l2_weights_mode_from(std::getenv("RESNEST_L2_WEIGHTS"), &warning);
    warn();
    // RESNEST_SPLIT_K and RESNEST_CHOICE_TIMING are read where they act (once a process), RESNEST_CUDA_DEBUG by
    // each context from here; each is named here when it holds neither of its values.
    env_setting_is("RESNEST_SPLIT_K", std::getenv("RESNEST_SPLIT_K"), "on", "off",
                   "the convolution choice times cuBLASLt's split-K forms", &warning);
    warn();
    env_setting_is("RESNEST_CHOICE_TIMING", std::getenv("RESNEST_CHOICE_TIMING"), "replays", "launches",
                   "the choices time short calls as CUDA graph replays", &warning);
    warn();
    debug_sync_ = env_setting_is("RESNEST_CUDA_DEBUG", std::getenv("RESNEST_CUDA_DEBUG"), "0", "1",
                                 "kernels run without a synchronisation after each", &warning);
    warn();
    check_supported();
    // The NHWC input is written at the start of every forward pass: it takes a block in the arena,
    // which later activations reuse once the stem has read it. Where split attention's weighted sum or an
    // average pool may be folded into the 1x1 convolution after it (our fp16 kernels asked for), its input
    // lives until that convolution.
    const bool folds = implicit_gemm_mode_ != "off" && options.precision == Precision::fp16;
    plan_ = plan_memory(graph_, options.max_batch, (int64_t)esize_, /*input_in_arena=*/true,
                        folds ? conv1x1_fold_reads(graph_) : std::vector<ExtraRead>{});
    WeightBlob blob = build_weight_blob(graph_, weights, options.precision);
    auto t_layout = clock::now();
    device_ = cuda_device_info(options.device);
    CUDA_CHECK(cudaSetDevice(options.device));
    auto t_device = clock::now();
    upload(blob);
    auto t_upload = clock::now();
    std::string cache_path = conv_algo_cache_path(options.algo_cache);
    cache_ = std::make_unique<ConvAlgoCache>(cache_path);
    if (!cache_->last_warning().empty()) std::fprintf(stderr, "resnest: warning: %s\n", cache_->last_warning().c_str());
    if (options.verbose) {
        std::fprintf(stderr, "cuda: %s (sm_%d%d), cuDNN %d, %s, layout NHWC\n", device_.name.c_str(),
                     device_.cc_major, device_.cc_minor, device_.cudnn_version, precision_name(options.precision));
        std::fprintf(stderr, "cuda: weights %.2f MiB on the device; arena %.2f MiB at batch %d, input included, "
                     "placed %s (at least %.2f MiB alive at one node)\n", weights_bytes_ / 1048576.0,
                     plan_.arena_bytes / 1048576.0, options.max_batch, plan_.placement.c_str(),
                     plan_.peak_live_bytes / 1048576.0);
        if (row_lanes_requested_)
            std::fprintf(stderr, "cuda: split attention pools with row lanes where the shape fits "
                         "(RESNEST_ATTENTION_POOL=row-lanes)\n");
        if (implicit_gemm_mode_ != "off")
            std::fprintf(stderr, "cuda: our own kernels (fp16 implicit-GEMM 3x3, wmma 1x1, the folds into them; the "
                         "stem from the NCHW input) %s (RESNEST_IMPLICIT_GEMM=%s)\n",
                         implicit_gemm_mode_ == "on" ? "runs wherever it can" : "is timed beside the other ways",
                         implicit_gemm_mode_.c_str());
        if (!weight_prefetch_)
            std::fprintf(stderr, "cuda: our kernels read their weights without asking L2 for them first "
                         "(RESNEST_WEIGHT_PREFETCH=off)\n");
        std::fprintf(stderr, "cuda: algorithm cache %s (%d entries%s)\n",
                     cache_path.empty() ? "in memory only" : cache_path.c_str(), cache_->loaded(),
                     cache_->skipped_lines() ? (", " + cache_->last_warning()).c_str() : "");
        std::fprintf(stderr, "cuda: engine: plan + weight layout %.3f s (host), device query %.3f s, upload %.3f s\n",
                     std::chrono::duration<double>(t_layout - t0).count(),
                     std::chrono::duration<double>(t_device - t_layout).count(),
                     std::chrono::duration<double>(t_upload - t_device).count());
    }
}

void CudaEngine::check_supported() {
    const BatchLimit limit = cuda_batch_limit(graph_);
    if (limit.batch < 1)
        throw Error(graph_.source + ": its tensor '" + limit.tensor + "' " + shape_str(limit.shape) + " holds " +
                    std::to_string(shape_numel(limit.shape)) + " elements per image, over the 2^31 - 1 that cuDNN "
                    "takes: the CUDA backend cannot run this input size; use --backend cpu or a smaller input");
    if (options_.max_batch > limit.batch)
        throw Error(graph_.source + ": batch " + std::to_string(options_.max_batch) +
                    " is more than the CUDA backend runs in one pass of this graph: its tensor '" + limit.tensor +
                    "' " + shape_str(limit.shape) + " would hold " +
                    std::to_string(options_.max_batch * shape_numel(limit.shape)) +
                    " elements, over the 2^31 - 1 that cuDNN takes; use a batch of at most " +
                    std::to_string(limit.batch) + " (run and classify split their images into such batches)");
    for (const Node& n : graph_.nodes) {
        if (n.op != OpType::split_attention) continue;
        const SplitAttentionAttrs& a = n.attn;
        SplitAttentionGateShape s{options_.max_batch, a.radix, a.cardinality, a.channels, a.inter_channels};
        if (n.inputs.size() > 1 && (int)n.inputs.size() != a.radix)
            throw Error(graph_.source + ": node '" + n.name + "': split attention reads " +
                        std::to_string(n.inputs.size()) + " inputs for radix " + std::to_string(a.radix) +
                        " (one, or one per radix split)");
        if (a.radix > kSplitAttentionMaxRadix || (a.fused_avg_pool && a.radix > kMaxCombineRadix))
            throw Error(graph_.source + ": node '" + n.name + "': radix " + std::to_string(a.radix) +
                        " is over the CUDA backend's limit of " + std::to_string(kSplitAttentionMaxRadix) +
                        "; use --backend cpu");
        if (split_attention_gate_smem_bytes(s) > 48 * 1024)
            throw Error(graph_.source + ": node '" + n.name + "': " + std::to_string(a.channels) +
                        " channels x radix " + std::to_string(a.radix) +
                        " need more shared memory than the attention kernel has (48 KiB); use --backend cpu");
        // The pool's chunk sums (N, chunks, C): the chunk count falls as the batch grows, so take the
        // largest N * chunks over every batch size a context may run.
        for (int b = 1; b <= options_.max_batch; b++)
            gap_floats_ = std::max<int64_t>(gap_floats_, (int64_t)b * pool_chunks(n, b) * a.channels);
        // Or the implicit GEMM's epilogue's (ConvNode::pool_on): its chunks do not depend on the batch.
        if (implicit_gemm_mode_ != "off") {
            const Shape& u = graph_.tensors[n.inputs[0]].shape;  // (R*C, H, W)
            ImplicitConv3x3Shape pooled{options_.max_batch, (int)u[1], (int)u[2], 0, a.radix * a.channels, 1};
            pooled.pool_radix = a.radix;
            gap_floats_ = std::max<int64_t>(gap_floats_,
                                            (int64_t)options_.max_batch * pooled.pool_chunks() * a.channels);
        }
        attn_floats_ = std::max<int64_t>(attn_floats_, (int64_t)options_.max_batch * a.radix * a.channels);
        hidden_floats_ = std::max<int64_t>(hidden_floats_, (int64_t)options_.max_batch * a.inter_channels);
    }
}

std::string off_auto_on_from(const char* variable, const char* value, const char* off_means, std::string* warning) {
    warning->clear();
    if (!value || !*value) return "off";
    for (const char* mode : {"off", "auto", "on"})
        if (std::strcmp(value, mode) == 0) return mode;
    *warning = std::string(variable) + "=" + value + " is not off, auto or on; " + off_means;
    return "off";
}

std::string implicit_gemm_mode_from(const char* value, std::string* warning) {
    return off_auto_on_from("RESNEST_IMPLICIT_GEMM", value, "convolutions run without the implicit-GEMM kernel",
                            warning);
}

bool weight_prefetch_from(const char* value, std::string* warning) {
    warning->clear();
    if (!value || !*value || std::strcmp(value, "on") == 0) return true;
    if (std::strcmp(value, "off") == 0) return false;
    *warning = std::string("RESNEST_WEIGHT_PREFETCH=") + value +
               " is neither on nor off; kernels ask L2 for their weights before they wait (on)";
    return true;
}

bool env_setting_is(const char* variable, const char* value, const char* usual, const char* other,
                    const char* usual_means, std::string* warning) {
    warning->clear();
    if (!value || !*value || std::strcmp(value, usual) == 0) return false;
    if (std::strcmp(value, other) == 0) return true;
    *warning = std::string(variable) + "=" + value + " is neither " + usual + " nor " + other + "; " + usual_means +
               " (" + usual + ")";
    return false;
}

bool attention_pool_row_lanes_from(const char* value, std::string* warning) {
    warning->clear();
    if (!value || !*value || std::strcmp(value, "channel-lanes") == 0) return false;
    if (std::strcmp(value, "row-lanes") == 0) return true;
    *warning = std::string("RESNEST_ATTENTION_POOL=") + value +
               " is neither row-lanes nor channel-lanes; split attention pools with channel lanes";
    return false;
}

bool CudaEngine::pool_row_lanes(const Node& n) const {
    const int vec = 16 / (int)esize_;
    return row_lanes_requested_ &&
           split_attention_pool_row_lanes_fits(n.attn.radix, n.attn.channels, vec, /*splits_apart=*/n.inputs.size() > 1);
}

int CudaEngine::pool_chunks(const Node& n, int batch) const {
    const Shape& u = graph_.tensors[n.inputs[0]].shape;  // (R*C, H, W), or (C, H, W) with the splits apart
    const int hw = (int)(u[1] * u[2]);
    if (pool_row_lanes(n)) return split_attention_pool_row_lanes_chunks(batch, hw);
    return options_.precision == Precision::fp16 ? split_attention_pool_chunks_for<__half>(batch, hw, n.attn.channels)
                                                 : split_attention_pool_chunks_for<float>(batch, hw, n.attn.channels);
}

void CudaEngine::upload(const WeightBlob& blob) {
    weights_bytes_ = blob.size;
    if (weights_bytes_ > 0) {
        void* dev = nullptr;
        cudaError_t e = cudaMalloc(&dev, (size_t)blob.size);
        if (e != cudaSuccess) {
            cudaGetLastError();
            throw Error(allocation_failure(graph_.source + "'s weights", blob.size, options_.device, e,
                                           "free device memory"));
        }
        weights_dev_.reset(dev);
        // From pageable memory cudaMemcpy may return before the DMA lands, and the contexts' streams are
        // non-blocking (not ordered after the legacy stream's copy): copy on a stream of its own and wait for it.
        cudaStream_t copy = nullptr;
        e = cudaStreamCreateWithFlags(&copy, cudaStreamNonBlocking);
        if (e == cudaSuccess) {
            e = cudaMemcpyAsync(dev, blob.data.get(), (size_t)blob.size, cudaMemcpyHostToDevice, copy);
            if (e == cudaSuccess) e = cudaStreamSynchronize(copy);
            cudaStreamDestroy(copy);
        }
        if (e != cudaSuccess)
            throw Error(graph_.source + ": copying the weights to CUDA device " + std::to_string(options_.device) +
                        " failed: " + cudaGetErrorString(e));
    }
    auto at = [&](int64_t off) -> const void* {
        return off < 0 ? nullptr : (const void*)((const unsigned char*)weights_dev_.get() + off);
    };
    auto atf = [&](int64_t off) { return (const float*)at(off); };
    node_weights_.resize(graph_.nodes.size());
    for (size_t i = 0; i < blob.nodes.size(); i++) {
        const NodeWeightOffsets& o = blob.nodes[i];
        DeviceNodeWeights& d = node_weights_[i];
        d.conv_w = at(o.conv_w);
        d.conv_w_dense = at(o.conv_w_dense);
        d.conv_b = at(o.conv_b);
        d.conv_b_f = atf(o.conv_b_f);
        d.bn_scale = atf(o.bn_scale);
        d.bn_shift = atf(o.bn_shift);
        d.fc1_w = atf(o.fc1_w);
        d.fc1_b = atf(o.fc1_b);
        d.fc2_w = atf(o.fc2_w);
        d.fc2_b = atf(o.fc2_b);
        d.linear_w = at(o.linear_w);
        d.linear_b = atf(o.linear_b);
        d.bytes = o.bytes;
    }
}

void CudaEngine::CudaFree::operator()(void* p) const {
    const cudaError_t e = cudaFree(p);
    if (e == cudaSuccess) return;
    cudaGetLastError();  // the failure is this call's: not left for the thread's next check
    if (cuda_release_failed(e))
        std::fprintf(stderr, "resnest: warning: freeing an engine's device weights: %s\n", cudaGetErrorString(e));
}

std::unique_ptr<Context> CudaEngine::create_context() const {
    return std::make_unique<CudaContext>(shared_from_this());
}

std::shared_ptr<Engine> cuda_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                           const ModelSummary& summary, std::vector<std::string> pass_log) {
    return std::make_shared<CudaEngine>(std::move(graph), weights, options, summary, std::move(pass_log));
}

}  // namespace resnest
