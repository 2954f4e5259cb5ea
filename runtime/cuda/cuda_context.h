// cuda_context.h: one CUDA context of an engine (cuda_engine.h): a stream, cuDNN, cuBLAS and cuBLASLt handles,
// the activation arena, a convolution workspace and the model's float NCHW input/output buffers. The first
// run at a batch size chooses how each convolution runs (cuda_conv_choice.h: cuDNN's call, its dense form,
// one cuBLASLt matmul or cuDNN's operation graph, whole or a group at a time; from the cache file or by
// timing), and each split-attention gate and classifier form, runs the forward pass once eagerly and captures
// it as a CUDA graph; later runs replay the graph. Where the kernels of kernels/ run as sm_90 code or later
// (DeviceInfo::kernels_arch) they are programmatic dependent launches (kernel_stream.h) unless
// EngineOptions::dependent_launch is off.
//
// Activations are NHWC in T = float (fp32, tf32) or __half (fp16); edges convert from and to float NCHW.
// The member functions live in five files: cuda_context.cpp (set-up, runs, the forward pass and its nodes),
// cuda_context_prepare.cpp (a batch size's choices and the graph capture), cuda_context_fusions.cpp (the
// split-attention steps a batch size folds into the convolutions beside them), cuda_context_l2.cpp (the
// weights' L2 window in the graphs), cuda_context_profile.cpp.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cuda_conv_choice.h"
#include "cuda/cuda_engine.h"
#include "cuda/cuda_gate_gemm.h"
#include "cuda/cuda_l2_weights.h"
#include "cuda/cuda_timing.h"
#include "conv_stem_direct_nchw_plan.h"
#include "kernel_stream.h"
#include "split_attention_combine_conv1x1_plan.h"
#include "split_attention_gate.cuh"
#include "split_attention_rows.cuh"

