// cuda_context_prepare.cpp: what a CUDA context prepares for a batch size at its first run (cuda_context.h):
// each convolution's way, each split-attention gate's form and the classifier's way, from the algorithm
// cache or by timing; then one eager pass and the CUDA graph capture of the forward pass.
#include <cuda_fp16.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "split_attention_gate_rows.cuh"

namespace resnest {

// Descriptors and algorithms for a batch size, then one eager run and the graph capture.
BatchState& CudaContext::prepare(int batch) {
    auto found = batches_.find(batch);
    if (found != batches_.end()) return *found->second;
    std::lock_guard<std::mutex> one_context_at_a_time(engine_->prepare_mutex());
    const Graph& g = engine_->graph();
    const EngineOptions& o = engine_->options();
    auto t0 = std::chrono::steady_clock::now();
    const ChoiceTimingTally timed_before = choice_timing_tally();
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
        k.groups = a.groups, k.fused_bias_relu = n.fused_relu, k.residual = n.inputs.size() > 1;
        k.timed_search = o.conv_search == "timed";
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
    // The classifier's and the gates' timed choices launch our kernels (dependent launches where on), then
    // the eager pass and the capture.
    auto t_convs = std::chrono::steady_clock::now();
    auto choose_and_capture = [&] {
        state->linear_rows.assign(g.nodes.size(), 0);
        state->gate_form.assign(g.nodes.size(), GateForm::block_per_image);
        state->gate_gemm.clear();
        state->gate_gemm.resize(g.nodes.size());
        plan_pools_in_convs(batch, *state);
        for (size_t i = 0; i < g.nodes.size(); i++) {
            if (g.nodes[i].op == OpType::linear) choose_linear(i, batch, *state);
            if (g.nodes[i].op != OpType::split_attention) continue;
            choose_gate(i, batch, *state);
            // The matmuls pool in one chunk of their own: the convolution goes back to its timed tiling.
            const int conv = state->pool_in_conv[i];
            if (conv >= 0 && state->gate_form[i] == GateForm::matmuls) {
                state->convs[(size_t)conv]->pool_off(env_);
                state->pool_in_conv[i] = -1;
            }
        }
        plan_combines_in_convs(batch, *state);
        plan_stem_direct(batch, *state);
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        t_convs = std::chrono::steady_clock::now();
        run_and_capture(batch, *state);
    };
    try {
        choose_and_capture();
    } catch (const KernelLaunchError& e) {
        // A launch or capture refused while programmatic dependent launch is on: warn and go on without
        // it, for this batch size and the ones after (the choices made again with ordinary launches). Any
        // other error is the node's, and propagates. So does a device fault, which an asynchronous kernel
        // error shows as at the next launch: it is no refusal, and nothing can be chosen again on a dead
        // context.
        if (!launch_.dependent_launch) throw;
        throw_if_device_faulted(stream_, "batch " + std::to_string(batch) + " (first seen by: " + e.what() + ")");
        std::fprintf(stderr, "warning: %s; going on without programmatic dependent launch (as --no-pdl)\n",
                     e.what());
        cudaGetLastError();
        cudaStreamSynchronize(stream_);  // a sticky fault shows in the retry, with the first message
        launch_.dependent_launch = false;
        try {
            choose_and_capture();
        } catch (const Error& again) {
            throw Error(std::string(e.what()) + "; and with ordinary launches: " + again.what());
        }
    }
    if (o.verbose) {
        auto t_end = std::chrono::steady_clock::now();
        std::string ways;
        for (int c = 0; c < kConvImpls; c++)
            ways += std::string(c ? ", " : "") + conv_impl_name((ConvImpl)c) + " " + std::to_string(state->by_impl[c]);
        // Nodes run inside a convolution: split attention's pool, its combine, and average pools.
        long pools_in = 0, combines_in = 0, avg_pools_in = 0;
        for (size_t i = 0; i < engine_->graph().nodes.size(); i++) {
            pools_in += state->pool_in_conv[i] >= 0;
            const bool attn = engine_->graph().nodes[i].op == OpType::split_attention;
            (attn ? combines_in : avg_pools_in) += state->folded_in_conv[i] >= 0;
        }
        std::fprintf(stderr, "cuda: batch %d prepared: convolutions on %s (%d of the cuBLASLt ones split-K; %d legacy "
                     "searches answered by the cache; split attention's pool in %ld implicit GEMMs' epilogue, its "
                     "combine in %ld 1x1 convolutions; %ld average pools in 1x1 convolutions); programmatic "
                     "dependent launch %s%s%s\n", batch, ways.c_str(), state->split_k, state->legacy_cached, pools_in,
                     combines_in, avg_pools_in, launch_.dependent_launch ? "on" : "off",
                     state->stem ? "; the first convolution reads the NCHW input" : "",
                     state->captured.exec ? "; CUDA graph captured" : "");
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
        const ChoiceTimingTally timed = choice_timing_tally().since(timed_before);
        std::fprintf(stderr, "cuda: batch %d: choice timings: %ld as graph replays, %ld long calls back to back, %ld "
                     "back to back as RESNEST_CHOICE_TIMING=launches asks, %ld back to back because the calls could "
                     "not be captured\n", batch, timed.replayed, timed.long_calls, timed.launches_asked,
                     timed.not_captured);
    }
    return *(batches_[batch] = std::move(state));
}

// Which gate split-attention node i runs at this batch size: the fastest over a few graph replays (pool
// and gate, the pool planned in chunks, or in one for the matmuls) of one block per image, the rows form
// (where its shared memory fits) and the matmuls (cardinality 1). The rows form and one block per image
// within 2 % of each other: the gate lab's rule (split_attention_gate_rows_preferred: below half a wave
// of images, for fc weights of 256 KiB or more).
// The choice is cached per gate shape, batch size and pool kernel (timed with it; a later start times nothing).
void CudaContext::choose_gate(size_t i, int batch, BatchState& state) {
    const Node& n = engine_->graph().nodes[i];
    const SplitAttentionGateShape s = gate_shape(i, batch, GateForm::block_per_image, state);
    const bool rows_fit = split_attention_gate_rows_smem_bytes(s) <= 48 * 1024;
    const DeviceNodeWeights& w = engine_->weights(i);
    auto gemm = std::make_unique<GateGemmLaunch>();
    std::string why;
    bool restored = false;
    // The gate as matmuls, where it builds and one launch of it runs: optional, like a convolution's ways
    // (a library error skips it with a warning, from the cache too). `algorithms`: both matmuls' algorithms
    // as a previous start cached them (GateGemmLaunch::algorithms_hex), taken where cuBLASLt accepts them,
    // else the heuristics' first.
    auto build_gemm = [&](const std::string& algorithms) {
        try {
            if (!gemm->describe(gate_shape(i, batch, GateForm::matmuls, state),
                                {gap_, w.fc1_w, w.fc1_b, w.fc2_w, w.fc2_b, hidden_, attn_}, n.name, &why))
                return false;
            restored = !algorithms.empty() && gemm->restore_algorithms(lt_, algorithms);
            if (!restored && !gemm->choose_algorithms(lt_, &why)) return false;
            gemm->launch(lt_, launch_);  // throws where cuBLASLt refuses the algorithm it offered
            CUDA_CHECK(cudaStreamSynchronize(stream_));
            return true;
        } catch (const Error& e) {
            // A refused dependent launch (the radix softmax after the matmuls): prepare() goes on without them.
            throw_if_device_faulted(stream_, "node '" + n.name + "'");
            if (dependent_launch_to_blame(e, n.name, [&] { gemm->launch(lt_, launch_); })) throw;
            std::fprintf(stderr, "resnest: warning: %s: the gate as matmuls skipped: %s\n", n.name.c_str(), e.what());
            why = "skipped";
            return false;
        }
    };
    const SplitAttentionAttrs& a = n.attn;
    const Shape& u = engine_->graph().tensors[n.inputs[0]].shape;  // (R*C or C, H, W): only H, W are read
    const std::string key = op_algo_key(
        key_parts(batch), "split-attention gate r" + std::to_string(a.radix) + " k" + std::to_string(a.cardinality) +
                              " c" + std::to_string(a.channels) + " i" + std::to_string(a.inter_channels) + " hw" +
                              std::to_string(u[1] * u[2]) + " forms 0" + (rows_fit ? " 1" : "") + " 2 cublasLt " +
                              std::to_string(engine_->device().cublas_version) + " lt " +
                              std::to_string(engine_->device().cublaslt_version) +
                              (engine_->pool_row_lanes(n) ? " pool row-lanes" : "") +
                              (n.inputs.size() > 1 ? " splits apart" : "") +
                              (state.pool_in_conv[i] >= 0 ? " pool in conv" : ""));
    std::string cached_algorithms;
    const int cached = cached_choice(key, 3, &cached_algorithms);
    if (cached >= 0 && (cached != (int)GateForm::rows || rows_fit) &&
        (cached != (int)GateForm::matmuls || build_gemm(cached_algorithms))) {
        state.gate_form[i] = (GateForm)cached;
        const char* algorithms = "";
        if (cached == (int)GateForm::matmuls) {
            state.gate_gemm[i] = std::move(gemm);
            algorithms = restored ? "; matmul algorithms restored" : "; matmul algorithms from the heuristics";
            // An entry written before the algorithms were cached, or whose algorithms cuBLASLt no longer
            // takes: rewritten with the heuristics' (read back by the next start), unless they are the same
            // ones (the file would grow by a line at every start).
            const std::string found = state.gate_gemm[i]->algorithms_hex();
            if (!restored && found != cached_algorithms) engine_->cache().insert(key, {cached, 0, 0, found});
        }
        if (engine_->options().verbose)
            std::fprintf(stderr, "cuda: %s gate at batch %d: %s (cached%s)\n", n.name.c_str(), batch,
                         gate_form_name(state.gate_form[i]), algorithms);
        return;
    }
    // The pool too (the matmuls need it in one chunk), unless a convolution's epilogue pools for the others.
    auto time_form = [&](GateForm f) {
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
    if (build_gemm("")) {
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
    const std::string algorithms = best == GateForm::matmuls ? state.gate_gemm[i]->algorithms_hex() : "";
    engine_->cache().insert(key, {(int)best, 0, 0, algorithms});
    if (engine_->options().verbose)
        std::fprintf(stderr, "cuda: %s gate at batch %d, %s: %s\n", n.name.c_str(), batch, report.c_str(),
                     gate_form_name(best));
}

// How linear node i runs at this batch size: cuBLAS's GEMM + the bias kernel, or the warp-per-output-row
// kernel (linear_rows.cuh), whichever is faster over a few launches (cuBLAS on a tie).
void CudaContext::choose_linear(size_t i, int batch, BatchState& state) {
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

// The choice a previous start cached under `key`, when it is one of 0..count-1 (and its serialized algorithm
// in *opaque, where given); else -1.
int CudaContext::cached_choice(const std::string& key, int count, std::string* opaque) const {
    ConvAlgoChoice c;
    if (!engine_->cache().lookup(key, &c) || c.algo < 0 || c.algo >= count) return -1;
    if (opaque) *opaque = c.opaque;
    return c.algo;
}

// The algorithm cache key's device, library, precision and batch fields.
ConvAlgoKeyParts CudaContext::key_parts(int batch) const {
    const DeviceInfo& dev = engine_->device();
    ConvAlgoKeyParts k;
    k.device = dev.name, k.cc_major = dev.cc_major, k.cc_minor = dev.cc_minor;
    k.cudnn_version = dev.cudnn_version, k.precision = precision_name(engine_->options().precision);
    k.batch = batch;
    return k;
}

// One eager pass (lazy library set-up happens here, outside the capture), then the CUDA graph capture.
// Another thread that synchronizes the device meanwhile (destroying a context: cudaFree, cublasDestroy)
// can invalidate the capture; it is then taken again. A call of the pass that the capture refuses
// invalidates it too, and reads the same from here: so after kCaptureAttempts with programmatic dependent
// launch on, this batch size is captured once with ordinary launches (a refusal of dependent launches
// inside a capture ends there). Where that is invalidated too, this batch size runs node by node (the same
// results; dependent launches kept) until a capture at one of its next runs succeeds, those retries taken
// with and without dependent launches in turn (retry_capture); as after kCaptureAttempts with them off.
// A graph that does not end or instantiate (GraphCaptureError) goes the same two ways at once.
// With the weights' L2 window (RESNEST_L2_WEIGHTS, cuda_context_l2.cpp) on, cached or to be timed, the graph
// gets it before it is instantiated, or the two are timed once it is captured.
void CudaContext::run_and_capture(int batch, BatchState& state) {
    forward(batch, state, nullptr);
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (!engine_->options().cuda_graph || debug_sync_) return;
    const int l2_decided = l2_window_decision(batch);
    state.l2_window = l2_decided == 1;
    capture_with_retries(batch, state);
    if (l2_decided < 0 && state.captured.exec) {
        try {  // an optional hint: a failure other than a device fault leaves the graph without it
            choose_l2_window(batch, state);
        } catch (const Error& e) {
            throw_if_device_faulted(stream_, "the weights' L2 window at batch " + std::to_string(batch));
            std::fprintf(stderr, "resnest: warning: timing the weights' L2 window failed (%s); batch %d runs "
                         "without it\n", e.what(), batch);
            // The windowed rounds' persisting lines, wherever the timing stopped (a hint: a failure is told).
            const cudaError_t reset = cudaCtxResetPersistingL2Cache();
            if (reset != cudaSuccess) {
                cudaGetLastError();
                std::fprintf(stderr, "resnest: warning: releasing the persisting L2 lines failed (%s)\n",
                             cudaGetErrorString(reset));
            }
        }
    }
}

void CudaContext::capture_with_retries(int batch, BatchState& state) {
    constexpr int kCaptureAttempts = 3;
    auto run_eagerly = [&](const GraphCaptureError& e) {
        std::fprintf(stderr, "warning: %s; batch %d runs without a CUDA graph (as --no-graph)\n", e.what(), batch);
    };
    for (int attempt = 1; attempt <= kCaptureAttempts; attempt++) {
        // Another thread's synchronization (a context being torn down) lasts a while: wait 4, then 16 ms
        // before taking the capture again, so that the three attempts do not all meet the same one.
        if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(1 << (2 * (attempt - 1))));
        try {
            if (capture_forward(batch, state)) return;
        } catch (const GraphCaptureError& e) {
            // prepare() tries again without dependent launches, unless a library call refused the capture.
            if (launch_.dependent_launch && !dynamic_cast<const CallRefusedCaptureError*>(&e)) throw;
            return run_eagerly(e);
        }
    }
    if (launch_.dependent_launch) {
        // Not necessarily programmatic dependent launch's fault (another thread's teardown reads the same):
        // this batch size alone is captured once more with ordinary launches; the others keep them. Where that
        // is invalidated too, the later runs try again, below, with and without them in turn (turning them off
        // for the whole context would redo every choice, for what may be another thread's teardown).
        bool captured = false;
        // After a longer wait (64 ms) than the attempts': a teardown of several contexts (their frees and
        // library handles) can outlast 20 ms, and blaming dependent launch for it would redo every choice.
        std::this_thread::sleep_for(std::chrono::milliseconds(64));
        try {
            OrdinaryLaunches ordinary(launch_.dependent_launch);
            captured = capture_forward(batch, state);
        } catch (const GraphCaptureError& e) {
            // With ordinary launches any capture error is this batch size's alone (not dependent launch's,
            // which prepare() would turn off for all): it runs eagerly, as in the attempts above.
            return run_eagerly(e);
        }
        if (captured) {
            std::fprintf(stderr, "warning: %s: the CUDA graph capture at batch %d was invalidated %d times with "
                         "programmatic dependent launch on; this batch size is captured with ordinary launches\n",
                         engine_->graph().source.c_str(), batch, kCaptureAttempts);
            return;
        }
    }
    // Another thread may still have been tearing down: the next few runs try again (with dependent launch on,
    // alternately without it, from the second).
    state.capture_retries = kLaterCaptureRetries;
    state.retry_ordinary = false;
    std::fprintf(stderr, "warning: %s: the CUDA graph capture at batch %d was invalidated %d times (another thread "
                 "synchronizing the device, or a call that cannot be captured); this batch size runs without a "
                 "CUDA graph until a capture at one of its next %d runs succeeds\n",
                 engine_->graph().source.c_str(), batch, kCaptureAttempts, kLaterCaptureRetries);
}

// At a run of a batch size whose capture was given up: one more capture (nothing kept when it is invalidated
// again). With dependent launch on, the retries alternate: with it, then with ordinary launches, and so on
// (a capture that dependent launches make fail reads as invalidated, as another thread's teardown does, so
// either may have been the cause). A capture that fails otherwise ends the retries, with a warning, unless
// it was taken with dependent launches and a retry without them is left.
void CudaContext::retry_capture(int batch, BatchState& state) {
    state.capture_retries--;
    const bool ordinary = launch_.dependent_launch && state.retry_ordinary;
    state.retry_ordinary = !state.retry_ordinary;
    try {
        std::optional<OrdinaryLaunches> without;
        if (ordinary) without.emplace(launch_.dependent_launch);
        capture_forward(batch, state);
    } catch (const Error& e) {
        cudaGetLastError();
        if (launch_.dependent_launch && !ordinary && state.capture_retries > 0) return;  // the next goes without
        state.capture_retries = 0;
        std::fprintf(stderr, "warning: %s; batch %d runs without a CUDA graph\n", e.what(), batch);
    }
}

// Captures the forward pass into state.captured. False when the capture was invalidated
// (nothing kept; see capture_stream); a capture that fails otherwise throws, nothing kept: GraphCaptureError
// when the graph does not end or instantiate, else what capture_stream throws.
bool CudaContext::capture_forward(int batch, BatchState& state) {
    state.captured.reset();
    cudaError_t e = capture_stream(&state.captured.graph, [&] { forward(batch, state, nullptr); });
    if (e == cudaErrorStreamCaptureInvalidated) return false;
    // On a copy: a window failing part way would otherwise stay on the kernel nodes set before it, and a
    // copy that does not instantiate leaves the graph without it to run.
    if (e == cudaSuccess && state.l2_window) state.l2_window = instantiate_with_l2_window(&state.captured, batch);
    if (e == cudaSuccess && !state.captured.exec) e = cudaGraphInstantiate(&state.captured.exec, state.captured.graph, 0);
    if (e != cudaSuccess) {
        cudaGetLastError();
        state.captured.reset();
        throw GraphCaptureError(engine_->graph().source + ": the CUDA graph capture of the forward pass failed: " +
                                cudaGetErrorString(e) + " (--no-graph runs without it)");
    }
    return true;
}

// Captures what `enqueue` launches on the stream into *graph (left null unless the capture succeeded) and
// returns how the capture ended: cudaErrorStreamCaptureInvalidated when it was invalidated, also where
// that made a call inside `enqueue` throw (invalidated from outside, or by a call the capture refused:
// the two read the same). Any other exception from `enqueue` is thrown once the capture is ended: a device
// fault as the fault, an Error as rethrow_capture_error classifies it (the eager pass before ran the same
// calls), anything else as it is.
cudaError_t CudaContext::capture_stream(cudaGraph_t* graph, const std::function<void()>& enqueue) {
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
        throw_if_device_faulted(stream_, "the CUDA graph capture of " + engine_->graph().source);
        rethrow_capture_error(launch_.dependent_launch, engine_->graph().source);  // non-Error exceptions pass
    }
    cudaError_t e = cudaStreamEndCapture(stream_, graph);
    if (e != cudaSuccess) {
        if (*graph) cudaGraphDestroy(*graph), *graph = nullptr;
        cudaGetLastError();
    }
    return e;
}

}  // namespace resnest
