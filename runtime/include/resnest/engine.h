// engine.h: the public C++ API of resnest-rt. No CUDA header is included here, so an embedder can build
// and link the CPU backend alone.
//
//   auto engine = resnest::Engine::load("models/resnest50.json", "w.safetensors", {});
//   auto ctx = engine->create_context();          // one per thread
//   ctx->run(input /* (N, 3, 224, 224) */, N, logits /* (N, 1000) */);
//
// An Engine is immutable after load (graph, weights, plans) and may be shared by many threads; a Context
// holds one thread's activation arena and scratch space. Every error is a resnest::Error with a message
// that names the file, tensor or node at fault.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "resnest/error.h"

namespace resnest {

enum class Backend { cpu, cuda };
// fp32: IEEE single precision, no TF32 anywhere. tf32: TF32 tensor-core math. fp16: fp16 storage, fp32
// accumulation. The CPU backend runs fp32 only.
enum class Precision { fp32, tf32, fp16 };

const char* backend_name(Backend b);
const char* precision_name(Precision p);
// Bytes of one stored activation or weight element: half in fp16, float in fp32 and tf32.
inline int storage_bytes(Precision p) { return p == Precision::fp16 ? 2 : 4; }
// Throws resnest::Error listing the accepted names.
Backend parse_backend(const std::string& name);
Precision parse_precision(const std::string& name);

struct EngineOptions {
    Backend backend = Backend::cpu;
    Precision precision = Precision::fp32;
    int max_batch = 1;   // contexts accept batches of 1..max_batch
    int threads = 0;     // CPU backend worker threads per context; 0 = one per hardware thread
    int device = 0;      // CUDA device ordinal
    bool verbose = false;  // log load steps and the memory plan to stderr
    // Graph passes (BN folding, conv + bias + residual + ReLU fusion): -1 the backend's default (on for
    // cuda, off for the cpu oracle), 0 off, 1 on.
    int passes = -1;
    bool cuda_graph = true;  // cuda: capture the forward pass once per batch size and replay it
    // cuda: the convolution algorithm cache file; "" = $RESNEST_CACHE_DIR or ~/.cache/resnest, "none" = no file.
    std::string algo_cache;
    // cuda: how convolution algorithms are ranked: "find" (cuDNN's timing of the plain convolution) or
    // "timed" (each candidate timed on the node's own call, fused bias/ReLU/residual included).
    std::string conv_search = "find";
    // cuda: 1x1 convolutions as one cuBLASLt matmul (bias, residual and ReLU in its epilogue): "auto" where
    // timing at preparation finds it faster than cuDNN, "on" wherever cuBLASLt has an algorithm, "off" never.
    std::string conv_gemm = "auto";
    // cuda: convolutions through cuDNN's operation graph (conv -> bias -> residual -> ReLU fused): "auto"
    // where timing finds it fastest, "on" wherever a precompiled engine runs it, "off" never.
    std::string conv_graph = "auto";
    // cuda: each context's convolution workspace, MiB; algorithms and engines needing more are not
    // considered. -1 = by precision (conv_workspace_mib_for): 1024 for fp32, whose faster cuDNN algorithms
    // on the large early layers need more than 128, and 128 for tf32 and fp16.
    int conv_workspace_mib = -1;
    // cuda: launch the runtime's own kernels as programmatic dependent launches where they run as sm_90
    // code or later (each may start while the kernel before it finishes; it waits before reading its input).
    bool dependent_launch = true;
};

// The convolution workspace, MiB, that EngineOptions::conv_workspace_mib means at a precision.
int conv_workspace_mib_for(const EngineOptions& options);

struct NodeSummary {
    std::string name;
    std::string op;
    std::vector<int64_t> output_shape;  // per image: {C, H, W} or {C}
    int64_t params = 0;                 // trainable values the node owns
    int64_t macs = 0;                   // per image
};

struct ModelSummary {
    std::string name;
    std::string graph_path;
    std::vector<int64_t> input_shape;   // {C, H, W}
    int64_t num_outputs = 0;            // values per image in the first graph output
    int64_t params = 0;                 // trainable: conv/linear weights and biases, BN gamma and beta
    int64_t macs = 0;                   // conv + linear, per image at the graph's input size
    int64_t arena_bytes_batch1 = 0;     // fp32 activation arena for one image
    int64_t weight_tensors = 0;         // tensors the graph names in the weight file
    std::vector<NodeSummary> nodes;     // in execution order
    std::vector<std::string> passes;    // inspect_runtime_graph: the rewrites, one line each
    // inspect_runtime_graph in fp16: where our GEMM kernels may take a node's work into a convolution
    // (RESNEST_IMPLICIT_GEMM auto or on; whether they do is timed at each batch size), one line each:
    // "<node>: <what> into <conv>" with <what> "pool", "weighted sum", "weighted sum + avd pool" or
    // "average pool".
    std::vector<std::string> folds;
};

// Loads and validates a graph (no weights): counts, shapes and the memory plan.
ModelSummary inspect_model(const std::string& graph_path);

// The graph as the CUDA backend runs it at `precision`: after the rewrites of every load (BN folded,
// residual adds and ReLUs fused into convolutions, the avd pool into split attention, RESNEST_RADIX_SPLIT,
// the input's channels padded for fp16 / tf32), applied with seeded weights since no rewrite depends on
// the values. Fused nodes name their parts ("conv2d+bias+residual+relu"); params counts what the nodes hold;
// `passes` has one line per rewrite, `folds` one per fold our fp16 kernels may make. Needs no GPU.
ModelSummary inspect_runtime_graph(const std::string& graph_path, Precision precision);

// The largest batch the CUDA backend runs in one pass of the graph at `graph_path`: cuDNN takes no tensor of
// more than 2^31 - 1 elements, so the graph's largest tensor per image bounds it (2674 for the committed
// models at 224 px: 256 x 56 x 56 per image), at most 65,536. Engine::load refuses a larger max_batch on
// the CUDA backend, naming the tensor; `run` and `classify` take their images in batches of at most this.
int cuda_max_batch(const std::string& graph_path);

struct WeightsReport {
    int64_t tensors_checked = 0;                  // every tensor the graph names: present, shape, dtype, finite
    std::vector<std::string> unused;              // tensors in the file the graph does not name
    std::vector<std::pair<std::string, std::string>> metadata;  // the file's __metadata__
};

// Checks a weight file against a graph as Engine::load does; throws resnest::Error on the first problem.
WeightsReport check_weights(const std::string& graph_path, const std::string& weights_path);

// One run's time: on the device's clock (CUDA events around the forward pass; the CPU backend reports its
// wall time) and on the host's (from the launch until the result is ready).
struct RunTiming {
    double device_ms = 0.0;
    double host_ms = 0.0;
};

// One node of the executed (fused) graph in a profiled run: its share of the time and its traffic.
struct NodeProfile {
    std::string name;
    std::string op;         // e.g. "conv2d+bias+relu", "split_attention+avg_pool2d" (fused_op_name)
    double ms = 0.0;        // median device time, eager launches
    double replay_ms = 0.0; // median device time inside a replayed CUDA graph of the forward pass (0: not run)
    double flops = 0.0;     // 2 x MACs for the batch
    double bytes = 0.0;     // activations read + written and weights read, at the storage precision
    // What the node's chosen way moves beyond `bytes` through its workspace and passes of its own (an im2col
    // matrix, split-K partials, a dense filter, a separate bias pass): counted in GB/s, not in the roofline floor.
    double way_bytes = 0.0;
    // Split attention only (CUDA, eager launches): median device time of its pool, its gate and its weighted
    // sum (which add up to about `ms`); 0 for other ops.
    double pool_ms = 0.0, gate_ms = 0.0, combine_ms = 0.0;
};

class Context {
  public:
    virtual ~Context() = default;
    // input (N, C, H, W) float32 with N in [1, max_batch]; output (N, num_outputs) float32.
    virtual void run(const float* input, int batch, float* output) = 0;

