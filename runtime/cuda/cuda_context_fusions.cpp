// cuda_context_fusions.cpp: the steps a CUDA context folds into the convolutions beside them at a batch size
// (cuda_context.h), where the pair qualifies (fusion_pairs.h) and the kernels run:
// - the pool into the epilogue of the implicit-GEMM convolution that writes U (ConvNode::pool_on);
// - the weighted sum (with the avd pool after it, where there is one) into the 1x1 convolution that reads it
//   (kernels/split_attention_combine_conv1x1.cuh);
// and an average pool (the downsample path's) into the 1x1 convolution that reads it, by the same kernel;
// and the input's layout conversion into the first convolution (kernels/conv_stem_direct_nchw.cuh).
// All are our own kernels, taken only where RESNEST_IMPLICIT_GEMM is auto (where they win) or on.
#include <cstdio>
#include <functional>
#include <string>

#include "conv_stem_direct_nchw.cuh"
#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "fusion_pairs.h"
#include "split_attention_combine_conv1x1.cuh"

namespace resnest {

// Which split-attention nodes have their pool in the epilogue of the convolution that writes their input
// U: where that convolution runs as the implicit GEMM (chosen by time, as if it did not pool) and its
// tiling allows (ConvNode::pool_on). The gate then reads the convolution's chunk sums (choose_gate times it
// so, and puts the matmuls, which pool on their own, back).
void CudaContext::plan_pools_in_convs(int batch, BatchState& state) {
    const Graph& g = engine_->graph();
    for (auto& conv : state.convs)
        if (conv) conv->pool_off(env_);  // a second call (prepare's retry without dependent launch)
    state.pool_in_conv.assign(g.nodes.size(), -1);
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const int j = conv_writing_split_attention_input(g, (int)i);
        if (j < 0 || !state.convs[(size_t)j] || state.convs[(size_t)j]->pool_chunks() > 0) continue;
        if (!state.convs[(size_t)j]->pool_on(gap_, engine_->gap_floats(), g.nodes[i].attn.radix, env_)) continue;
        state.pool_in_conv[i] = j;
        if (engine_->options().verbose)
            std::fprintf(stderr, "cuda: %s at batch %d: pool in %s's epilogue (%d chunks an image)\n",
                         g.nodes[i].name.c_str(), batch, g.nodes[(size_t)j].name.c_str(),
                         state.convs[(size_t)j]->pool_chunks());
    }
}

bool CudaContext::dependent_launch_to_blame(const Error& e, const std::string& node,
                                            const std::function<void()>& enqueue) {
    if (!launch_.dependent_launch || !dynamic_cast<const KernelLaunchError*>(&e)) return false;
    OrdinaryLaunches ordinary(launch_.dependent_launch);
    try {
        enqueue();
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        return true;
    } catch (const Error&) {
        // The refused launch ran nothing: these are the candidate's first kernels, and a fault of theirs is
        // sticky (the caller's own check came before them).
        throw_if_device_faulted(stream_, "node '" + node + "'");
        cudaGetLastError();
        return false;
    }
}

// Whether a fold is taken: with RESNEST_IMPLICIT_GEMM=on always; with auto the decision cached under `key`,
// else `folded` timed against `apart` over a few launches each and the decision cached. 1: folded, 0: apart,
// -1: the timing failed with a library error (a warning names `node` and `what`; a device fault, or a
// dependent launch refused where ordinary launches run, throws). *how says which.
int CudaContext::decide_fold(const std::string& key, const std::function<void()>& apart,
                             const std::function<void()>& folded, const std::string& node, const std::string& what,
                             std::string* how) {
    if (engine_->implicit_gemm_mode() == "on") {
        *how = "forced on (RESNEST_IMPLICIT_GEMM=on)";
        return 1;
    }
    const int cached = cached_choice(key, 2);
    if (cached >= 0) {
        *how = "cached";
        return cached;
    }
    try {
        const float apart_ms = mean_launch_ms(stream_, 5, apart, node);
        const float folded_ms = mean_launch_ms(stream_, 5, folded, node);
        char line[96];
        std::snprintf(line, sizeof(line), "%.4f ms against %.4f ms apart", folded_ms, apart_ms);
        *how = line;
        const int fold = folded_ms < apart_ms ? 1 : 0;
        engine_->cache().insert(key, {fold, 0, 0, ""});
        return fold;
    } catch (const Error& e) {  // optional, like a convolution's ways: skipped with a warning
        throw_if_device_faulted(stream_, "node '" + node + "'");
        if (dependent_launch_to_blame(e, node, [&] { apart(), folded(); })) throw;
        std::fprintf(stderr, "resnest: warning: %s: %s skipped: %s\n", node.c_str(), what.c_str(), e.what());
        return -1;
    }
}