namespace resnest {

// The three forms of split attention's gate: kernels/split_attention_gate.cuh, split_attention_gate_rows.cuh,
// cuda/cuda_gate_gemm.h.
enum class GateForm : char { block_per_image, rows, matmuls };
const char* gate_form_name(GateForm f);

// A 1x1 convolution that forms split attention's weighted sum (or an average pool's output) while it loads
// its operand (kernels/split_attention_combine_conv1x1.cuh), in place of the combine kernel (the pool kernel)
// and the convolution's way: its problem, K split and buffers.
struct CombineConvLaunch {
    CombineConv1x1Shape s{};
    int splits = 1;
    bool relu = false;
    const __half* u = nullptr;    // (N, HW, R*C) split attention's input, or the pool's (N, in_h * in_w, C)
    const float* attn = nullptr;  // (N, R*C) the gates (the context's attn_); null for an average pool
    const __half* w = nullptr;    // (Cout, C)
    const float* bias = nullptr;  // (Cout) or null
    const __half* z = nullptr;    // (N, HW, Cout) the residual, or null
    __half* y = nullptr;          // (N, HW, Cout)
};

// The network's first convolution computed from the NCHW float input (kernels/conv_stem_direct_nchw.cuh), in
// place of the layout conversion and the convolution's way: its node, problem and buffers.
struct StemConvLaunch {
    size_t node = 0;
    StemConvShape s{};
    bool relu = false;
    const void* w = nullptr;      // (Cout, k, k, Cp) in the storage type
    const float* bias = nullptr;  // (Cout) or null
    void* y = nullptr;            // (N, OH, OW, Cout) in the storage type
};

// Everything a context prepared for one batch size.
struct BatchState {
    std::vector<std::unique_ptr<ConvNode>> convs;  // per node; null for other ops
    std::vector<char> linear_rows;                 // per linear node: the warp-per-row kernel (else cuBLAS)
    std::vector<GateForm> gate_form;               // per split-attention node: how its gate runs
    // Per split-attention node: the convolution node whose implicit-GEMM epilogue writes its pool partials
    // (ConvNode::pool_on), so its pool kernel does not run; -1 where the pool kernel runs.
    std::vector<int> pool_in_conv;
    // Per split-attention node: the 1x1 convolution node that forms its weighted sum while loading it, so its
    // combine kernel does not run; per average pool: the one that pools while loading, so the node does not
    // run; -1 where it runs. Per convolution node: that launch, or null.
    std::vector<int> folded_in_conv;
    std::vector<std::unique_ptr<CombineConvLaunch>> combine_conv;
    std::unique_ptr<StemConvLaunch> stem;  // where the first convolution reads the NCHW input itself
    std::vector<std::unique_ptr<GateGemmLaunch>> gate_gemm;  // per node whose gate may run as matmuls
    CapturedGraph captured;                        // the forward pass, replayed by later runs
    int capture_retries = 0;  // runs that try the capture again (after invalidations by another thread)
    // With dependent launch on, the retries alternate with and without it (retry_capture): this one without.
    bool retry_ordinary = false;
    int legacy_cached = 0, by_impl[kConvImpls] = {};  // conv nodes per ConvImpl
    int split_k = 0;                                  // cuBLASLt convolutions with the reduction split
    double choice_s[kConvImpls] = {};                 // host time preparing them, by the way chosen
    double graph_heuristics_s = 0.0, graph_plans_s = 0.0;  // of which the chosen cuDNN graphs' heuristics, plans
    int graphs_restored = 0;  // convolutions on a cuDNN graph rebuilt from the cached engine
    bool l2_window = false;   // the captured graph's kernel nodes carry the weights' L2 window
};

// The forward pass's CUDA graph did not end or instantiate, or a launch inside it failed (its eager pass had
// run): with programmatic dependent launch on, prepare() captures again without it; with it off, the batch
// size runs eagerly.
class GraphCaptureError : public KernelLaunchError {
  public:
    using KernelLaunchError::KernelLaunchError;
};
// A library call inside the capture refused it (and did not invalidate it): not the launches' doing, so the
// batch size runs eagerly at once, dependent launches kept.
class CallRefusedCaptureError : public GraphCaptureError {
  public:
    using GraphCaptureError::GraphCaptureError;
};

// Rethrows the resnest::Error being handled with "node '<node>': " before its message, unless it names a node
// already, keeping its kind (a KernelLaunchError stays one: prepare() answers those by going on without
// dependent launches); anything else as it is. Only inside a catch block. The forward pass names the node a
// kernel launcher's error came from this way (launchers name only their kernel).
[[noreturn]] void rethrow_naming_node(const std::string& node);

// Rethrows the resnest::Error that ended a stream capture (not an invalidation, not a device fault) by what
// the capture's callers do with it: a KernelLaunchError as it is while dependent launches are on (prepare()
// tries again without them), else as a GraphCaptureError (the batch size runs without a graph); any other
// Error, a library call that refused the capture, as a CallRefusedCaptureError (likewise, dependent launches
// kept). `source` (the graph file) leads the new messages. Only inside a catch block.
[[noreturn]] void rethrow_capture_error(bool dependent_launch, const std::string& source);

class CudaContext : public Context {
  public:
    explicit CudaContext(std::shared_ptr<const CudaEngine> engine);
    ~CudaContext() override;

    void run(const float* input, int batch, float* output) override;
    void set_input(const float* input, int batch) override;
    RunTiming run_loaded(int batch) override;
    void get_output(float* output, int batch) override;
    std::vector<NodeProfile> profile(int batch, int iters) override;
    int64_t device_bytes() const override { return allocated_bytes_; }
    // Our split-K kernels' per-tile arrival counts that are not back at zero once the stream is idle (each
    // launch's last blocks reset theirs; a count left over would mis-sum the next launch on that tile). 0
    // where the context has none (RESNEST_IMPLICIT_GEMM off). A check for tests.
    int tile_counts_not_zero();
    // Whether batch `batch`'s CUDA graph carries the weights' L2 window (RESNEST_L2_WEIGHTS; false before
    // its first run, and where it runs without a graph). A check for tests.
    bool l2_window_on(int batch) const;

