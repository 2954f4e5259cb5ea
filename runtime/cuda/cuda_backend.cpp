// cuda_backend.cpp: runs a graph on one CUDA device.
//
// The engine uploads the weights once (laid out by weight_blob.h: NHWC filters in the storage type, biases,
// split-attention fc weights with the inner BN folded into fc1) into one device buffer and plans
// one activation arena for the largest batch (planner.h; the NHWC input has a block in it too). A context owns
// a stream, cuDNN, cuBLAS and cuBLASLt handles, the arena, a convolution workspace and the model's float NCHW
// input/output buffers. The first run at a
// batch size chooses how each convolution runs (cuda_conv_choice.h: cuDNN's call, its dense form, one
// cuBLASLt matmul or cuDNN's operation graph, whole or a group at a time; from the cache file or by timing),
// runs the forward pass once eagerly and captures it as a CUDA graph; later runs replay the graph. Where the
// kernels of kernels/ run as sm_90 code or later (DeviceInfo::kernels_arch) they are programmatic dependent
// launches (kernel_stream.h) unless EngineOptions::dependent_launch is off.
//
// Activations are NHWC in T = float (fp32, tf32) or __half (fp16); edges convert from and to float NCHW.
#include "cuda/cuda_backend.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

#include "channel_affine.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_conv_choice.h"
#include "cuda/cuda_gate_gemm.h"
#include "cuda/cuda_timing.h"
#include "global_avg_pool.cuh"
#include "layout_convert.cuh"
#include "linear_rows.cuh"
#include "planner.h"
#include "pool2d_nhwc.cuh"
#include "softmax_rows.cuh"
#include "split_attention_combine.cuh"
#include "split_attention_gate.cuh"
#include "split_attention_gate_rows.cuh"
#include "split_attention_pool.cuh"
#include "weight_blob.h"

namespace resnest {

namespace {

constexpr size_t kCublasWorkspaceBytes = 4ull << 20;  // lets cuBLAS run inside graph capture

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

std::string node_kind(const Node& n) {
    if (n.op != OpType::conv2d) return op_name(n.op);
    std::string k = "conv2d";
    if (n.conv.bias) k += "+bias";
    if (n.inputs.size() > 1) k += "+residual";
    if (n.fused_relu) k += "+relu";
    return k;
}

class CudaEngine : public Engine, public std::enable_shared_from_this<CudaEngine> {
  public:
    CudaEngine(Graph graph, const HostWeights& weights, const EngineOptions& options, const ModelSummary& summary,
               std::vector<std::string> pass_log)
        : graph_(std::move(graph)) {
        using clock = std::chrono::steady_clock;
        auto t0 = clock::now();
        options_ = options;
        summary_ = summary;
        pass_log_ = std::move(pass_log);
        // The host's part first: it runs beside CUDA's initialisation where Engine::load started it.
        esize_ = (size_t)storage_bytes(options.precision);
        check_supported();
        // The NHWC input is written at the start of every forward pass: it takes a block in the arena,
        // which later activations reuse once the stem has read it.
        plan_ = plan_memory(graph_, options.max_batch, (int64_t)esize_, /*input_in_arena=*/true);
        WeightBlob blob = build_weight_blob(graph_, weights, options.precision);
        auto t_layout = clock::now();
        device_ = cuda_device_info(options.device);
        CUDA_CHECK(cudaSetDevice(options.device));
        auto t_device = clock::now();
        upload(blob);
        auto t_upload = clock::now();
        std::string cache_path = conv_algo_cache_path(options.algo_cache);
        cache_ = std::make_unique<ConvAlgoCache>(cache_path);
        if (options.verbose) {
            std::fprintf(stderr, "cuda: %s (sm_%d%d), cuDNN %d, %s, layout NHWC\n", device_.name.c_str(),
                         device_.cc_major, device_.cc_minor, device_.cudnn_version, precision_name(options.precision));
            std::fprintf(stderr, "cuda: weights %.2f MiB on the device; arena %.2f MiB at batch %d, input included, "
                         "placed %s (at least %.2f MiB alive at one node)\n", weights_bytes_ / 1048576.0,
                         plan_.arena_bytes / 1048576.0, options.max_batch, plan_.placement.c_str(),
                         plan_.peak_live_bytes / 1048576.0);
            std::fprintf(stderr, "cuda: algorithm cache %s (%d entries%s)\n",
                         cache_path.empty() ? "in memory only" : cache_path.c_str(), cache_->loaded(),
                         cache_->skipped_lines() ? (", " + cache_->last_warning()).c_str() : "");
            std::fprintf(stderr, "cuda: engine: plan + weight layout %.3f s (host), device query %.3f s, upload %.3f s\n",
                         std::chrono::duration<double>(t_layout - t0).count(),
                         std::chrono::duration<double>(t_device - t_layout).count(),
                         std::chrono::duration<double>(t_upload - t_device).count());
        }
    }

    std::unique_ptr<Context> create_context() const override;
    int64_t device_bytes() const override { return weights_bytes_; }

    const Graph& graph() const { return graph_; }
    const MemoryPlan& plan() const { return plan_; }
    const DeviceNodeWeights& weights(size_t node) const { return node_weights_[node]; }
    const DeviceInfo& device() const { return device_; }
    ConvAlgoCache& cache() const { return *cache_; }
    size_t esize() const { return esize_; }
    int64_t gap_floats() const { return gap_floats_; }
    int64_t attn_floats() const { return attn_floats_; }
    int64_t hidden_floats() const { return hidden_floats_; }

