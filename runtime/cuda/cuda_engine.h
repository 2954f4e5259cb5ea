// cuda_engine.h: the CUDA backend's engine, what every context of one model shares. It uploads the weights
// once (laid out by weight_blob.h: NHWC filters in the storage type, biases, split-attention fc weights with
// the inner BN folded into fc1) into one device buffer, plans one activation arena for the largest batch
// (planner.h; the NHWC input has a block in it too) and holds the algorithm cache. Contexts (cuda_context.h)
// run the forward pass.
#pragma once
#include <cuda_runtime.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conv_algo_cache.h"
#include "graph.h"
#include "planner.h"
#include "resnest/engine.h"
#include "weight_blob.h"
#include "weights.h"

namespace resnest {

// One node's weights on the device: pointers into the engine's weight buffer.
struct DeviceNodeWeights {
    const void* conv_w = nullptr;      // (Cout, KH, KW, Cin/groups) T
    const void* conv_w_dense = nullptr;  // grouped convs: the equivalent dense filter (Cout, KH, KW, Cin) T
    const void* conv_b = nullptr;      // (Cout) T; zeros when the conv has no bias (the fused call needs one)
    const float* conv_b_f = nullptr;   // (Cout) float, or null when the conv has no bias
    const float* bn_scale = nullptr;   // (C) batch_norm: gamma / sqrt(var + eps)
    const float* bn_shift = nullptr;   // (C) beta - mean * scale
    const float* fc1_w = nullptr;      // (inter, gk) split attention, BN folded in
    const float* fc1_b = nullptr;      // (inter)
    const float* fc2_w = nullptr;      // (R*C, ik)
    const float* fc2_b = nullptr;      // (R*C)
    const void* linear_w = nullptr;    // (out, in) T
    const float* linear_b = nullptr;   // (out) float, or null
    int64_t bytes = 0;                 // weight bytes the node reads per run
};

class CudaEngine : public Engine, public std::enable_shared_from_this<CudaEngine> {
  public:
    CudaEngine(Graph graph, const HostWeights& weights, const EngineOptions& options, const ModelSummary& summary,
               std::vector<std::string> pass_log);

    std::unique_ptr<Context> create_context() const override;
    int64_t device_bytes() const override { return weights_bytes_; }

    const Graph& graph() const { return graph_; }
    const MemoryPlan& plan() const { return plan_; }
    const DeviceNodeWeights& weights(size_t node) const { return node_weights_[node]; }
    const DeviceInfo& device() const { return device_; }
    ConvAlgoCache& cache() const { return *cache_; }
    size_t esize() const { return esize_; }
    int64_t gap_floats() const { return gap_floats_; }
    // Held by a context while it prepares a batch size (its choices, timed or from the cache, and its capture):
    // contexts preparing at once would time their candidates on a shared GPU and each write its own choice, so
    // two contexts of one engine could run different algorithms. One at a time, the later ones find the
    // earlier one's choices in the cache.
    std::mutex& prepare_mutex() const { return prepare_mutex_; }
    bool debug_sync() const { return debug_sync_; }  // RESNEST_CUDA_DEBUG=1: a sync after every node, no graph
    int64_t attn_floats() const { return attn_floats_; }
    int64_t hidden_floats() const { return hidden_floats_; }
    // Split-attention node n's pool: the row-lanes kernel (RESNEST_ATTENTION_POOL=row-lanes, where the
    // shape fits) or the channel-lanes one, and its chunk count at this batch size. (The gate as matmuls
    // pools in one chunk, with channel lanes.)
    bool pool_row_lanes(const Node& n) const;
    int pool_chunks(const Node& n, int batch) const;
    // RESNEST_IMPLICIT_GEMM: whether the convolution choice times the implicit-GEMM kernel ("auto"), takes
    // it wherever it runs ("on") or leaves it out ("off", the default).
    const std::string& implicit_gemm_mode() const { return implicit_gemm_mode_; }
    // RESNEST_WEIGHT_PREFETCH: whether the kernels that read weights ask L2 for them before waiting on the
    // kernel before them (KernelStream::prefetch_weights; "on", the default, or "off").
    bool weight_prefetch() const { return weight_prefetch_; }
    // RESNEST_L2_WEIGHTS (cuda_l2_weights.h): whether the weights get an L2 window in the batch sizes' CUDA
    // graphs ("off", the default; "auto": where timing says it pays; "on"), and the buffer it covers.
    const std::string& l2_weights_mode() const { return l2_weights_mode_; }
    const void* weights_device() const { return weights_dev_.get(); }

  private:
    void check_supported();
    void upload(const WeightBlob& blob);

    Graph graph_;
    DeviceInfo device_;
    size_t esize_ = 4;
    MemoryPlan plan_;
    struct CudaFree {  // a failure is reported (as CudaContext::release does), not thrown
        void operator()(void* p) const;
    };
    std::unique_ptr<void, CudaFree> weights_dev_;  // freed however the constructor ends
    int64_t weights_bytes_ = 0;
    std::vector<DeviceNodeWeights> node_weights_;
    std::unique_ptr<ConvAlgoCache> cache_;
    int64_t gap_floats_ = 0, attn_floats_ = 0, hidden_floats_ = 0;
    mutable std::mutex prepare_mutex_;
    bool row_lanes_requested_ = false;
    std::string implicit_gemm_mode_ = "off";
    bool weight_prefetch_ = true;
    bool debug_sync_ = false;
    std::string l2_weights_mode_ = "off";
};

// Which split-attention pool RESNEST_ATTENTION_POOL asks for: true for "row-lanes"; false for unset, "" or
// "channel-lanes" (the default); any other value is false with *warning set to say so.
bool attention_pool_row_lanes_from(const char* value, std::string* warning);

// An off|auto|on environment setting: "off" for unset or "", else "off", "auto" or "on" as given; any other
// value is "off" with *warning naming `variable` and saying what off means (`off_means`).
std::string off_auto_on_from(const char* variable, const char* value, const char* off_means, std::string* warning);

// RESNEST_IMPLICIT_GEMM's mode (off_auto_on_from).
std::string implicit_gemm_mode_from(const char* value, std::string* warning);

// RESNEST_WEIGHT_PREFETCH: false for "off"; true for unset, "" or "on"; any other value is true with *warning
// set to say so.
bool weight_prefetch_from(const char* value, std::string* warning);

// A two-valued environment setting `variable` (RESNEST_SPLIT_K on|off, RESNEST_CHOICE_TIMING replays|launches,
// RESNEST_CUDA_DEBUG 0|1): true for `other`; false for unset, "" or `usual`; any other value is false with
// *warning naming it and saying what `usual` means (`usual_means`).
bool env_setting_is(const char* variable, const char* value, const char* usual, const char* other,
                    const char* usual_means, std::string* warning);

}  // namespace resnest