  private:
    // Set-up and tear-down (cuda_context.cpp).
    void initialize();
    void release() noexcept;
    // cudaMalloc, named in the error by `what`, with `lower` the setting that shrinks it (beside fewer contexts).
    void* alloc(int64_t bytes, const char* what, const std::string& lower = "--batch");
    void check_batch(int batch, const char* what) const;
    void check_loaded(int batch, const char* what) const;

    // A batch size's choices and its graph capture (cuda_context_prepare.cpp).
    BatchState& prepare(int batch);
    void plan_pools_in_convs(int batch, BatchState& state);     // cuda_context_fusions.cpp
    void plan_combines_in_convs(int batch, BatchState& state);  // likewise
    std::unique_ptr<CombineConvLaunch> conv1x1_fold(size_t i, size_t j, int batch, std::string* op);
    int decide_fold(const std::string& key, const std::function<void()>& apart, const std::function<void()>& folded,
                    const std::string& node, const std::string& what, std::string* how);
    void plan_stem_direct(int batch, BatchState& state);  // cuda_context_fusions.cpp
    void input_to_nhwc(int batch);                         // the layout conversion the forward pass begins with
    void launch_stem(const StemConvLaunch& c);
    // Whether e, met by an optional candidate (a fold's timing, the gate as matmuls), is a refused dependent
    // launch for prepare() to answer by going on without them: a KernelLaunchError while they are on, where
    // `enqueue` (the candidate's launches) then runs with ordinary launches. Else the candidate is skipped;
    // but a device fault in that run (its kernels' first) throws, naming `node`.
    bool dependent_launch_to_blame(const Error& e, const std::string& node, const std::function<void()>& enqueue);
    void choose_gate(size_t i, int batch, BatchState& state);
    void choose_linear(size_t i, int batch, BatchState& state);
    int cached_choice(const std::string& key, int count, std::string* opaque = nullptr) const;
    ConvAlgoKeyParts key_parts(int batch) const;
    void run_and_capture(int batch, BatchState& state);
    void capture_with_retries(int batch, BatchState& state);
    // The weights' L2 window (cuda_context_l2.cpp): planned at set-up; per batch size 1 (on), 0 (off) or -1
    // (auto without a cached decision: choose_l2_window times the captured graph both ways).
    void plan_l2_window();
    // The last context of the process holding a window on its device gives the carve-out back: its
    // persisting lines released and the limit as the process found it. Called by release().
    void release_l2_window() noexcept;
    int l2_window_decision(int batch) const;
    void choose_l2_window(int batch, BatchState& state);
    // False (a warning printed: batch `batch`'s graph, or with `profile` the profile's replay, runs without
    // it) where the window could not be set; some kernel nodes may carry it then.
    bool apply_l2_window(cudaGraph_t graph, int batch, bool profile = false);
    // The same on a copy of captured->graph, instantiated: it replaces captured's graph (and sets its exec)
    // only where the window went on every kernel node and the copy instantiated; false (warned) leaves
    // *captured as it was, without the window and not instantiated.
    bool instantiate_with_l2_window(CapturedGraph* captured, int batch, bool profile = false);
    std::string l2_window_key(int batch) const;
    bool capture_forward(int batch, BatchState& state);
    void retry_capture(int batch, BatchState& state);
    static constexpr int kLaterCaptureRetries = 3;
    cudaError_t capture_stream(cudaGraph_t* graph, const std::function<void()>& enqueue);