  private:
    void check_supported() {
        for (const Node& n : graph_.nodes) {
            if (n.op != OpType::split_attention) continue;
            const SplitAttentionAttrs& a = n.attn;
            SplitAttentionGateShape s{options_.max_batch, a.radix, a.cardinality, a.channels, a.inter_channels};
            if (a.radix > kSplitAttentionMaxRadix || (a.fused_avg_pool && a.radix > kMaxCombineRadix))
                throw Error(graph_.source + ": node '" + n.name + "': radix " + std::to_string(a.radix) +
                            " is over the CUDA backend's limit of " + std::to_string(kSplitAttentionMaxRadix));
            if (split_attention_gate_smem_bytes(s) > 48 * 1024)
                throw Error(graph_.source + ": node '" + n.name + "': " + std::to_string(a.channels) + " channels x radix " +
                            std::to_string(a.radix) + " need more shared memory than the attention kernel has (48 KiB)");
            // The pool's chunk sums (N, chunks, C): the chunk count falls as the batch grows, so take the
            // largest N * chunks over every batch size a context may run.
            const Shape& u = graph_.tensors[n.inputs[0]].shape;
            const int hw = (int)(u[1] * u[2]);
            const bool half = options_.precision == Precision::fp16;
            for (int b = 1; b <= options_.max_batch; b++) {
                int chunks = half ? split_attention_pool_chunks_for<__half>(b, hw, a.channels)
                                  : split_attention_pool_chunks_for<float>(b, hw, a.channels);
                gap_floats_ = std::max<int64_t>(gap_floats_, (int64_t)b * chunks * a.channels);
            }
            attn_floats_ = std::max<int64_t>(attn_floats_, (int64_t)options_.max_batch * a.radix * a.channels);
            hidden_floats_ = std::max<int64_t>(hidden_floats_, (int64_t)options_.max_batch * a.inter_channels);
        }
    }