// The fold of node i (split attention's weighted sum, with its avd pool if fused; or an average pool) into
// 1x1 convolution j: its problem and buffers, and `op`, the part of its cache key that says what it folds.
std::unique_ptr<CombineConvLaunch> CudaContext::conv1x1_fold(size_t i, size_t j, int batch, std::string* op) {
    const Graph& g = engine_->graph();
    const Node& n = g.nodes[i];
    const Node& conv = g.nodes[j];
    const Shape& u = g.tensors[n.inputs[0]].shape;      // (R*C, H, W)
    const Shape& out = g.tensors[n.output].shape;       // (C, OH, OW)
    const bool attention = n.op == OpType::split_attention;
    const ConvBuffers b = conv_buffers(j, false);
    auto c = std::make_unique<CombineConvLaunch>();
    const int radix = attention ? n.attn.radix : 1;
    c->s = {batch, (int)(out[1] * out[2]), radix, (int)(u[0] / radix), conv.conv.out_channels};
    c->u = (const __half*)tensor(n.inputs[0]), c->attn = attention ? attn_ : nullptr;
    c->w = (const __half*)b.w, c->bias = b.bias_f, c->z = (const __half*)b.z, c->y = (__half*)b.y;
    c->relu = conv.fused_relu;
    *op = attention ? "split-attention combine in conv1x1 r" + std::to_string(radix) : "average pool in conv1x1";
    if (!attention || n.attn.fused_avg_pool) {  // U's grid in, the pool's out (the shape refuses non-square)
        const Pool2dAttrs& pa = attention ? n.attn.pool : n.pool;
        c->s.pool = {pa.kernel_h, pa.stride_h, pa.pad_h, pa.count_include_pad, (int)u[1], (int)u[2], (int)out[2]};
        if (pa.kernel_w != pa.kernel_h || pa.stride_w != pa.stride_h || pa.pad_w != pa.pad_h) c->s.pool.k = -1;
        *op += " avg_pool k" + std::to_string(pa.kernel_h) + "s" + std::to_string(pa.stride_h) + "p" +
               std::to_string(pa.pad_h) + (pa.count_include_pad ? " include_pad" : "") + " in" +
               std::to_string(u[1]) + "x" + std::to_string(u[2]);
    }
    *op += " c" + std::to_string(c->s.c) + " cout" + std::to_string(c->s.cout) + " hw" + std::to_string(c->s.hw) +
           (c->z ? " residual" : "") + (c->relu ? " relu" : "");
    return c;
}

// Which split-attention nodes have their weighted sum (and average pools their pool) formed by the 1x1
// convolution after them: with RESNEST_IMPLICIT_GEMM=on wherever the kernel runs; with auto where it beats
// the node's kernel and the convolution's chosen way together over a few launches (the decision cached per
// shape, batch and that way, so a later start times nothing). Runs after the gates are chosen (the timing
// reads their output).
void CudaContext::plan_combines_in_convs(int batch, BatchState& state) {
    const Graph& g = engine_->graph();
    state.folded_in_conv.assign(g.nodes.size(), -1);
    state.combine_conv.clear();
    state.combine_conv.resize(g.nodes.size());
    const std::string& mode = engine_->implicit_gemm_mode();
    if (mode == "off" || engine_->options().precision != Precision::fp16) return;
    const bool verbose = engine_->options().verbose;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const Node& n = g.nodes[i];
        const int j = conv1x1_folding(g, (int)i);
        if (j < 0 || !state.convs[(size_t)j]) continue;
        const Node& conv = g.nodes[(size_t)j];
        // Node i's input must still hold what it read when node j runs (the engine's plan keeps it: fusion_pairs.h).
        if (!tensor_kept_between(g, engine_->plan(), n.inputs[0], (int)i, j)) {
            if (verbose) std::fprintf(stderr, "cuda: %s: the fold into %s: its input is written over before it\n",
                                      n.name.c_str(), conv.name.c_str());
            continue;
        }
        std::string op;
        std::unique_ptr<CombineConvLaunch> c = conv1x1_fold(i, (size_t)j, batch, &op);
        const std::string refusal = split_attention_combine_conv1x1_refusal(c->s, c->u, c->attn, c->w, c->z, c->y);
        if (!refusal.empty()) {
            if (verbose) std::fprintf(stderr, "cuda: %s: the fold into %s: %s\n", n.name.c_str(), conv.name.c_str(),
                                      refusal.c_str());
            continue;
        }
        c->splits = splits_within(
            split_attention_combine_conv1x1_splits(c->s, engine_->device().multiprocessors), c->s.tiles(),
            workspace_bytes_, [&](int splits) { return split_attention_combine_conv1x1_partial_bytes(c->s, splits); },
            env_);
        std::string how;
        const int fold = decide_fold(
            op_algo_key(key_parts(batch), op + " way " + std::to_string((int)state.convs[(size_t)j]->impl())),
            [&] {
                if (n.op == OpType::split_attention)
                    combine_stored(i, batch, state);
                else
                    run_node_stored(i, batch, state);
                state.convs[(size_t)j]->launch(env_);
            },
            [&] { launch_combine_conv(*c); }, n.name, "the fold into " + conv.name, &how);
        if (fold < 0) continue;
        if (verbose)
            std::fprintf(stderr, "cuda: %s at batch %d: %s %s %s (%s)\n", n.name.c_str(), batch,
                         n.op == OpType::split_attention ? "combine" : "pool", fold ? "in" : "apart from",
                         conv.name.c_str(), how.c_str());
        if (!fold) continue;
        state.folded_in_conv[i] = j;
        state.combine_conv[(size_t)j] = std::move(c);
    }
}

