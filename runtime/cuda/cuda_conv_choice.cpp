// cuda_conv_choice.cpp: the timed choice among the ways to run one convolution (see cuda_conv_choice.h).
#include "cuda/cuda_conv_choice.h"

#include <cstdio>
#include <vector>

#include "conv3x3_implicit_gemm.cuh"
#include "conv_as_gemm.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.h"
#include "split_attention_combine_conv1x1.cuh"

namespace resnest {

const char* conv_impl_name(ConvImpl impl) {
    switch (impl) {
        case ConvImpl::cudnn: return "cuDNN";
        case ConvImpl::cudnn_dense: return "cuDNN dense";
        case ConvImpl::cublaslt: return "cuBLASLt";
        case ConvImpl::cudnn_graph: return "cuDNN graph";
        case ConvImpl::cudnn_graph_per_group: return "cuDNN graph per group";
        case ConvImpl::im2col_cublaslt: return "im2col + cuBLASLt";
        case ConvImpl::im2col_cublaslt_per_group: return "im2col + cuBLASLt per group";
        case ConvImpl::implicit_gemm: return "implicit GEMM";
        case ConvImpl::conv1x1_wmma: return "wmma 1x1";
    }
    return "?";
}

size_t fastest_conv_way(const std::vector<ConvImpl>& impls, const std::vector<float>& ms) {
    size_t best = 0;
    float best_score = 0.0f;
    for (size_t i = 0; i < impls.size() && i < ms.size(); i++) {
        const bool graph = impls[i] == ConvImpl::cudnn_graph || impls[i] == ConvImpl::cudnn_graph_per_group;
        const float score = ms[i] * (graph ? 1.0f + kGraphRebuildMargin : 1.0f);
        if (i == 0 || score < best_score) best = i, best_score = score;
    }
    return best;
}

bool ConvNode::build(ConvImpl impl, const ConvProblem& p, const ConvAlgoKeyParts& key, const ConvBuffers& grouped,
                     const ConvBuffers* dense, const ConvChoiceEnv& env, const std::string& node, std::string* why) {
    bool from_cache = false;
    problem_ = p;
    switch (impl) {
        case ConvImpl::cudnn:
        case ConvImpl::cudnn_dense: {
            const bool is_dense = impl == ConvImpl::cudnn_dense;
            if (is_dense && !dense) return false;
            ConvProblem q = p;
            ConvAlgoKeyParts k = key;
            if (is_dense) q.attrs.groups = 1, k.groups = 1;
            auto conv = std::make_unique<ConvLaunch>();
            conv->describe(q, is_dense ? node + " (dense)" : node);
            conv->set_timed_search(env.timed_search);
            from_cache = conv->choose_algorithm(env.cudnn, is_dense ? *dense : grouped, *env.cache, conv_algo_key(k));
            if (!is_dense) legacy_from_cache_ = from_cache;
            legacy_ = std::move(conv);
            buffers_ = is_dense ? *dense : grouped;
            return true;
        }
        case ConvImpl::cublaslt:
        case ConvImpl::im2col_cublaslt:
        case ConvImpl::im2col_cublaslt_per_group: {
            const bool per_group = impl == ConvImpl::im2col_cublaslt_per_group;
            const bool im2col = impl != ConvImpl::cublaslt;
            if (conv_runs_as_gemm(p.attrs) == im2col) return false;  // 1x1 directly, every other over im2col
            if (per_group && p.attrs.groups < 2) return false;
            if (im2col && !per_group && p.attrs.groups > 1 && !dense) return false;
            // The dense filter for a grouped convolution over the dense-order matrix; else the filter as stored.
            const ConvBuffers& b = im2col && !per_group && p.attrs.groups > 1 ? *dense : grouped;
            auto gemm = std::make_unique<GemmConvLaunch>();
            if (!gemm->describe(p, b, node, why, im2col, per_group)) return false;
            gemm->set_prefetch_filter(env.prefetch_weights);
            // The heuristic list, whose rank the cache keeps, depends on the pointers' alignment too.
            std::string k = conv_algo_key(key) +
                            (per_group ? "|im2col cublasLt per group " : im2col ? "|im2col cublasLt " : "|cublasLt ") +
                            std::to_string(env.cublas_version) + " lt " + std::to_string(env.cublaslt_version) +
                            " align " + std::to_string(gemm->alignment());
            if (!gemm->choose_algorithm(env.lt, b, env.stream, *env.cache, k, &from_cache)) {
                *why = "no cuBLASLt algorithm runs";
                return false;
            }
            gemm_ = std::move(gemm);
            buffers_ = b;
            return true;
        }
        case ConvImpl::implicit_gemm: {
            const Conv2dAttrs& a = p.attrs;
            if (p.precision != Precision::fp16 || !conv_window_is_3x3_same(a) || p.has_z)
                return false;  // not its problem (fp16 3x3, stride 1, padding 1, no residual): nothing to report
            const ImplicitConv3x3Shape s{p.batch, p.in_h, p.in_w, a.in_channels, a.out_channels, a.groups};
            *why = conv3x3_implicit_gemm_refusal(s, grouped.x, grouped.w, grouped.y);
            if (!why->empty()) return false;
            buffers_ = grouped;
            set_implicit(s, env);
            implicit_relu_ = p.relu;
            return true;
        }
        case ConvImpl::conv1x1_wmma: {
            if (p.precision != Precision::fp16 || !conv_runs_as_gemm(p.attrs))
                return false;  // not its problem (fp16 1x1, stride 1, no padding, one group): nothing to report
            const CombineConv1x1Shape s{p.batch, p.in_h * p.in_w, 1, p.attrs.in_channels, p.attrs.out_channels};
            buffers_ = grouped;
            if (!p.has_z) buffers_.z = nullptr;
            if (!p.attrs.bias) buffers_.bias_f = nullptr;
            *why = split_attention_combine_conv1x1_refusal(s, buffers_.x, nullptr, buffers_.w, buffers_.z, buffers_.y);
            if (!why->empty()) return false;
            conv1x1_ = s;
            conv1x1_relu_ = p.relu;
            conv1x1_splits_ = splits_within(
                split_attention_combine_conv1x1_splits(s, env.multiprocessors), s.tiles(), buffers_.workspace_bytes,
                [&](int splits) { return split_attention_combine_conv1x1_partial_bytes(s, splits); }, env);
            return true;
        }
        case ConvImpl::cudnn_graph:
        case ConvImpl::cudnn_graph_per_group: {
            const bool per_group = impl == ConvImpl::cudnn_graph_per_group;
            if (per_group && p.attrs.groups < 2) return false;
            auto graph = std::make_unique<GraphConvLaunch>();
            if (!graph->describe(p, env.cudnn, node, why, per_group)) return false;
            const std::string k = conv_algo_key(key) + (per_group ? "|cudnn graph per group" : "|cudnn graph");
            if (!graph->choose_plan(env.cudnn, grouped, *env.cache, k, &from_cache)) {
                *why = "no cuDNN engine for the fused graph (precompiled, deterministic) runs";
                return false;
            }
            graph_ = std::move(graph);
            buffers_ = grouped;
            return true;
        }
    }
    return false;
}

const void* ConvNode::library_filter(size_t* bytes) const {
    *bytes = 0;
    if (impl_ == ConvImpl::implicit_gemm || impl_ == ConvImpl::conv1x1_wmma || !buffers_.w) return nullptr;
    const Conv2dAttrs& a = problem_.attrs;
    const bool dense = a.groups > 1 && (impl_ == ConvImpl::cudnn_dense || impl_ == ConvImpl::im2col_cublaslt);
    *bytes = (size_t)conv_filter_elements(a, dense) * (size_t)storage_bytes(problem_.precision);
    return buffers_.w;
}

NodeWay ConvNode::way() const {
    NodeWay w;
    const bool grouped = problem_.attrs.groups > 1;
    switch (impl_) {
        case ConvImpl::cudnn:
        case ConvImpl::cudnn_dense:  // legacy_->launch: without a ReLU, bias and residual in a pass of their own
            w.dense_filter = impl_ == ConvImpl::cudnn_dense && grouped;
            w.bias_pass = !problem_.relu && (buffers_.bias_f || buffers_.z);
            break;
        case ConvImpl::cublaslt:
        case ConvImpl::im2col_cublaslt:
        case ConvImpl::im2col_cublaslt_per_group:
            w.im2col = gemm_->im2col();
            w.dense_filter = impl_ == ConvImpl::im2col_cublaslt && grouped;
            w.lt_split = gemm_->split_k();
            w.lt_scheme = gemm_->reduction_scheme();
            break;
        case ConvImpl::cudnn_graph:
        case ConvImpl::cudnn_graph_per_group: break;  // the whole node in cuDNN's graph (its workspace unknown)
        case ConvImpl::implicit_gemm:
            if (implicit_splits_ > 1) w.partial_bytes = (double)conv3x3_implicit_gemm_partial_bytes(implicit_, implicit_splits_);
            break;
        case ConvImpl::conv1x1_wmma:
            if (conv1x1_splits_ > 1)
                w.partial_bytes = (double)split_attention_combine_conv1x1_partial_bytes(conv1x1_, conv1x1_splits_);
            break;
    }
    return w;
}

int splits_within(int planned, int tiles, size_t workspace_bytes, const std::function<size_t(int)>& partial_bytes,
                  const ConvChoiceEnv& env) {
    int splits = planned;
    while (splits > 1 &&
           (partial_bytes(splits) > workspace_bytes || !env.tile_arrivals || tiles > env.tile_arrival_slots))
        splits /= 2;
    return splits;
}

void ConvNode::set_implicit(const ImplicitConv3x3Shape& s, const ConvChoiceEnv& env) {
    implicit_ = s;
    implicit_splits_ = splits_within(conv3x3_implicit_gemm_splits(s, env.multiprocessors), s.tiles(),
                                     buffers_.workspace_bytes,
                                     [&](int splits) { return conv3x3_implicit_gemm_partial_bytes(s, splits); }, env);
}

bool ConvNode::pool_on(float* pool, int64_t pool_floats, int radix, const ConvChoiceEnv& env) {
    if (impl_ != ConvImpl::implicit_gemm || !pool) return false;
    ImplicitConv3x3Shape s = implicit_;
    s.pool_radix = radix;
    if (!s.pool_fits() || !conv3x3_implicit_gemm_pool_tiles_allowed(s)) return false;
    if ((int64_t)s.n * s.pool_chunks() * s.pool_channels() > pool_floats) return false;  // the engine sized less
    set_implicit(s, env);
    implicit_pool_ = pool;
    return true;
}

void ConvNode::pool_off(const ConvChoiceEnv& env) {
    if (implicit_.pool_radix == 0) return;
    ImplicitConv3x3Shape s = implicit_;
    s.pool_radix = 0;
    set_implicit(s, env);
    implicit_pool_ = nullptr;
}

void ConvNode::launch(const ConvChoiceEnv& env, bool ordinary) const {
    const KernelStream ours(env.stream, !ordinary && env.dependent_launch && *env.dependent_launch,
                            env.prefetch_weights);
    switch (impl_) {
        case ConvImpl::cudnn:
        case ConvImpl::cudnn_dense: legacy_->launch(env.cudnn, buffers_, env.stream); break;
        case ConvImpl::cublaslt:
        case ConvImpl::im2col_cublaslt:
        case ConvImpl::im2col_cublaslt_per_group: gemm_->launch(env.lt, buffers_, env.stream); break;
        case ConvImpl::cudnn_graph:
        case ConvImpl::cudnn_graph_per_group: graph_->launch(env.cudnn, buffers_, env.stream); break;
        case ConvImpl::implicit_gemm:
            conv3x3_implicit_gemm((const __half*)buffers_.x, (const __half*)buffers_.w, buffers_.bias_f,
                                  (__half*)buffers_.y, implicit_, implicit_splits_, implicit_relu_,
                                  (float*)buffers_.workspace, env.tile_arrivals, implicit_pool_, ours);
            break;
        case ConvImpl::conv1x1_wmma:
            split_attention_combine_conv1x1((const __half*)buffers_.x, nullptr, (const __half*)buffers_.w,
                                            buffers_.bias_f, (const __half*)buffers_.z, (__half*)buffers_.y, conv1x1_,
                                            conv1x1_splits_, conv1x1_relu_, (float*)buffers_.workspace,
                                            env.tile_arrivals, ours);
            break;
    }
}

float ConvNode::time(const ConvChoiceEnv& env) const {
    return mean_launch_ms(env.stream, 5, [&] { launch(env, /*ordinary=*/true); }, "convolution choice");
}

void ConvNode::prepare(const ConvProblem& p, const ConvAlgoKeyParts& key, const ConvBuffers& grouped,
                       const ConvBuffers* dense, const ConvChoiceEnv& env, const std::string& node) {
    // The candidates this node has, in the order of preference on a tie.
    std::vector<ConvImpl> candidates{ConvImpl::cudnn};
    if (dense) candidates.push_back(ConvImpl::cudnn_dense);
    if (env.conv_gemm != "off" && conv_runs_as_gemm(p.attrs)) candidates.push_back(ConvImpl::cublaslt);
    if (env.conv_gemm != "off" && !conv_runs_as_gemm(p.attrs)) candidates.push_back(ConvImpl::im2col_cublaslt);
    if (env.conv_gemm != "off" && !conv_runs_as_gemm(p.attrs) && p.attrs.groups > 1)
        candidates.push_back(ConvImpl::im2col_cublaslt_per_group);
    if (env.conv_graph != "off") candidates.push_back(ConvImpl::cudnn_graph);
    if (env.conv_graph == "auto" && p.attrs.groups > 1) candidates.push_back(ConvImpl::cudnn_graph_per_group);
    if (env.implicit_gemm == "auto") candidates.push_back(ConvImpl::implicit_gemm);
    if (env.implicit_gemm == "auto" && conv_runs_as_gemm(p.attrs)) candidates.push_back(ConvImpl::conv1x1_wmma);
    std::string why;

    // A way forced on ("on"), where it runs.
    const ConvImpl gemm_way = conv_runs_as_gemm(p.attrs) ? ConvImpl::cublaslt : ConvImpl::im2col_cublaslt;
    for (ConvImpl forced : {ConvImpl::implicit_gemm, ConvImpl::conv1x1_wmma, gemm_way, ConvImpl::cudnn_graph}) {
        const bool ours = forced == ConvImpl::implicit_gemm || forced == ConvImpl::conv1x1_wmma;
        const std::string& mode = ours ? env.implicit_gemm : forced == gemm_way ? env.conv_gemm : env.conv_graph;
        if (mode != "on") continue;
        why.clear();
        if (build(forced, p, key, grouped, dense, env, node, &why)) {
            impl_ = forced;
            return;
        }
        if (env.verbose && !why.empty())
            std::fprintf(stderr, "cuda: %s: %s: %s\n", node.c_str(), conv_impl_name(forced), why.c_str());
    }

    // The choice a previous start made for this layer, batch, library versions and set of candidates.
    // "rule 2": chosen with fastest_conv_way's margin for the graph ways (decisions made before are re-timed).
    std::string decision_key = conv_algo_key(key) + "|impl cublasLt " + std::to_string(env.cublas_version) + " lt " +
                               std::to_string(env.cublaslt_version) + " " +
                               env.conv_gemm + " " + env.conv_graph + " rule 2 ways";
    for (ConvImpl c : candidates) decision_key += " " + std::to_string((int)c);
    ConvAlgoChoice decided;
    if (env.cache->lookup(decision_key, &decided) && decided.algo >= 0 && decided.algo < kConvImpls) {
        ConvImpl impl = (ConvImpl)decided.algo;
        for (ConvImpl c : candidates) {
            if (c != impl) continue;
            try {
                if (build(impl, p, key, grouped, dense, env, node, &why)) {
                    impl_ = impl;
                    return;
                }
            } catch (const Error& e) {  // as below: time the candidates again
                if (impl == ConvImpl::cudnn) throw;
                throw_if_device_faulted(env.stream, "node '" + node + "'");
                std::fprintf(stderr, "resnest: warning: %s: cached %s failed: %s\n", node.c_str(), conv_impl_name(impl),
                             e.what());
            }
        }
    }

    // Time every candidate that builds; keep the fastest by fastest_conv_way's rule.
    std::vector<ConvNode> built_ways;
    std::vector<ConvImpl> built_impls;
    std::vector<float> built_ms;
    bool legacy_cached = false;
    std::string report;
    for (ConvImpl c : candidates) {
        ConvNode trial;
        why.clear();
        float ms = 0.0f;
        bool built = false;
        if (c == ConvImpl::cudnn) {  // the fallback: its failures are the node's
            built = trial.build(c, p, key, grouped, dense, env, node, &why);
            trial.impl_ = c;
            ms = trial.time(env);
        } else {
            // An optional way that fails with an error (a library status, not a device fault) is skipped
            // with a warning, so the node still runs; forced on ("on", above) it would have thrown.
            try {
                built = trial.build(c, p, key, grouped, dense, env, node, &why);
                if (built) {
                    trial.impl_ = c;
                    ms = trial.time(env);
                }
            } catch (const Error& e) {
                throw_if_device_faulted(env.stream, "node '" + node + "'");
                std::fprintf(stderr, "resnest: warning: %s: %s skipped: %s\n", node.c_str(), conv_impl_name(c),
                             e.what());
                built = false;
                why.clear();
            }
        }
        if (!built) {
            report += std::string(", ") + conv_impl_name(c) + " -";
            if (env.verbose && !why.empty())
                std::fprintf(stderr, "cuda: %s: %s: %s\n", node.c_str(), conv_impl_name(c), why.c_str());
            continue;
        }
        if (c == ConvImpl::cudnn) legacy_cached = trial.legacy_from_cache_;
        char line[64];
        std::snprintf(line, sizeof(line), ", %s %.4f ms", conv_impl_name(c), ms);
        report += line;
        built_ways.push_back(std::move(trial));
        built_impls.push_back(c);
        built_ms.push_back(ms);
    }
    // cuDNN's legacy call, first among the candidates, builds or throws above; none built is a fault.
    if (built_ways.empty()) throw Error("node '" + node + "': no way to run this convolution was built");
    *this = std::move(built_ways[fastest_conv_way(built_impls, built_ms)]);
    legacy_from_cache_ = legacy_cached;
    env.cache->insert(decision_key, {(int)impl_, 0, 0, ""});
    if (env.verbose) {
        std::string split;
        if (gemm_ && gemm_->split_k() > 1) split = " (split-K " + std::to_string(gemm_->split_k()) + ")";
        if (impl_ == ConvImpl::implicit_gemm && implicit_splits_ > 1)
            split = " (K split " + std::to_string(implicit_splits_) + " ways)";
        if (impl_ == ConvImpl::conv1x1_wmma && conv1x1_splits_ > 1)
            split = " (K split " + std::to_string(conv1x1_splits_) + " ways)";
        std::fprintf(stderr, "cuda: %s at batch %d%s: %s%s\n", node.c_str(), p.batch, report.c_str(),
                     conv_impl_name(impl_), split.c_str());
    }
}

}  // namespace resnest