    void upload(const WeightBlob& blob) {
        weights_bytes_ = blob.size;
        if (weights_bytes_ > 0) {
            void* dev = nullptr;
            RESNEST_CUDA_CHECK_AT(cudaMalloc(&dev, (size_t)blob.size), graph_.source + " weights");
            weights_dev_.reset(dev);
            CUDA_CHECK(cudaMemcpy(dev, blob.data.get(), (size_t)blob.size, cudaMemcpyHostToDevice));
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

    Graph graph_;
    DeviceInfo device_;
    size_t esize_ = 4;
    MemoryPlan plan_;
    struct CudaFree {
        void operator()(void* p) const { cudaFree(p); }
    };
    std::unique_ptr<void, CudaFree> weights_dev_;  // freed however the constructor ends
    int64_t weights_bytes_ = 0;
    std::vector<DeviceNodeWeights> node_weights_;
    std::unique_ptr<ConvAlgoCache> cache_;
    int64_t gap_floats_ = 0, attn_floats_ = 0, hidden_floats_ = 0;
};

// The three forms of split attention's gate: kernels/split_attention_gate.cuh, split_attention_gate_rows.cuh,
// cuda/cuda_gate_gemm.h.
enum class GateForm : char { block_per_image, rows, matmuls };
const char* gate_form_name(GateForm f) {
    switch (f) {
        case GateForm::block_per_image: return "one block per image";
        case GateForm::rows: return "rows over many blocks";
        case GateForm::matmuls: return "two matmuls + softmax";
    }
    return "?";
}

// Everything a context prepared for one batch size.
struct BatchState {
    std::vector<std::unique_ptr<ConvNode>> convs;  // per node; null for other ops
    std::vector<char> linear_rows;                 // per linear node: the warp-per-row kernel (else cuBLAS)
    std::vector<GateForm> gate_form;               // per split-attention node: how its gate runs
    std::vector<std::unique_ptr<GateGemmLaunch>> gate_gemm;  // per node whose gate may run as matmuls
    CapturedGraph captured;                        // the forward pass, replayed by later runs
    int legacy_cached = 0, by_impl[kConvImpls] = {};  // conv nodes per ConvImpl
    int split_k = 0;                                  // cuBLASLt convolutions with the reduction split
    double choice_s[kConvImpls] = {};                 // host time preparing them, by the way chosen
    double graph_heuristics_s = 0.0, graph_plans_s = 0.0;  // of which the chosen cuDNN graphs' heuristics, plans
    int graphs_restored = 0;  // convolutions on a cuDNN graph rebuilt from the cached engine
};

// The forward pass's CUDA graph did not end or instantiate (its eager pass had run): with programmatic
// dependent launch on, prepare() captures again without it; with it off, the batch size runs eagerly.
class GraphCaptureError : public KernelLaunchError {
  public:
    using KernelLaunchError::KernelLaunchError;
};

class CudaContext : public Context {
  public:
    explicit CudaContext(std::shared_ptr<const CudaEngine> engine) : engine_(std::move(engine)) {
        try {
            initialize();
        } catch (...) {
            release();  // a constructor that throws runs no destructor: what was made so far goes here
            throw;
        }
    }

    ~CudaContext() override { release(); }

    void initialize() {
        const EngineOptions& o = engine_->options();
        const Graph& g = engine_->graph();
        auto t0 = std::chrono::steady_clock::now();
        CUDA_CHECK(cudaSetDevice(o.device));
        debug_sync_ = std::getenv("RESNEST_CUDA_DEBUG") && std::string(std::getenv("RESNEST_CUDA_DEBUG")) == "1";
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        CUDNN_CHECK(cudnnCreate(&cudnn_));
        CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
        CUBLAS_CHECK(cublasCreate(&cublas_));
        CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
        CUBLAS_CHECK(cublasLtCreate(&lt_));
        env_.cudnn = cudnn_, env_.lt = lt_, env_.stream = stream_, env_.cache = &engine_->cache();
        env_.conv_gemm = o.conv_gemm, env_.conv_graph = o.conv_graph, env_.timed_search = o.conv_search == "timed";
        env_.verbose = o.verbose, env_.cublas_version = engine_->device().cublas_version;
        launch_ = KernelStream(stream_, o.dependent_launch && engine_->device().kernels_arch >= 90);
        CUDA_CHECK(cudaEventCreate(&start_));
        CUDA_CHECK(cudaEventCreate(&stop_));
        in_numel_ = shape_numel(g.input_shape);
        out_numel_ = shape_numel(g.tensors[g.outputs[0]].shape);
        const int64_t n = o.max_batch;
        arena_ = alloc(std::max<int64_t>(engine_->plan().arena_bytes, 256), "activation arena");
        input_f_ = (float*)alloc(n * in_numel_ * 4, "input");
        output_f_ = (float*)alloc(n * out_numel_ * 4, "output");
        workspace_bytes_ = (size_t)conv_workspace_mib_for(o) << 20;  // algorithms needing more are not considered
        workspace_ = alloc((int64_t)workspace_bytes_, "convolution workspace");
        cublas_ws_ = alloc((int64_t)kCublasWorkspaceBytes, "cuBLAS workspace");
        CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspaceBytes));
        if (engine_->gap_floats()) gap_ = (float*)alloc(engine_->gap_floats() * 4, "attention pool");
        if (engine_->attn_floats()) attn_ = (float*)alloc(engine_->attn_floats() * 4, "attention weights");
        if (engine_->hidden_floats()) hidden_ = (float*)alloc(engine_->hidden_floats() * 4, "attention fc1 outputs");
        if (o.verbose)
            std::fprintf(stderr, "cuda: context: stream, cuDNN / cuBLAS / cuBLASLt handles and %.1f MiB in %.3f s\n",
                         allocated_bytes_ / 1048576.0,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }

    // Everything the context holds, whatever part of initialize() ran (statuses ignored: nothing to do here
    // about a failure).
    void release() noexcept {
        cudaSetDevice(engine_->options().device);
        if (stream_) cudaStreamSynchronize(stream_);
        batches_.clear();
        for (void* p : allocations_) cudaFree(p);
        allocations_.clear();
        if (start_) cudaEventDestroy(start_);
        if (stop_) cudaEventDestroy(stop_);
        if (lt_) cublasLtDestroy(lt_);
        if (cublas_) cublasDestroy(cublas_);
        if (cudnn_) cudnnDestroy(cudnn_);
        if (stream_) cudaStreamDestroy(stream_);
        start_ = stop_ = nullptr, lt_ = nullptr, cublas_ = nullptr, cudnn_ = nullptr, stream_ = nullptr;
        cudaGetLastError();
    }

    void run(const float* input, int batch, float* output) override {
        if (!input || !output) throw Error("Context::run: input and output must not be null");
        set_input(input, batch);
        run_loaded(batch);
        get_output(output, batch);
    }

    void set_input(const float* input, int batch) override {
        check_batch(batch);
        if (!input) throw Error("Context::set_input: input must not be null");
        CUDA_CHECK(cudaSetDevice(engine_->options().device));
        CUDA_CHECK(cudaMemcpyAsync(input_f_, input, (size_t)(batch * in_numel_) * 4, cudaMemcpyHostToDevice, stream_));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        loaded_batch_ = batch;
    }

    RunTiming run_loaded(int batch) override {
        check_loaded(batch, "run_loaded");
        CUDA_CHECK(cudaSetDevice(engine_->options().device));
        BatchState& state = prepare(batch);
        auto t0 = std::chrono::steady_clock::now();
        CUDA_CHECK(cudaEventRecord(start_, stream_));
        if (state.captured.exec)
            CUDA_CHECK(cudaGraphLaunch(state.captured.exec, stream_));
        else
            forward(batch, state, nullptr);
        CUDA_CHECK(cudaEventRecord(stop_, stream_));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        RunTiming t;
        t.host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
        t.device_ms = ms;
        return t;
    }

    void get_output(float* output, int batch) override {
        check_loaded(batch, "get_output");
        if (!output) throw Error("Context::get_output: output must not be null");
        CUDA_CHECK(cudaSetDevice(engine_->options().device));
        CUDA_CHECK(cudaMemcpyAsync(output, output_f_, (size_t)(batch * out_numel_) * 4, cudaMemcpyDeviceToHost, stream_));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    std::vector<NodeProfile> profile(int batch, int iters) override {
        check_loaded(batch, "profile");
        CUDA_CHECK(cudaSetDevice(engine_->options().device));
        BatchState& state = prepare(batch);
        const Graph& g = engine_->graph();
        size_t count = g.nodes.size();
        TimingEvents held(count + 1, "the profile's events");  // destroyed however the profile ends
        std::vector<cudaEvent_t>& events = held.events;
        std::vector<std::vector<float>> samples(count), replayed(count);
        for (int it = 0; it < std::max(1, iters); it++) {
            forward(batch, state, &events);
            CUDA_CHECK(cudaStreamSynchronize(stream_));
            add_node_times(held, &samples);
        }
        if (engine_->options().cuda_graph && !debug_sync_) profile_replayed(batch, state, held, iters, &replayed);
        auto median = [](std::vector<float>& v) {  // the upper one of an even count
            std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
            return v[v.size() / 2];
        };
        std::vector<NodeProfile> out;
        for (size_t i = 0; i < count; i++) {
            const Node& n = g.nodes[i];
            NodeProfile p;
            p.name = n.name;
            p.op = node_kind(n);
            if (state.convs[i] && state.convs[i]->impl() != ConvImpl::cudnn)
                p.op += std::string(" (") + conv_impl_name(state.convs[i]->impl()) + ")";
            if (n.op == OpType::linear) p.op += state.linear_rows[i] ? " (warp per output row)" : " (cuBLAS)";
            if (n.op == OpType::split_attention && state.gate_form[i] != GateForm::block_per_image)
                p.op += std::string(" (gate: ") + gate_form_name(state.gate_form[i]) + ")";
            p.ms = median(samples[i]);
            if (!replayed[i].empty()) p.replay_ms = median(replayed[i]);
            p.flops = 2.0 * (double)n.macs * batch;
            double act = (double)shape_numel(g.tensors[n.output].shape);
            for (int t : n.inputs) act += (double)shape_numel(g.tensors[t].shape);
            p.bytes = act * batch * engine_->esize() + (double)engine_->weights(i).bytes;
            out.push_back(p);
        }
        return out;
    }

    int64_t device_bytes() const override { return allocated_bytes_; }

  private:
    // Appends node i's time in the run just finished (events[i] to events[i + 1], ms) to (*times)[i].
    void add_node_times(const TimingEvents& events, std::vector<std::vector<float>>* times) const {
        for (size_t i = 0; i < times->size(); i++)
            (*times)[i].push_back(events.elapsed(i, i + 1, engine_->graph().nodes[i].name));
    }

    // Per-node device times as the forward pass runs in production: captured into a CUDA graph with the
    // events as event-record nodes between the nodes, replayed `iters` times (at small batches eager
    // launches measure the host's launch cost more than the kernels). A capture refused with programmatic
    // dependent launch is taken again without it; where that fails too, `out` is left empty with a warning
    // (the eager times still stand).
    void profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                          std::vector<std::vector<float>>* out) {
        std::string first_error;
        if (try_profile_replayed(batch, state, events, iters, out, &first_error)) return;
        if (launch_.dependent_launch) {
            launch_.dependent_launch = false;
            std::string again;
            const bool ok = try_profile_replayed(batch, state, events, iters, out, &again);
            launch_.dependent_launch = true;
            if (ok) return;
            first_error += "; with ordinary launches: " + again;
        }
        std::fprintf(stderr, "resnest: warning: the profile's graph replay failed (%s); eager times only\n",
                     first_error.c_str());
    }

    bool try_profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                              std::vector<std::vector<float>>* out, std::string* error) {
        CapturedGraph captured;
        bool ok = true;
        try {
            CUDA_CHECK(capture_stream(&captured.graph, [&] { forward(batch, state, &events.events, true); }));
            CUDA_CHECK(cudaGraphInstantiate(&captured.exec, captured.graph, 0));
            for (int it = 0; it < std::max(1, iters); it++) {
                CUDA_CHECK(cudaGraphLaunch(captured.exec, stream_));
                CUDA_CHECK(cudaStreamSynchronize(stream_));
                add_node_times(events, out);
            }
        } catch (const Error& e) {
            *error = e.what();
            cudaGetLastError();
            cudaStreamSynchronize(stream_);
            for (auto& v : *out) v.clear();
            ok = false;
        }
        return ok;
    }

