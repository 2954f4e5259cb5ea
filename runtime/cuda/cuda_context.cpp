// cuda_context.cpp: a CUDA context's set-up and tear-down, its runs, and the forward pass node by node
// (cuda_context.h).
#include "cuda/cuda_context.h"

#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "channel_affine.cuh"
#include "context_checks.h"
#include "conv_stem_direct_nchw.cuh"
#include "cuda/cuda_check.h"
#include "fusion_pairs.h"
#include "global_avg_pool.cuh"
#include "layout_convert.cuh"
#include "linear_rows.cuh"
#include "pool2d_nhwc.cuh"
#include "softmax_rows.cuh"
#include "split_attention_combine.cuh"
#include "split_attention_combine_conv1x1.cuh"
#include "split_attention_gate.cuh"
#include "split_attention_gate_rows.cuh"
#include "split_attention_pool.cuh"
#include "split_attention_pool_row_lanes.cuh"
#include "split_attention_rows.cuh"

namespace resnest {

namespace {
constexpr size_t kCublasWorkspaceBytes = 4ull << 20;  // lets cuBLAS run inside graph capture
// The implicit GEMM's per-tile counts: it splits K only while its tiles fit one wave, so far fewer tiles
// than this on any GPU; more would run unsplit.
constexpr int kTileArrivalSlots = 4096;
}  // namespace

const char* gate_form_name(GateForm f) {
    switch (f) {
        case GateForm::block_per_image: return "one block per image";
        case GateForm::rows: return "rows over many blocks";
        case GateForm::matmuls: return "two matmuls + softmax";
    }
    return "?";
}

CudaContext::CudaContext(std::shared_ptr<const CudaEngine> engine) : engine_(std::move(engine)) {
    try {
        initialize();
    } catch (...) {
        release();  // a constructor that throws runs no destructor: what was made so far goes here
        throw;
    }
}

CudaContext::~CudaContext() { release(); }

void CudaContext::initialize() {
    const EngineOptions& o = engine_->options();
    const Graph& g = engine_->graph();
    auto t0 = std::chrono::steady_clock::now();
    CUDA_CHECK(cudaSetDevice(o.device));
    debug_sync_ = engine_->debug_sync();
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    CUDNN_CHECK(cudnnCreate(&cudnn_));
    CUDNN_CHECK(cudnnSetStream(cudnn_, stream_));
    CUBLAS_CHECK(cublasCreate(&cublas_));
    CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
    CUBLAS_CHECK(cublasLtCreate(&lt_));
    env_.cudnn = cudnn_, env_.lt = lt_, env_.stream = stream_, env_.cache = &engine_->cache();
    env_.conv_gemm = o.conv_gemm, env_.conv_graph = o.conv_graph, env_.timed_search = o.conv_search == "timed";
    env_.verbose = o.verbose, env_.cublas_version = engine_->device().cublas_version;
    env_.cublaslt_version = engine_->device().cublaslt_version;
    env_.implicit_gemm = engine_->implicit_gemm_mode(), env_.multiprocessors = engine_->device().multiprocessors;
    launch_ = KernelStream(stream_, o.dependent_launch && engine_->device().kernels_arch >= 90,
                           engine_->weight_prefetch());
    env_.dependent_launch = &launch_.dependent_launch;  // our convolution kernels launch as the others do
    env_.prefetch_weights = launch_.prefetch_weights;
    CUDA_CHECK(cudaEventCreate(&start_));
    CUDA_CHECK(cudaEventCreate(&stop_));
    in_numel_ = shape_numel(g.input_shape);
    out_numel_ = shape_numel(g.tensors[g.outputs[0]].shape);
    const int64_t n = o.max_batch;
    arena_ = alloc(std::max<int64_t>(engine_->plan().arena_bytes, 256), "activation arena");
    input_f_ = (float*)alloc(n * in_numel_ * 4, "input");
    output_f_ = (float*)alloc(n * out_numel_ * 4, "output");
    workspace_bytes_ = (size_t)conv_workspace_mib_for(o) << 20;  // algorithms needing more are not considered
    workspace_ = alloc((int64_t)workspace_bytes_, "convolution workspace",
                       "--conv-workspace (now " + std::to_string(workspace_bytes_ >> 20) + " MiB)");
    cublas_ws_ = alloc((int64_t)kCublasWorkspaceBytes, "cuBLAS workspace");
    CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_ws_, kCublasWorkspaceBytes));
    if (engine_->gap_floats()) gap_ = (float*)alloc(engine_->gap_floats() * 4, "attention pool");
    if (engine_->attn_floats()) attn_ = (float*)alloc(engine_->attn_floats() * 4, "attention weights");
    if (engine_->hidden_floats()) hidden_ = (float*)alloc(engine_->hidden_floats() * 4, "attention fc1 outputs");
    if (env_.implicit_gemm != "off") {  // zero between launches: each launch's last blocks reset theirs
        env_.tile_arrivals = (int*)alloc(kTileArrivalSlots * sizeof(int), "implicit GEMM tile counts");
        env_.tile_arrival_slots = kTileArrivalSlots;
        // On the context's own stream (created non-blocking: the legacy stream's cudaMemset would not be
        // ordered before our kernels on it), completed before anything is chosen or run.
        CUDA_CHECK(cudaMemsetAsync(env_.tile_arrivals, 0, kTileArrivalSlots * sizeof(int), stream_));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    plan_l2_window();
    if (o.verbose)
        std::fprintf(stderr, "cuda: context: stream, cuDNN / cuBLAS / cuBLASLt handles and %.1f MiB in %.3f s\n",
                     allocated_bytes_ / 1048576.0,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

// Everything the context holds, whatever part of initialize() ran. A destructor cannot throw and nothing
// can be done about a failure here, but it is not silent: the first one goes to stderr (a sticky fault from
// the last run, say), except while the process exits and CUDA is already unloading.
void CudaContext::release() noexcept {
    std::string failed;
    auto cuda = [&](cudaError_t e, const char* call) {
        if (cuda_release_failed(e) && failed.empty())
            failed = std::string(call) + ": " + cudaGetErrorString(e);
    };
    auto library = [&](bool ok, const char* call) {
        if (!ok && failed.empty()) failed = call;
    };
    cuda(cudaSetDevice(engine_->options().device), "cudaSetDevice");
    if (stream_) cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
    release_l2_window();
    batches_.clear();
    for (void* p : allocations_) cuda(cudaFree(p), "cudaFree");
    allocations_.clear();
    if (start_) cuda(cudaEventDestroy(start_), "cudaEventDestroy");
    if (stop_) cuda(cudaEventDestroy(stop_), "cudaEventDestroy");
    if (lt_) library(cublasLtDestroy(lt_) == CUBLAS_STATUS_SUCCESS, "cublasLtDestroy");
    if (cublas_) library(cublasDestroy(cublas_) == CUBLAS_STATUS_SUCCESS, "cublasDestroy");
    if (cudnn_) library(cudnnDestroy(cudnn_) == CUDNN_STATUS_SUCCESS, "cudnnDestroy");
    if (stream_) cuda(cudaStreamDestroy(stream_), "cudaStreamDestroy");
    start_ = stop_ = nullptr, lt_ = nullptr, cublas_ = nullptr, cudnn_ = nullptr, stream_ = nullptr;
    cudaGetLastError();
    if (!failed.empty())
        std::fprintf(stderr, "resnest: warning: releasing a CUDA context of %s: %s (its memory and handles may not "
                     "have been freed)\n", engine_->graph().source.c_str(), failed.c_str());
}

void CudaContext::run(const float* input, int batch, float* output) {
    if (!input || !output) throw Error("Context::run: input and output must not be null");
    set_input(input, batch);
    run_loaded(batch);
    get_output(output, batch);
}

void CudaContext::set_input(const float* input, int batch) {
    check_batch(batch, "set_input");
    if (!input) throw Error("Context::set_input: input must not be null");
    CUDA_CHECK(cudaSetDevice(engine_->options().device));
    loaded_batch_ = 0;  // a copy that fails leaves no batch to run
    output_ready_ = false;
    CUDA_CHECK(cudaMemcpyAsync(input_f_, input, (size_t)(batch * in_numel_) * 4, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    loaded_batch_ = batch;
}

RunTiming CudaContext::run_loaded(int batch) {
    check_loaded(batch, "run_loaded");
    CUDA_CHECK(cudaSetDevice(engine_->options().device));
    BatchState& state = prepare(batch);
    if (!state.captured.exec && state.capture_retries > 0) retry_capture(batch, state);
    auto t0 = std::chrono::steady_clock::now();
    output_ready_ = false;
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
    output_ready_ = true;
    return t;
}

void CudaContext::get_output(float* output, int batch) {
    check_loaded(batch, "get_output");
    check_context_output(output, output_ready_);
    CUDA_CHECK(cudaSetDevice(engine_->options().device));
    CUDA_CHECK(cudaMemcpyAsync(output, output_f_, (size_t)(batch * out_numel_) * 4, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaContext::check_batch(int batch, const char* what) const {
    check_context_batch(batch, engine_->options().max_batch, what);
}

int CudaContext::tile_counts_not_zero() {
    if (!env_.tile_arrivals) return 0;
    CUDA_CHECK(cudaSetDevice(engine_->options().device));
    std::vector<int> counts((size_t)env_.tile_arrival_slots);
    CUDA_CHECK(cudaMemcpyAsync(counts.data(), env_.tile_arrivals, counts.size() * sizeof(int), cudaMemcpyDeviceToHost,
                               stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    return (int)std::count_if(counts.begin(), counts.end(), [](int c) { return c != 0; });
}

bool CudaContext::l2_window_on(int batch) const {
    auto it = batches_.find(batch);
    return it != batches_.end() && it->second->captured.exec && it->second->l2_window;
}

void CudaContext::check_loaded(int batch, const char* what) const {
    check_context_loaded(batch, engine_->options().max_batch, loaded_batch_, what);
}

void* CudaContext::alloc(int64_t bytes, const char* what, const std::string& lower) {
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, (size_t)bytes);
    if (e != cudaSuccess) {
        cudaGetLastError();
        // Each context allocates its own (bench --streams N makes N).
        throw Error(allocation_failure(std::string("the ") + what, bytes, engine_->options().device, e,
                                       "lower " + lower + ", run fewer contexts (--streams) or free device memory"));
    }
    allocations_.push_back(p);
    allocated_bytes_ += bytes;
    return p;
}

// The NHWC storage of tensor t.
void* CudaContext::tensor(int t) const {
    return (unsigned char*)arena_ + engine_->plan().offset[t];  // the graph input's too (in the arena)
}

ConvBuffers CudaContext::conv_buffers(size_t i, bool dense) const {
    const Node& n = engine_->graph().nodes[i];
    const DeviceNodeWeights& w = engine_->weights(i);
    return {tensor(n.inputs[0]), dense ? w.conv_w_dense : w.conv_w, w.conv_b, w.conv_b_f,
            n.inputs.size() > 1 ? tensor(n.inputs[1]) : nullptr, tensor(n.output), workspace_,
            workspace_bytes_};
}

void rethrow_naming_node(const std::string& node) {
    try {
        throw;
    } catch (const Error& e) {
        if (std::string(e.what()).rfind("node '", 0) == 0) throw;  // named already
        const std::string named = "node '" + node + "': " + e.what();
        // The same kind, most derived first.
        if (dynamic_cast<const CallRefusedCaptureError*>(&e)) throw CallRefusedCaptureError(named);
        if (dynamic_cast<const GraphCaptureError*>(&e)) throw GraphCaptureError(named);
        if (dynamic_cast<const KernelLaunchError*>(&e)) throw KernelLaunchError(named);
        throw Error(named);
    }
}

void rethrow_capture_error(bool dependent_launch, const std::string& source) {
    try {
        throw;
    } catch (const GraphCaptureError&) {
        throw;
    } catch (const KernelLaunchError& launch) {
        // With dependent launches off, a launch the eager pass made and the capture refused is the capture's.
        if (dependent_launch) throw;
        throw GraphCaptureError(source + ": a launch failed inside the CUDA graph capture (" + launch.what() + ")");
    } catch (const Error& inside) {
        throw CallRefusedCaptureError(source + ": a call refused the CUDA graph capture (" + inside.what() + ")");
    }
}

// Enqueues the whole forward pass; with `events`, records events[i] before node i and events[n] after
// (`as_graph_nodes`: during a capture, as event-record nodes of the graph, cudaEventRecordExternal).
void CudaContext::forward(int batch, BatchState& state, std::vector<cudaEvent_t>* events, bool as_graph_nodes) {
    auto record = [&](size_t i) {
        if (as_graph_nodes)
            CUDA_CHECK(cudaEventRecordWithFlags((*events)[i], stream_, cudaEventRecordExternal));
        else
            CUDA_CHECK(cudaEventRecord((*events)[i], stream_));
    };
    const Graph& g = engine_->graph();
    const bool half = engine_->options().precision == Precision::fp16;
    if (!state.stem) input_to_nhwc(batch);  // else the first convolution reads input_f_ itself
    for (size_t i = 0; i < g.nodes.size(); i++) {
        if (events) record(i);
        try {
            run_node_stored(i, batch, state);
        } catch (const Error&) {
            rethrow_naming_node(g.nodes[i].name);
        }
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

// The NCHW float input into the graph's NHWC input tensor, its channels padded as the graph says.
void CudaContext::input_to_nhwc(int batch) {
    const Graph& g = engine_->graph();
    const Shape& in = g.input_shape;
    const int c = (int)in[0], c_padded = (int)g.tensors[g.input].shape[0], hw = (int)(in[1] * in[2]);
    if (engine_->options().precision == Precision::fp16)
        nchw_float_to_nhwc<__half>(input_f_, (__half*)tensor(g.input), batch, c, c_padded, hw, launch_);
    else
        nchw_float_to_nhwc<float>(input_f_, (float*)tensor(g.input), batch, c, c_padded, hw, launch_);
}

void CudaContext::launch_stem(const StemConvLaunch& c) {
    if (engine_->options().precision == Precision::fp16)
        conv_stem_direct_nchw<__half>(input_f_, (const __half*)c.w, c.bias, (__half*)c.y, c.s, c.relu, launch_);
    else
        conv_stem_direct_nchw<float>(input_f_, (const float*)c.w, c.bias, (float*)c.y, c.s, c.relu, launch_);
}

// run_node and pool_and_gate in the engine's storage type.
void CudaContext::run_node_stored(size_t i, int batch, BatchState& state) {
    if (engine_->options().precision == Precision::fp16)
        run_node<__half>(i, batch, state);
    else
        run_node<float>(i, batch, state);
}
void CudaContext::pool_and_gate_stored(size_t i, int batch, GateForm f, BatchState& state) {
    if (engine_->options().precision == Precision::fp16)
        pool_and_gate<__half>(i, batch, f, state);
    else
        pool_and_gate<float>(i, batch, f, state);
}

template <typename T>
void CudaContext::run_node(size_t i, int batch, BatchState& state) {
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
            if (state.stem && state.stem->node == i)
                launch_stem(*state.stem);
            else if (state.combine_conv[i])
                launch_combine_conv(*state.combine_conv[i]);
            else
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
            if (state.folded_in_conv[i] >= 0) break;  // the 1x1 convolution after it pools as it loads
            const Pool2dAttrs& a = n.pool;
            Pool2dShape s{batch, (int)xs[1], (int)xs[2], channels, (int)ys[1], (int)ys[2], a.kernel_h, a.kernel_w,
                          a.stride_h, a.stride_w, a.pad_h, a.pad_w, a.count_include_pad};
            if (n.op == OpType::max_pool2d)
                max_pool2d_nhwc<T>(x, y, s, launch_, library_filters_after(i, state));
            else
                avg_pool2d_nhwc<T>(x, y, s, launch_, library_filters_after(i, state));
            break;
        }
        case OpType::split_attention:
            pool_and_gate<T>(i, batch, state.gate_form[i], state);
            record_stage(i, 1);
            if (state.folded_in_conv[i] < 0) combine<T>(i, batch, state);  // else the 1x1 convolution after it does
            break;
        case OpType::global_avg_pool:
            global_avg_pool_nhwc<T>(x, y, batch, (int)(xs[1] * xs[2]), channels, launch_,
                                    library_filters_after(i, state));
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

// Split attention's last step for node i: the radix splits weighted by attn_ and summed into its output,
// with the avd pool where one is fused.
template <typename T>
void CudaContext::combine(size_t i, int batch, const BatchState& state) {
    const Graph& g = engine_->graph();
    const Node& n = g.nodes[i];
    const L2Prefetch next = library_filters_after(i, state);  // conv3's filter, and the next conv1's
    const Shape& xs = g.tensors[n.inputs[0]].shape;
    const Shape& ys = g.tensors[n.output].shape;
    const SplitAttentionAttrs& a = n.attn;
    T* y = (T*)tensor(n.output);
    if (a.fused_avg_pool) {
        const Pool2dAttrs& pa = a.pool;
        Pool2dShape ps{batch, (int)xs[1], (int)xs[2], a.channels, (int)ys[1], (int)ys[2], pa.kernel_h,
                       pa.kernel_w, pa.stride_h, pa.stride_w, pa.pad_h, pa.pad_w, pa.count_include_pad};
        split_attention_weighted_sum_avg_pool<T>(radix_rows<T>(n), attn_, y, a.radix, ps, launch_, next);
    } else {
        split_attention_weighted_sum<T>(radix_rows<T>(n), attn_, y, batch, (int)(xs[1] * xs[2]), a.radix, a.channels,
                                        launch_, next);
    }
}
void CudaContext::combine_stored(size_t i, int batch, const BatchState& state) {
    if (engine_->options().precision == Precision::fp16)
        combine<__half>(i, batch, state);
    else
        combine<float>(i, batch, state);
}

// The weights of the calls a library runs right after node i (library_calls_after: convolutions not on our
// kernels' ways nor the im2col ways, whose gather asks for its own matmul's filter; the classifier on cuBLAS),
// for our kernel at node i to ask L2 for on their behalf.
L2Prefetch CudaContext::library_filters_after(size_t i, const BatchState& state) const {
    const Graph& g = engine_->graph();
    auto weights_of = [&](size_t j, size_t* bytes) -> const void* {
        const Node& n = g.nodes[j];
        *bytes = 0;
        if (n.op == OpType::linear) {
            if (state.linear_rows[j]) return nullptr;  // the warp-per-row kernel asks for its own
            *bytes = (size_t)n.linear.in_features * n.linear.out_features * engine_->esize();
            return engine_->weights(j).linear_w;
        }
        if (!state.convs[j] || state.combine_conv[j] || (state.stem && state.stem->node == j)) return nullptr;
        const ConvImpl impl = state.convs[j]->impl();
        if (impl == ConvImpl::im2col_cublaslt || impl == ConvImpl::im2col_cublaslt_per_group) return nullptr;
        return state.convs[j]->library_filter(bytes);
    };
    L2Prefetch next;
    size_t bytes = 0;
    int r = 0;
    for (int j : library_calls_after(g, (int)i, [&](int j) { return weights_of((size_t)j, &bytes) != nullptr; },
                                     kL2PrefetchRanges)) {
        next.ptr[r] = weights_of((size_t)j, &bytes);
        next.bytes[r++] = (long long)bytes;
    }
    return next;
}

void CudaContext::launch_combine_conv(const CombineConvLaunch& c) {
    split_attention_combine_conv1x1(c.u, c.attn, c.w, c.bias, c.z, c.y, c.s, c.splits, c.relu, (float*)workspace_,
                                    env_.tile_arrivals, launch_);
}

// Split attention node i's gate at this batch size in the given form: the pool in the planned chunks (their
// count depends on the pool's kernel and the storage type: CudaEngine::pool_chunks), in one chunk for the
// matmuls, or in the chunks of the convolution whose epilogue pools (BatchState::pool_in_conv).
SplitAttentionGateShape CudaContext::gate_shape(size_t i, int batch, GateForm form, const BatchState& state) const {
    const Node& n = engine_->graph().nodes[i];
    const Shape& xs = engine_->graph().tensors[n.inputs[0]].shape;
    const SplitAttentionAttrs& a = n.attn;
    const int hw = (int)(xs[1] * xs[2]);
    const int conv = i < state.pool_in_conv.size() ? state.pool_in_conv[i] : -1;
    const int chunks = form == GateForm::matmuls ? 1
                       : conv >= 0               ? state.convs[(size_t)conv]->pool_chunks()
                                                 : engine_->pool_chunks(n, batch);
    return {batch, a.radix, a.cardinality, a.channels, a.inter_channels, hw, chunks};
}

// Split attention node n's input U: one (N, HW, R*C) tensor, the radix splits interleaved in each position's
// row, or (split_radix_convolutions) one (N, HW, C) tensor per split, its inputs.
template <typename T>
RadixRows<T> CudaContext::radix_rows(const Node& n) const {
    const SplitAttentionAttrs& a = n.attn;
    if (n.inputs.size() == 1) return radix_rows_interleaved((const T*)tensor(n.inputs[0]), a.radix, a.channels);
    const T* splits[kSplitAttentionMaxRadix] = {};
    for (int r = 0; r < a.radix && r < (int)n.inputs.size() && r < kSplitAttentionMaxRadix; r++)
        splits[r] = (const T*)tensor(n.inputs[r]);
    return radix_rows_apart(splits, a.radix, a.channels);
}

// Split attention's first two steps for node i: the radix sum + pool of U into gap_ (unless the
// convolution that wrote U did, in its epilogue), then the gate.
template <typename T>
void CudaContext::pool_and_gate(size_t i, int batch, GateForm form, const BatchState& state) {
    const Node& n = engine_->graph().nodes[i];
    const SplitAttentionGateShape s = gate_shape(i, batch, form, state);
    const RadixRows<T> u = radix_rows<T>(n);
    const bool pooled_by_conv = form != GateForm::matmuls && state.pool_in_conv[i] >= 0;
    // The matmuls pool in one chunk per image: one row-lanes block an image would leave most SMs idle.
    if (!pooled_by_conv) {
        if (form != GateForm::matmuls && engine_->pool_row_lanes(n))
            split_attention_radix_sum_pool_row_lanes<T>(u, gap_, batch, s.hw, s.radix, s.channels, s.chunks, launch_);
        else
            split_attention_radix_sum_pool<T>(u, gap_, batch, s.hw, s.radix, s.channels, s.chunks, launch_);
    }
    record_stage(i, 0);
    launch_gate(i, s, form, state);
}

void CudaContext::record_stage(size_t i, int stage) {
    if (!stages_ || stages_->slot[i] < 0) return;
    CUDA_CHECK(cudaEventRecord(stages_->events[(size_t)stages_->slot[i] + stage], stream_));
}

// Node i's gate from the pool's chunk sums (gap_) to attn_ in the given form.
void CudaContext::launch_gate(size_t i, const SplitAttentionGateShape& s, GateForm form, const BatchState& state) {
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

// y (N, out) = x (N, in) W^T + b through cuBLAS (column-major: y^T = W x^T), bias in a second pass.
template <typename T>
void CudaContext::linear(const Node& n, const DeviceNodeWeights& w, const T* x, T* y, int batch) {
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

}  // namespace resnest