    // The forward pass and its nodes (cuda_context.cpp).
    void forward(int batch, BatchState& state, std::vector<cudaEvent_t>* events, bool as_graph_nodes = false);
    void* tensor(int t) const;
    ConvBuffers conv_buffers(size_t i, bool dense) const;
    void run_node_stored(size_t i, int batch, BatchState& state);
    void pool_and_gate_stored(size_t i, int batch, GateForm f, BatchState& state);
    template <typename T>
    void run_node(size_t i, int batch, BatchState& state);
    SplitAttentionGateShape gate_shape(size_t i, int batch, GateForm form, const BatchState& state) const;
    template <typename T>
    RadixRows<T> radix_rows(const Node& n) const;
    template <typename T>
    void pool_and_gate(size_t i, int batch, GateForm form, const BatchState& state);
    template <typename T>
    void combine(size_t i, int batch, const BatchState& state);
    void combine_stored(size_t i, int batch, const BatchState& state);
    void launch_combine_conv(const CombineConvLaunch& c);
    L2Prefetch library_filters_after(size_t i, const BatchState& state) const;
    void record_stage(size_t i, int stage);  // the profile's split-attention stage event, where it is on
    void launch_gate(size_t i, const SplitAttentionGateShape& s, GateForm form, const BatchState& state);
    template <typename T>
    void linear(const Node& n, const DeviceNodeWeights& w, const T* x, T* y, int batch);

    // Per-node times (cuda_context_profile.cpp).
    void add_node_times(const TimingEvents& events, std::vector<std::vector<float>>* times) const;
    NodeWay way_of(size_t i, const BatchState& state) const;  // cuda_context_profile.cpp
    void profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                          std::vector<std::vector<float>>* out);
    bool try_profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                              std::vector<std::vector<float>>* out, std::string* error);

    std::shared_ptr<const CudaEngine> engine_;
    cudaStream_t stream_ = nullptr;
    cudnnHandle_t cudnn_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    cublasLtHandle_t lt_ = nullptr;
    ConvChoiceEnv env_;  // handles, stream and options the convolution choice and launches use
    KernelStream launch_;  // stream_, and whether kernels/ launches are programmatic dependent launches
    // Ordinary launches for one scope (a retry without dependent launch), the setting restored however the
    // scope is left.
    struct OrdinaryLaunches {
        bool& dependent;
        const bool was;
        explicit OrdinaryLaunches(bool& flag) : dependent(flag), was(flag) { dependent = false; }
        ~OrdinaryLaunches() { dependent = was; }
    };
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
    std::vector<void*> allocations_;
    int64_t allocated_bytes_ = 0;
    void* arena_ = nullptr;
    float* input_f_ = nullptr;   // (N, C, H, W) float
    float* output_f_ = nullptr;  // (N, classes) float
    void* workspace_ = nullptr;  // (workspace_bytes_) the convolutions' scratch
    size_t workspace_bytes_ = 0;
    void* cublas_ws_ = nullptr;
    float* gap_ = nullptr;   // (N, chunks, C) split attention's pooled chunk sums (the pool's or a conv's)
    float* attn_ = nullptr;  // (N, R*C) its gates
    float* hidden_ = nullptr;  // (N, inter) fc1's outputs, between the two kernels of the small-batch gate
    L2WeightWindow l2_window_{};  // window_bytes 0: none (off, or the device has no persisting L2)
    bool holds_carve_out_ = false;  // counted among the device's carve-out holders (release_l2_window)
    int64_t in_numel_ = 0, out_numel_ = 0;
    int loaded_batch_ = 0;
    bool output_ready_ = false;  // run_loaded ran on what set_input loaded
    bool debug_sync_ = false;
    // Set by the eager profile only: its split-attention stage events, two a node (after the pool, after
    // the gate) from slot[node] on (-1: none).
    struct StageEvents {
        const std::vector<cudaEvent_t>& events;
        const std::vector<int>& slot;
    };
    const StageEvents* stages_ = nullptr;
    std::map<int, std::unique_ptr<BatchState>> batches_;
};

}  // namespace resnest