    void check_batch(int batch) const {
        int max_batch = engine_->options().max_batch;
        if (batch < 1 || batch > max_batch)
            throw Error("Context::run: batch " + std::to_string(batch) + " is outside [1, " + std::to_string(max_batch) +
                        "], the engine's max_batch (raise EngineOptions::max_batch or --batch)");
    }

    void check_loaded(int batch, const char* what) const {
        check_batch(batch);
        if (batch != loaded_batch_)
            throw Error(std::string("Context::") + what + ": batch " + std::to_string(batch) +
                        " but set_input loaded " + std::to_string(loaded_batch_));
    }

    void* alloc(int64_t bytes, const char* what) {
        void* p = nullptr;
        cudaError_t e = cudaMalloc(&p, (size_t)bytes);
        if (e != cudaSuccess) {
            cudaGetLastError();
            throw Error(std::string("cannot allocate the ") + what + " (" + std::to_string(bytes >> 20) +
                        " MiB) on CUDA device " + std::to_string(engine_->options().device) + ": " +
                        cudaGetErrorString(e) + "; lower --batch or free device memory");
        }
        allocations_.push_back(p);
        allocated_bytes_ += bytes;
        return p;
    }

    // The NHWC storage of tensor t.
    void* tensor(int t) const {
        return (unsigned char*)arena_ + engine_->plan().offset[t];  // the graph input's too (in the arena)
    }

    ConvBuffers conv_buffers(size_t i, bool dense) const {
        const Node& n = engine_->graph().nodes[i];
        const DeviceNodeWeights& w = engine_->weights(i);
        return {tensor(n.inputs[0]), dense ? w.conv_w_dense : w.conv_w, w.conv_b, w.conv_b_f,
                n.inputs.size() > 1 ? tensor(n.inputs[1]) : nullptr, tensor(n.output), workspace_,
                workspace_bytes_};
    }

    // The algorithm cache key's device, library, precision and batch fields.
    ConvAlgoKeyParts key_parts(int batch) const {
        const DeviceInfo& dev = engine_->device();
        ConvAlgoKeyParts k;
        k.device = dev.name, k.cc_major = dev.cc_major, k.cc_minor = dev.cc_minor;
        k.cudnn_version = dev.cudnn_version, k.precision = precision_name(engine_->options().precision);
        k.batch = batch;
        return k;
    }

    // The choice a previous start cached under `key`, when it is one of 0..count-1; else -1.
    int cached_choice(const std::string& key, int count) const {
        ConvAlgoChoice c;
        if (!engine_->cache().lookup(key, &c) || c.algo < 0 || c.algo >= count) return -1;
        return c.algo;
    }