// Whether the first convolution reads the NCHW float input itself (the layout conversion then does not
// run): where the graph's input has that one reader, a convolution of one group, square window and no
// dilation or residual that the kernel takes; with RESNEST_IMPLICIT_GEMM=on always, with auto where it beats
// the conversion and the convolution's chosen way together (cached like the folds above). Any precision.
void CudaContext::plan_stem_direct(int batch, BatchState& state) {
    state.stem.reset();
    const std::string& mode = engine_->implicit_gemm_mode();
    if (mode == "off") return;
    const Graph& g = engine_->graph();
    const TensorInfo& in = g.tensors[(size_t)g.input];
    if (in.consumers.size() != 1) return;
    const size_t j = (size_t)in.consumers[0];
    const Node& n = g.nodes[j];
    const Conv2dAttrs& a = n.conv;
    if (n.op != OpType::conv2d || n.inputs.size() != 1 || !state.convs[j] || a.groups != 1 || a.dilation_h != 1 ||
        a.dilation_w != 1 || a.kernel_h != a.kernel_w || a.stride_h != a.stride_w || a.pad_h != a.pad_w)
        return;
    const Shape& out = g.tensors[(size_t)n.output].shape;  // (Cout, OH, OW)
    const ConvBuffers b = conv_buffers(j, false);
    auto c = std::make_unique<StemConvLaunch>();
    c->node = j;
    c->s = {batch, (int)g.input_shape[0], (int)g.input_shape[1], (int)g.input_shape[2], (int)in.shape[0],
            a.out_channels, a.kernel_h, a.stride_h, a.pad_h, (int)out[1], (int)out[2]};
    c->relu = n.fused_relu, c->w = b.w, c->bias = a.bias ? b.bias_f : nullptr, c->y = b.y;
    const bool verbose = engine_->options().verbose;
    const std::string refusal = conv_stem_direct_nchw_refusal(c->s, c->y);
    if (!refusal.empty()) {
        if (verbose) std::fprintf(stderr, "cuda: %s: not from the NCHW input: %s\n", n.name.c_str(), refusal.c_str());
        return;
    }
    const StemConvShape& s = c->s;
    const std::string op = "stem direct from nchw c" + std::to_string(s.c) + " cp" + std::to_string(s.cin_padded) +
                           " " + std::to_string(s.h) + "x" + std::to_string(s.w) + " cout" + std::to_string(s.cout) +
                           " k" + std::to_string(s.k) + "s" + std::to_string(s.stride) + "p" + std::to_string(s.pad) +
                           (c->relu ? " relu" : "") + " way " + std::to_string((int)state.convs[j]->impl());
    std::string how;
    const int direct = decide_fold(
        op_algo_key(key_parts(batch), op),
        [&] {
            input_to_nhwc(batch);
            state.convs[j]->launch(env_);
        },
        [&] { launch_stem(*c); }, n.name, "reading the NCHW input directly", &how);
    if (direct < 0) return;
    if (verbose)
        std::fprintf(stderr, "cuda: %s at batch %d: %s the NCHW input (%s)\n", n.name.c_str(), batch,
                     direct ? "directly from" : "after converting", how.c_str());
    if (direct) state.stem = std::move(c);
}

}  // namespace resnest
