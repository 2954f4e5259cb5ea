// cuda_context_profile.cpp: per-node device times of a CUDA context's forward pass (Context::profile), eager
// and inside a replayed CUDA graph (cuda_context.h).
#include <algorithm>
#include <cstdio>

#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "split_attention_combine_conv1x1.cuh"
#include "node_traffic.h"

namespace resnest {

std::vector<NodeProfile> CudaContext::profile(int batch, int iters) {
    check_loaded(batch, "profile");
    CUDA_CHECK(cudaSetDevice(engine_->options().device));
    BatchState& state = prepare(batch);
    const Graph& g = engine_->graph();
    size_t count = g.nodes.size();
    TimingEvents held(count + 1, "the profile's events");  // destroyed however the profile ends
    std::vector<cudaEvent_t>& events = held.events;
    std::vector<std::vector<float>> samples(count), replayed(count);
    // Split attention's three stages, eager only: two more events a node (after the pool, after the gate).
    std::vector<int> slots(count, -1);
    size_t stage_count = 0;
    for (size_t i = 0; i < count; i++)
        if (g.nodes[i].op == OpType::split_attention) slots[i] = (int)stage_count, stage_count += 2;
    TimingEvents stages(stage_count, "the profile's split-attention stage events");
    std::vector<std::vector<float>> stage_samples[3];
    for (auto& v : stage_samples) v.resize(count);
    {
        const StageEvents on{stages.events, slots};
        struct StagesOff {  // whatever leaves the loop, exceptions too
            const StageEvents*& stages;
            ~StagesOff() { stages = nullptr; }
        } off{stages_};
        stages_ = &on;
        for (int it = 0; it < std::max(1, iters); it++) {
            forward(batch, state, &events);
            CUDA_CHECK(cudaStreamSynchronize(stream_));
            add_node_times(held, &samples);
            for (size_t i = 0; i < count; i++) {
                if (slots[i] < 0) continue;
                const std::string& name = g.nodes[i].name;
                const size_t s = (size_t)slots[i];
                stage_samples[0][i].push_back(elapsed_ms(events[i], stages.events[s], name));
                stage_samples[1][i].push_back(elapsed_ms(stages.events[s], stages.events[s + 1], name));
                stage_samples[2][i].push_back(elapsed_ms(stages.events[s + 1], events[i + 1], name));
            }
        }
    }
    if (engine_->options().cuda_graph && !debug_sync_) profile_replayed(batch, state, held, iters, &replayed);
    auto median = [](std::vector<float>& v) {  // the upper one of an even count
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        return v[v.size() / 2];
    };
    // The bytes each node moves, with this batch size's folds (node_traffic.h).
    PlanFolds folds;
    folds.folded_in_conv = state.folded_in_conv;
    folds.pool_in_conv = state.pool_in_conv;
    folds.pool_chunks.assign(count, 0);
    for (size_t i = 0; i < count; i++)
        if (g.nodes[i].op == OpType::split_attention)
            folds.pool_chunks[i] = gate_shape(i, batch, state.gate_form[i], state).chunks;
    if (state.stem) folds.stem_node = (int)state.stem->node;
    std::vector<double> weight_bytes(count);
    for (size_t i = 0; i < count; i++) weight_bytes[i] = (double)engine_->weights(i).bytes;
    const std::vector<double> bytes = node_traffic_bytes(g, folds, batch, (int)engine_->esize(), weight_bytes);
    std::vector<NodeProfile> out;
    for (size_t i = 0; i < count; i++) {
        const Node& n = g.nodes[i];
        NodeProfile p;
        p.name = n.name;
        p.op = fused_op_name(n);
        const bool stem = state.stem && state.stem->node == i;  // one kernel of its own, whatever the way
        if (stem)
            p.op += " (direct from the NCHW input)";
        else if (state.combine_conv[i])
            p.op += state.combine_conv[i]->attn ? " (split-attention combine + implicit GEMM)"
                                                : " (average pool + implicit GEMM)";
        else if (state.convs[i] && state.convs[i]->impl() != ConvImpl::cudnn)
            p.op += std::string(" (") + conv_impl_name(state.convs[i]->impl()) + ")";
        if (state.convs[i] && state.convs[i]->pool_chunks() > 0) p.op += " (+ split-attention pool)";
        const int k_splits = state.combine_conv[i]  ? state.combine_conv[i]->splits
                             : state.convs[i] && !stem ? state.convs[i]->k_splits()
                                                       : 1;
        if (k_splits > 1) p.op += " (K split " + std::to_string(k_splits) + " ways)";
        // cuBLASLt's split (the choice's or the heuristic's own), which moves partials too (way_bytes).
        const GemmConvLaunch* lt = state.convs[i] && !stem ? state.convs[i]->gemm() : nullptr;
        if (lt && lt->split_k() > 1) p.op += " (cuBLASLt K split " + std::to_string(lt->split_k()) + " ways)";
        if (n.op == OpType::split_attention && state.pool_in_conv[i] >= 0) p.op += " (pool in the convolution)";
        if (n.op == OpType::split_attention && state.folded_in_conv[i] >= 0) p.op += " (combine in the convolution)";
        if (n.op == OpType::avg_pool2d && state.folded_in_conv[i] >= 0) p.op += " (in the convolution)";
        if (n.op == OpType::linear) p.op += state.linear_rows[i] ? " (warp per output row)" : " (cuBLAS)";
        if (n.op == OpType::split_attention && state.gate_form[i] != GateForm::block_per_image)
            p.op += std::string(" (gate: ") + gate_form_name(state.gate_form[i]) + ")";
        p.ms = median(samples[i]);
        if (!replayed[i].empty()) p.replay_ms = median(replayed[i]);
        if (slots[i] >= 0) {
            p.pool_ms = median(stage_samples[0][i]);
            p.gate_ms = median(stage_samples[1][i]);
            p.combine_ms = median(stage_samples[2][i]);
        }
        p.flops = 2.0 * (double)n.macs * batch;
        p.bytes = bytes[i];
        p.way_bytes = node_way_bytes(g, i, batch, (int)engine_->esize(), way_of(i, state));
        out.push_back(p);
    }
    return out;
}

// How node i runs at this batch size, for the bytes its way moves beyond its tensors (node_traffic.h).
NodeWay CudaContext::way_of(size_t i, const BatchState& state) const {
    NodeWay w;
    if (state.stem && state.stem->node == i) return w;  // one kernel, no workspace
    if (state.combine_conv[i]) {
        const CombineConvLaunch& c = *state.combine_conv[i];
        if (c.splits > 1) w.partial_bytes = (double)split_attention_combine_conv1x1_partial_bytes(c.s, c.splits);
        return w;
    }
    if (state.convs[i]) return state.convs[i]->way();
    const Node& n = engine_->graph().nodes[i];
    if (n.op == OpType::linear && !state.linear_rows[i])  // cuBLAS, then the bias in a pass of its own
        w.bias_pass = engine_->weights(i).linear_b != nullptr;
    return w;
}

// Appends node i's time in the run just finished (events[i] to events[i + 1], ms) to (*times)[i].
void CudaContext::add_node_times(const TimingEvents& events, std::vector<std::vector<float>>* times) const {
    for (size_t i = 0; i < times->size(); i++)
        (*times)[i].push_back(events.elapsed(i, i + 1, engine_->graph().nodes[i].name));
}

// Per-node device times as the forward pass runs in production: captured into a CUDA graph with the
// events as event-record nodes between the nodes, replayed `iters` times (at small batches eager
// launches measure the host's launch cost more than the kernels). A capture refused with programmatic
// dependent launch is taken again without it; where that fails too, `out` is left empty with a warning
// (the eager times still stand).
void CudaContext::profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                      std::vector<std::vector<float>>* out) {
    std::string first_error;
    if (try_profile_replayed(batch, state, events, iters, out, &first_error)) return;
    if (launch_.dependent_launch) {
        OrdinaryLaunches ordinary(launch_.dependent_launch);
        std::string again;
        const bool ok = try_profile_replayed(batch, state, events, iters, out, &again);
        if (ok) return;
        first_error += "; with ordinary launches: " + again;
    }
    std::fprintf(stderr, "resnest: warning: the profile's graph replay failed (%s); eager times only\n",
                 first_error.c_str());
}

bool CudaContext::try_profile_replayed(int batch, BatchState& state, TimingEvents& events, int iters,
                          std::vector<std::vector<float>>* out, std::string* error) {
    CapturedGraph captured;
    bool ok = true;
    try {
        CUDA_CHECK(capture_stream(&captured.graph, [&] { forward(batch, state, &events.events, true); }));
        // As the batch size's own graph runs: with the weights' L2 window where it has it (where the window
        // cannot be set, a warning, and the replay's times go without it).
        if (state.l2_window) instantiate_with_l2_window(&captured, batch, /*profile=*/true);
        if (!captured.exec) CUDA_CHECK(cudaGraphInstantiate(&captured.exec, captured.graph, 0));
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

}  // namespace resnest