    // Descriptors and algorithms for a batch size, then one eager run and the graph capture.
    BatchState& prepare(int batch) {
        auto found = batches_.find(batch);
        if (found != batches_.end()) return *found->second;
        const Graph& g = engine_->graph();
        const EngineOptions& o = engine_->options();
        auto t0 = std::chrono::steady_clock::now();
        auto state = std::make_unique<BatchState>();
        state->convs.resize(g.nodes.size());
        for (size_t i = 0; i < g.nodes.size(); i++) {
            const Node& n = g.nodes[i];
            if (n.op != OpType::conv2d) continue;
            ConvProblem p = conv_problem(g, n, batch, o.precision);
            ConvAlgoKeyParts k = key_parts(batch);
            const Conv2dAttrs& a = n.conv;
            k.in_channels = a.in_channels, k.in_h = p.in_h, k.in_w = p.in_w, k.out_channels = a.out_channels;
            k.kernel_h = a.kernel_h, k.kernel_w = a.kernel_w, k.stride_h = a.stride_h, k.stride_w = a.stride_w;
            k.pad_h = a.pad_h, k.pad_w = a.pad_w, k.dilation_h = a.dilation_h, k.dilation_w = a.dilation_w;
            k.groups = a.groups, k.fused_bias_relu = n.fused_relu, k.residual = n.inputs.size() > 1, k.timed_search = o.conv_search == "timed";
            k.workspace_mib = (int)(workspace_bytes_ >> 20);  // the limit this context's choices are held to
            ConvBuffers grouped = conv_buffers(i, false), dense = conv_buffers(i, true);
            auto conv = std::make_unique<ConvNode>();
            auto t_node = std::chrono::steady_clock::now();
            conv->prepare(p, k, grouped, a.groups > 1 ? &dense : nullptr, env_, n.name);
            state->legacy_cached += conv->legacy_from_cache();
            state->by_impl[(int)conv->impl()]++;
            state->choice_s[(int)conv->impl()] +=
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t_node).count();
            if (conv->gemm() && conv->gemm()->split_k() > 1) state->split_k++;
            if (const GraphConvLaunch* graph = conv->graph()) {
                state->graph_heuristics_s += graph->heuristics_seconds();
                state->graph_plans_s += graph->plan_seconds();
                state->graphs_restored += graph->restored();
            }
            state->convs[i] = std::move(conv);
        }
        state->linear_rows.assign(g.nodes.size(), 0);
        state->gate_form.assign(g.nodes.size(), GateForm::block_per_image);
        state->gate_gemm.resize(g.nodes.size());
        for (size_t i = 0; i < g.nodes.size(); i++) {
            if (g.nodes[i].op == OpType::linear) choose_linear(i, batch, *state);
            if (g.nodes[i].op == OpType::split_attention) choose_gate(i, batch, *state);
        }
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        auto t_convs = std::chrono::steady_clock::now();
        try {
            run_and_capture(batch, *state);
        } catch (const KernelLaunchError& e) {
            // A launch or capture refused while programmatic dependent launch is on: warn and go on without
            // it, for this batch size and the ones after. Any other error is the node's, and propagates.
            if (!launch_.dependent_launch) throw;
            std::fprintf(stderr, "warning: %s; going on without programmatic dependent launch (as --no-pdl)\n",
                         e.what());
            cudaGetLastError();
            cudaStreamSynchronize(stream_);  // a sticky fault shows in the retry, with the first message
            launch_.dependent_launch = false;
            try {
                run_and_capture(batch, *state);
            } catch (const Error& again) {
                throw Error(std::string(e.what()) + "; and with ordinary launches: " + again.what());
            }
        }
        if (o.verbose) {
            auto t_end = std::chrono::steady_clock::now();
            std::string ways;
            for (int c = 0; c < kConvImpls; c++)
                ways += std::string(c ? ", " : "") + conv_impl_name((ConvImpl)c) + " " + std::to_string(state->by_impl[c]);
            std::fprintf(stderr, "cuda: batch %d prepared: convolutions on %s (%d of the cuBLASLt ones split-K; %d legacy "
                         "searches answered by the cache); programmatic dependent launch %s%s\n", batch, ways.c_str(),
                         state->split_k, state->legacy_cached,
                         launch_.dependent_launch ? "on" : "off", state->captured.exec ? "; CUDA graph captured" : "");
            std::fprintf(stderr, "cuda: batch %d: convolution choice %.3f s, eager pass + capture %.3f s\n", batch,
                         std::chrono::duration<double>(t_convs - t0).count(),
                         std::chrono::duration<double>(t_end - t_convs).count());
            // Where the choice's time went, by the way each node ended on (cached starts too: the data
            // for the cold-start target).
            std::string split;
            for (int c = 0; c < kConvImpls; c++)
                if (state->by_impl[c]) {
                    char part[96];
                    std::snprintf(part, sizeof(part), "%s%s %.3f s (%d)", split.empty() ? "" : ", ",
                                  conv_impl_name((ConvImpl)c), state->choice_s[c], state->by_impl[c]);
                    split += part;
                }
            std::fprintf(stderr, "cuda: batch %d: convolution choice by way: %s; the chosen cuDNN graphs' heuristics "
                         "%.3f s, plan finalization %.3f s (%d of %d rebuilt from the cached engine)\n", batch,
                         split.c_str(), state->graph_heuristics_s, state->graph_plans_s, state->graphs_restored,
                         state->by_impl[(int)ConvImpl::cudnn_graph] + state->by_impl[(int)ConvImpl::cudnn_graph_per_group]);
        }
        return *(batches_[batch] = std::move(state));
    }

    // One eager pass (lazy library set-up happens here, outside the capture), then the CUDA graph capture.
    // Another thread that synchronizes the device meanwhile (destroying a context: cudaFree, cublasDestroy)
    // can invalidate the capture; it is then taken again. A call of the pass that the capture refuses
    // invalidates it too, and reads the same from here: so after kCaptureAttempts with programmatic dependent
    // launch on, a KernelLaunchError lets prepare() try again without it; with it off, this batch size runs
    // with ordinary launches, node by node (the same results). A graph that does not end or instantiate
    // (GraphCaptureError) goes the same two ways at once.
    void run_and_capture(int batch, BatchState& state) {
        forward(batch, state, nullptr);
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (!engine_->options().cuda_graph || debug_sync_) return;
        constexpr int kCaptureAttempts = 3;
        for (int attempt = 1; attempt <= kCaptureAttempts; attempt++) {
            try {
                if (capture_forward(batch, state)) return;
            } catch (const GraphCaptureError& e) {
                if (launch_.dependent_launch) throw;  // prepare() tries again without it
                std::fprintf(stderr, "warning: %s; batch %d runs without a CUDA graph (as --no-graph)\n", e.what(), batch);
                return;
            }
        }
        if (launch_.dependent_launch)
            throw KernelLaunchError(engine_->graph().source + ": the CUDA graph capture at batch " + std::to_string(batch) +
                                    " was invalidated " + std::to_string(kCaptureAttempts) +
                                    " times with programmatic dependent launch on");
        std::fprintf(stderr, "warning: %s: the CUDA graph capture at batch %d was invalidated %d times (another thread "
                     "synchronizing the device, or a call that cannot be captured); this batch size runs without a "
                     "CUDA graph\n",
                     engine_->graph().source.c_str(), batch, kCaptureAttempts);
    }

    // Captures what `enqueue` launches on the stream into *graph (left null unless the capture succeeded) and
    // returns how the capture ended: cudaErrorStreamCaptureInvalidated when it was invalidated, also where
    // that made a call inside `enqueue` throw (invalidated from outside, or by a call the capture refused:
    // the two read the same); any other exception from `enqueue` propagates once the capture is ended.
    template <typename Enqueue>
    cudaError_t capture_stream(cudaGraph_t* graph, Enqueue enqueue) {
        *graph = nullptr;
        CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        try {
            enqueue();
        } catch (...) {
            cudaGraph_t broken = nullptr;
            cudaError_t ended = cudaStreamEndCapture(stream_, &broken);
            if (broken) cudaGraphDestroy(broken);
            cudaGetLastError();
            if (ended == cudaErrorStreamCaptureInvalidated) return ended;  // the call failed because of it
            throw;
        }
        cudaError_t e = cudaStreamEndCapture(stream_, graph);
        if (e != cudaSuccess) {
            if (*graph) cudaGraphDestroy(*graph), *graph = nullptr;
            cudaGetLastError();
        }
        return e;
    }