    // The same in three steps, for benchmarks: copy the input into the context, run the forward pass on it
    // as often as wanted (each call waits for the result and returns its timing), copy the output out.
    virtual void set_input(const float* input, int batch) = 0;
    virtual RunTiming run_loaded(int batch) = 0;
    virtual void get_output(float* output, int batch) = 0;

    // Per-node device times over `iters` eager runs, and over `iters` replays of a CUDA graph of the forward
    // pass with events between the nodes (CUDA only; the CPU backend returns nothing).
    virtual std::vector<NodeProfile> profile(int batch, int iters) { (void)batch, (void)iters; return {}; }
    // Device memory this context holds (arena, workspace, I/O buffers), bytes.
    virtual int64_t device_bytes() const { return 0; }
};

class Engine {
  public:
    // Loads the graph and the safetensors weights, checks every tensor (presence, shape, dtype, finite
    // values) and prepares the backend. Throws resnest::Error.
    static std::shared_ptr<Engine> load(const std::string& graph_path, const std::string& weights_path,
                                        const EngineOptions& options = {});
    // Loads the graph with seeded random weights generated in the engine: the same values
    // weights_tools/random_weights.py --seed writes, so a benchmark needs no weight file.
    static std::shared_ptr<Engine> load_seeded(const std::string& graph_path, uint64_t seed,
                                               const EngineOptions& options = {});
    virtual ~Engine() = default;
    virtual std::unique_ptr<Context> create_context() const = 0;

    // Device memory the engine holds (the folded weights), bytes; 0 on the CPU.
    virtual int64_t device_bytes() const { return 0; }
    // What the graph passes did, one line per rewrite (empty when they did not run).
    const std::vector<std::string>& pass_log() const { return pass_log_; }

    const ModelSummary& summary() const { return summary_; }
    const EngineOptions& options() const { return options_; }

  protected:
    ModelSummary summary_;
    EngineOptions options_;
    std::vector<std::string> pass_log_;
};

// The CUDA device a backend would use, for logs and benchmark records.
struct DeviceInfo {
    std::string name;
    int cc_major = 0, cc_minor = 0;
    int multiprocessors = 0;
    int64_t memory_total = 0, memory_free = 0;
    int64_t l2_bytes = 0;
    int sm_clock_mhz = 0, memory_clock_mhz = 0;  // current clocks where the driver says, else 0
    int driver_version = 0, runtime_version = 0;  // e.g. 13000
    int cudnn_version = 0, cublas_version = 0;    // e.g. 91900
    int cublaslt_version = 0;  // cublasLtGetVersion(), e.g. 130100: what a serialized cuBLASLt algorithm needs
    // The architecture the runtime's kernels run as on this device (the lesser of their PTX and binary
    // versions, e.g. 90), 0 when none loads: programmatic dependent launch needs 90 or more, since the
    // kernels' wait instruction is compiled in only for sm_90 and later.
    int kernels_arch = 0;
};

// True when this build has the CUDA backend.
bool cuda_backend_built();
// CUDA devices present (0 without a driver or device, or in a build without CUDA).
int cuda_device_count();
// Throws resnest::Error when the build has no CUDA backend or the device does not exist.
DeviceInfo cuda_device_info(int device);

}  // namespace resnest