    // Captures the forward pass into state.captured. False when the capture was invalidated
    // (nothing kept; see capture_stream); a capture that fails otherwise throws (GraphCaptureError, nothing
    // kept, when the graph does not end or instantiate; the failing call's error when a call fails without
    // invalidating it).
    bool capture_forward(int batch, BatchState& state) {
        state.captured.reset();
        cudaError_t e = capture_stream(&state.captured.graph, [&] { forward(batch, state, nullptr); });
        if (e == cudaErrorStreamCaptureInvalidated) return false;
        if (e == cudaSuccess) e = cudaGraphInstantiate(&state.captured.exec, state.captured.graph, 0);
        if (e != cudaSuccess) {
            cudaGetLastError();
            state.captured.reset();
            throw GraphCaptureError(engine_->graph().source + ": the CUDA graph capture of the forward pass failed: " +
                                    cudaGetErrorString(e) + " (--no-graph runs without it)");
        }
        return true;
    }

    // Enqueues the whole forward pass; with `events`, records events[i] before node i and events[n] after
    // (`as_graph_nodes`: during a capture, as event-record nodes of the graph, cudaEventRecordExternal).
    void forward(int batch, BatchState& state, std::vector<cudaEvent_t>* events, bool as_graph_nodes = false) {
        auto record = [&](size_t i) {
            if (as_graph_nodes)
                CUDA_CHECK(cudaEventRecordWithFlags((*events)[i], stream_, cudaEventRecordExternal));
            else
                CUDA_CHECK(cudaEventRecord((*events)[i], stream_));
        };
        const Graph& g = engine_->graph();
        const Shape& in = g.input_shape;
        const int c = (int)in[0], c_padded = (int)g.tensors[g.input].shape[0], hw = (int)(in[1] * in[2]);
        const bool half = engine_->options().precision == Precision::fp16;
        if (half)
            nchw_float_to_nhwc<__half>(input_f_, (__half*)tensor(g.input), batch, c, c_padded, hw, launch_);
        else
            nchw_float_to_nhwc<float>(input_f_, (float*)tensor(g.input), batch, c, c_padded, hw, launch_);
        for (size_t i = 0; i < g.nodes.size(); i++) {
            if (events) record(i);
            run_node_stored(i, batch, state);
            if (debug_sync_) {
                RESNEST_CUDA_CHECK_AT(cudaStreamSynchronize(stream_), g.nodes[i].name);
                RESNEST_CUDA_CHECK_AT(cudaGetLastError(), g.nodes[i].name);
            }
        }
        if (events) record(g.nodes.size());
        int out = g.outputs[0];
        const Shape& os = g.tensors[out].shape;
        const int out_hw = os.size() == 3 ? (int)(os[1] * os[2]) : 1;
        if (half)
            nhwc_to_nchw_float<__half>((const __half*)tensor(out), output_f_, batch, (int)os[0], out_hw, launch_);
        else
            nhwc_to_nchw_float<float>((const float*)tensor(out), output_f_, batch, (int)os[0], out_hw, launch_);
    }

    // run_node and pool_and_gate in the engine's storage type.
    void run_node_stored(size_t i, int batch, BatchState& state) {
        if (engine_->options().precision == Precision::fp16)
            run_node<__half>(i, batch, state);
        else
            run_node<float>(i, batch, state);
    }
    void pool_and_gate_stored(size_t i, int batch, GateForm f, BatchState& state) {
        if (engine_->options().precision == Precision::fp16)
            pool_and_gate<__half>(i, batch, f, state);
        else
            pool_and_gate<float>(i, batch, f, state);
    }

    template <typename T>
    void run_node(size_t i, int batch, BatchState& state) {
        const Graph& g = engine_->graph();
        const Node& n = g.nodes[i];
        const DeviceNodeWeights& w = engine_->weights(i);
        const Shape& xs = g.tensors[n.inputs[0]].shape;
        const Shape& ys = g.tensors[n.output].shape;
        const T* x = (const T*)tensor(n.inputs[0]);
        T* y = (T*)tensor(n.output);
        const int channels = (int)xs[0];
        const long long count = (long long)batch * shape_numel(xs);
        switch (n.op) {
            case OpType::conv2d:
                state.convs[i]->launch(env_);
                break;
            case OpType::batch_norm:
                channel_affine_activation<T>(x, w.bn_scale, w.bn_shift, nullptr, y, count, channels, false, launch_);
                break;
            case OpType::relu:
                channel_affine_activation<T>(x, nullptr, nullptr, nullptr, y, count, channels, true, launch_);
                break;
            case OpType::add:
                channel_affine_activation<T>(x, nullptr, nullptr, (const T*)tensor(n.inputs[1]), y, count, channels,
                                             false, launch_);
                break;
            case OpType::max_pool2d:
            case OpType::avg_pool2d: {
                const Pool2dAttrs& a = n.pool;
                Pool2dShape s{batch, (int)xs[1], (int)xs[2], channels, (int)ys[1], (int)ys[2], a.kernel_h, a.kernel_w,
                              a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.count_include_pad};
                if (n.op == OpType::max_pool2d)
                    max_pool2d_nhwc<T>(x, y, s, launch_);
                else
                    avg_pool2d_nhwc<T>(x, y, s, launch_);
                break;
            }
            case OpType::split_attention: {
                const SplitAttentionAttrs& a = n.attn;
                int hw = (int)(xs[1] * xs[2]);
                pool_and_gate<T>(i, batch, state.gate_form[i], state);
                if (a.fused_avg_pool) {
                    const Pool2dAttrs& pa = a.pool;
                    Pool2dShape ps{batch, (int)xs[1], (int)xs[2], a.channels, (int)ys[1], (int)ys[2], pa.kernel_h,
                                   pa.kernel_w, pa.stride_h, pa.stride_w, pa.pad_h, pa.pad_w, pa.count_include_pad};
                    split_attention_weighted_sum_avg_pool<T>(x, attn_, y, a.radix, ps, launch_);
                } else {
                    split_attention_weighted_sum<T>(x, attn_, y, batch, hw, a.radix, a.channels, launch_);
                }
                break;
            }
            case OpType::global_avg_pool:
                global_avg_pool_nhwc<T>(x, y, batch, (int)(xs[1] * xs[2]), channels, launch_);
                break;
            case OpType::linear:
                if (state.linear_rows[i])
                    linear_bias_warp_per_output_row<T>(x, (const T*)w.linear_w, w.linear_b, y, batch,
                                                       n.linear.in_features, n.linear.out_features, launch_);
                else
                    linear<T>(n, w, x, y, batch);
                break;
            case OpType::softmax:
                softmax_rows_block_per_row<T>(x, y, batch, (int)shape_numel(xs), launch_);
                break;
        }
    }

    // Split attention's gate at this batch size in the given form: the pool in the planned chunks (their
    // count depends on the storage type), or in one chunk for the matmuls.
    template <typename T>
    SplitAttentionGateShape gate_shape(const Node& n, int batch, GateForm form) const {
        const Shape& xs = engine_->graph().tensors[n.inputs[0]].shape;
        const SplitAttentionAttrs& a = n.attn;
        const int hw = (int)(xs[1] * xs[2]);
        const int chunks = form == GateForm::matmuls ? 1 : split_attention_pool_chunks_for<T>(batch, hw, a.channels);
        return {batch, a.radix, a.cardinality, a.channels, a.inter_channels, hw, chunks};
    }

    // Split attention's first two steps for node i: the radix sum + pool of U into gap_, then the gate.
    template <typename T>
    void pool_and_gate(size_t i, int batch, GateForm form, const BatchState& state) {
        const Node& n = engine_->graph().nodes[i];
        const SplitAttentionGateShape s = gate_shape<T>(n, batch, form);
        split_attention_radix_sum_pool<T>((const T*)tensor(n.inputs[0]), gap_, batch, s.hw, s.radix, s.channels,
                                          s.chunks, launch_);
        launch_gate(i, s, form, state);
    }

    // Node i's gate from the pool's chunk sums (gap_) to attn_ in the given form.
    void launch_gate(size_t i, const SplitAttentionGateShape& s, GateForm form, const BatchState& state) {
        const DeviceNodeWeights& w = engine_->weights(i);
        switch (form) {
            case GateForm::rows:
                split_attention_gate_rows(gap_, w.fc1_w, w.fc1_b, w.fc2_w, w.fc2_b, hidden_, attn_, s, launch_);
                break;
            case GateForm::matmuls: state.gate_gemm[i]->launch(lt_, launch_); break;
            case GateForm::block_per_image:
                split_attention_gate_block_per_image(gap_, w.fc1_w, w.fc1_b, w.fc2_w, w.fc2_b, attn_, s, launch_);
                break;
        }
    }

    // Which gate split-attention node i runs at this batch size: the fastest over a few graph replays (pool
    // and gate, the pool planned in chunks, or in one for the matmuls) of one block per image, the rows form
    // (where its shared memory fits) and the matmuls (cardinality 1). The rows form and one block per image
    // within 2 % of each other: the gate lab's rule (split_attention_gate_rows_preferred: below half a wave
    // of images, for fc weights of 256 KiB or more).
    // The choice is cached per gate shape and batch size (a later start times nothing).
    void choose_gate(size_t i, int batch, BatchState& state) {
        const Node& n = engine_->graph().nodes[i];
        const bool half = engine_->options().precision == Precision::fp16;
        auto shape = [&](GateForm f) { return half ? gate_shape<__half>(n, batch, f) : gate_shape<float>(n, batch, f); };
        const SplitAttentionGateShape s = shape(GateForm::block_per_image);
        const bool rows_fit = split_attention_gate_rows_smem_bytes(s) <= 48 * 1024;
        const DeviceNodeWeights& w = engine_->weights(i);
        auto gemm = std::make_unique<GateGemmLaunch>();
        std::string why;
        // The gate as matmuls, where it builds and one launch of it runs: optional, like a convolution's ways
        // (a library error skips it with a warning, from the cache too).
        auto build_gemm = [&] {
            try {
                if (!gemm->describe(shape(GateForm::matmuls),
                                    {gap_, w.fc1_w, w.fc1_b, w.fc2_w, w.fc2_b, hidden_, attn_}, n.name, &why) ||
                    !gemm->choose_algorithms(lt_, &why))
                    return false;
                gemm->launch(lt_, launch_);  // throws where cuBLASLt refuses the algorithm it offered
                CUDA_CHECK(cudaStreamSynchronize(stream_));
                return true;
            } catch (const Error& e) {
                std::fprintf(stderr, "resnest: warning: %s: the gate as matmuls skipped: %s\n", n.name.c_str(), e.what());
                cudaGetLastError();
                why = "skipped";
                return false;
            }
        };
        const SplitAttentionAttrs& a = n.attn;
        const Shape& u = engine_->graph().tensors[n.inputs[0]].shape;  // (R*C, H, W) an image
        const std::string key = op_algo_key(
            key_parts(batch), "split-attention gate r" + std::to_string(a.radix) + " k" + std::to_string(a.cardinality) +
                                  " c" + std::to_string(a.channels) + " i" + std::to_string(a.inter_channels) + " hw" +
                                  std::to_string(u[1] * u[2]) + " forms 0" + (rows_fit ? " 1" : "") + " 2 cublasLt " +
                                  std::to_string(engine_->device().cublas_version));
        const int cached = cached_choice(key, 3);
        if (cached >= 0 && (cached != (int)GateForm::rows || rows_fit) &&
            (cached != (int)GateForm::matmuls || build_gemm())) {
            state.gate_form[i] = (GateForm)cached;
            if (cached == (int)GateForm::matmuls) state.gate_gemm[i] = std::move(gemm);
            if (engine_->options().verbose)
                std::fprintf(stderr, "cuda: %s gate at batch %d: %s (cached)\n", n.name.c_str(), batch,
                             gate_form_name(state.gate_form[i]));
            return;
        }
        auto time_form = [&](GateForm f) {  // the pool too: the matmuls need it in one chunk
            return mean_launch_ms(stream_, 5, [&] { pool_and_gate_stored(i, batch, f, state); }, n.name);
        };
        const float block_ms = time_form(GateForm::block_per_image);
        float best_ms = block_ms;
        GateForm best = GateForm::block_per_image;
        std::string report;
        char part[96];
        std::snprintf(part, sizeof(part), "%s %.4f ms", gate_form_name(best), block_ms);
        report += part;
        if (rows_fit) {
            const float rows_ms = time_form(GateForm::rows);
            const bool rule = split_attention_gate_rows_preferred(s, engine_->device().multiprocessors);
            const bool close = std::fabs(rows_ms - block_ms) <= 0.02f * std::min(rows_ms, block_ms);
            if (close ? rule : rows_ms < block_ms) best = GateForm::rows, best_ms = rows_ms;
            std::snprintf(part, sizeof(part), ", %s %.4f ms%s", gate_form_name(GateForm::rows), rows_ms,
                          close ? " (within 2 %: the lab's rule)" : "");
            report += part;
        }
        gemm = std::make_unique<GateGemmLaunch>();  // a cached form that did not build left it half made
        if (build_gemm()) {
            state.gate_gemm[i] = std::move(gemm);
            const float gemm_ms = time_form(GateForm::matmuls);
            if (gemm_ms < best_ms) best = GateForm::matmuls, best_ms = gemm_ms;
            std::snprintf(part, sizeof(part), ", %s %.4f ms", gate_form_name(GateForm::matmuls), gemm_ms);
            report += part;
        } else {
            report += std::string(", ") + gate_form_name(GateForm::matmuls) + " - (" + why + ")";
        }
        state.gate_form[i] = best;
        if (best != GateForm::matmuls) state.gate_gemm[i].reset();
        engine_->cache().insert(key, {(int)best, 0, 0, ""});
        if (engine_->options().verbose)
            std::fprintf(stderr, "cuda: %s gate at batch %d, %s: %s\n", n.name.c_str(), batch, report.c_str(),
                         gate_form_name(best));
    }

    // How linear node i runs at this batch size: cuBLAS's GEMM + the bias kernel, or the warp-per-output-row
    // kernel (linear_rows.cuh), whichever is faster over a few launches (cuBLAS on a tie).
    void choose_linear(size_t i, int batch, BatchState& state) {
        const Node& n = engine_->graph().nodes[i];
        auto run = [&] { run_node_stored(i, batch, state); };
        const std::string key =
            op_algo_key(key_parts(batch), "linear in" + std::to_string(n.linear.in_features) + " out" +
                                              std::to_string(n.linear.out_features) + (n.linear.bias ? " bias" : "") +
                                              " cublas " + std::to_string(engine_->device().cublas_version));
        const int cached = cached_choice(key, 2);
        if (cached >= 0) {
            state.linear_rows[i] = (char)cached;
            if (engine_->options().verbose)
                std::fprintf(stderr, "cuda: %s at batch %d: %s (cached)\n", n.name.c_str(), batch,
                             cached ? "warp per output row" : "cuBLAS");
            return;
        }
        state.linear_rows[i] = 0;
        const float gemm_ms = mean_launch_ms(stream_, 5, run, n.name);
        state.linear_rows[i] = 1;
        const float rows_ms = mean_launch_ms(stream_, 5, run, n.name);
        state.linear_rows[i] = rows_ms < gemm_ms;
        engine_->cache().insert(key, {(int)state.linear_rows[i], 0, 0, ""});
        if (engine_->options().verbose)
            std::fprintf(stderr, "cuda: %s at batch %d, cuBLAS + bias %.4f ms, warp per output row %.4f ms: %s\n",
                         n.name.c_str(), batch, gemm_ms, rows_ms, state.linear_rows[i] ? "warp per output row" : "cuBLAS");
    }

    // y (N, out) = x (N, in) W^T + b through cuBLAS (column-major: y^T = W x^T), bias in a second pass.
    template <typename T>
    void linear(const Node& n, const DeviceNodeWeights& w, const T* x, T* y, int batch) {
        const Precision p = engine_->options().precision;
        const int in = n.linear.in_features, out = n.linear.out_features;
        const float one = 1.0f, zero = 0.0f;
        cudaDataType_t dt = p == Precision::fp16 ? CUDA_R_16F : CUDA_R_32F;
        cublasComputeType_t ct = p == Precision::fp32   ? CUBLAS_COMPUTE_32F_PEDANTIC
                                 : p == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                        : CUBLAS_COMPUTE_32F;
        RESNEST_CUBLAS_CHECK_AT(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, out, batch, in, &one, w.linear_w, dt, in,
                                             x, dt, in, &zero, y, dt, out, ct, CUBLAS_GEMM_DEFAULT),
                                n.name);
        if (w.linear_b)
            channel_affine_activation<T>(y, nullptr, w.linear_b, nullptr, y, (long long)batch * out, out, false, launch_);
    }

    std::shared_ptr<const CudaEngine> engine_;
    cudaStream_t stream_ = nullptr;
    cudnnHandle_t cudnn_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    cublasLtHandle_t lt_ = nullptr;
    ConvChoiceEnv env_;  // handles, stream and options the convolution choice and launches use
    KernelStream launch_;  // stream_, and whether kernels/ launches are programmatic dependent launches
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
    std::vector<void*> allocations_;
    int64_t allocated_bytes_ = 0;
    void* arena_ = nullptr;
    float* input_f_ = nullptr;   // (N, C, H, W) float
    float* output_f_ = nullptr;  // (N, classes) float
    void* workspace_ = nullptr;  // (workspace_bytes_) the convolutions' scratch
    size_t workspace_bytes_ = 0;
    void* cublas_ws_ = nullptr;
    float* gap_ = nullptr;   // (N, chunks, C) split attention's pooled chunk sums
    float* attn_ = nullptr;  // (N, R*C) its gates
    float* hidden_ = nullptr;  // (N, inter) fc1's outputs, between the two kernels of the small-batch gate
    int64_t in_numel_ = 0, out_numel_ = 0;
    int loaded_batch_ = 0;
    bool debug_sync_ = false;
    std::map<int, std::unique_ptr<BatchState>> batches_;
};

std::unique_ptr<Context> CudaEngine::create_context() const {
    return std::make_unique<CudaContext>(shared_from_this());
}

}  // namespace

std::shared_ptr<Engine> cuda_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                           const ModelSummary& summary, std::vector<std::string> pass_log) {
    return std::make_shared<CudaEngine>(std::move(graph), weights, options, summary, std::move(pass_log));
}

}  // namespace resnest
