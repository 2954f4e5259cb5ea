// planner.cpp: liveness, in-place chains and offline best-fit placement of the activation arena (see
// planner.h).
#include "planner.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <utility>

namespace resnest {

bool op_in_place_safe(OpType op) {
    return op == OpType::relu || op == OpType::batch_norm || op == OpType::add;
}

namespace {

constexpr int64_t kAlign = 64;

int64_t align_up(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

// Tensors that share bytes (one, or an in-place chain), alive from node `first` to node `last` inclusive
// (first -1: written before the first node).
struct Block {
    int64_t size = 0;
    int first = 0, last = 0;
};

// Visits the blocks in `order` and puts each at the smallest gap, between the blocks already placed that
// are alive at the same time, that holds it (or after the last of them). Returns the arena's size.
int64_t place_best_fit(const std::vector<Block>& blocks, const std::vector<int>& order, std::vector<int64_t>& offset) {
    offset.assign(blocks.size(), -1);
    std::vector<int> placed;
    std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of placed blocks alive at the same time
    int64_t arena = 0;
    for (int b : order) {
        const Block& k = blocks[b];
        busy.clear();
        for (int p : placed)
            if (blocks[p].first <= k.last && k.first <= blocks[p].last)
                busy.push_back({offset[p], offset[p] + blocks[p].size});
        std::sort(busy.begin(), busy.end());
        int64_t best = -1, best_gap = INT64_MAX, cursor = 0;
        for (const auto& [begin, end] : busy) {
            int64_t gap = begin - cursor;
            if (gap >= k.size && gap < best_gap) best = cursor, best_gap = gap;
            cursor = std::max(cursor, end);
        }
        if (best < 0) best = cursor;
        offset[b] = best;
        arena = std::max(arena, best + k.size);
        placed.push_back(b);
    }
    return arena;
}

}  // namespace

MemoryPlan plan_memory(const Graph& g, int batch, int64_t element_size, bool input_in_arena,
                       const std::vector<ExtraRead>& extra_reads) {
    MemoryPlan plan;
    plan.batch = batch;
    const size_t count = g.tensors.size();
    const int end = (int)g.nodes.size();  // "alive to the end": graph outputs
    plan.offset.assign(count, -1);
    plan.bytes.assign(count, 0);
    std::vector<int64_t> size(count, 0);
    for (size_t t = 0; t < count; t++) {
        plan.bytes[t] = shape_numel(g.tensors[t].shape) * batch * element_size;
        size[t] = align_up(plan.bytes[t]);
        if ((int)t != g.input || input_in_arena) plan.naive_bytes += size[t];
    }
    std::vector<int> extra_last(count, -1);  // the last node of extra_reads that reads each tensor
    for (const ExtraRead& r : extra_reads)
        if (r.tensor >= 0 && (size_t)r.tensor < count)
            extra_last[(size_t)r.tensor] = std::max(extra_last[(size_t)r.tensor], r.node);
    auto last_use = [&](int t) {
        const TensorInfo& ti = g.tensors[t];
        if (ti.is_output) return end;
        return std::max(ti.consumers.empty() ? ti.producer : ti.consumers.back(), extra_last[(size_t)t]);
    };
    // A tensor that node i may write over: never the graph input (the caller's) or a graph output.
    auto dies_at = [&](int t, int i) {
        return t != g.input && !g.tensors[t].is_output && !g.tensors[t].consumers.empty() &&
               g.tensors[t].consumers.back() == i && extra_last[(size_t)t] <= i;
    };

    // Blocks, in execution order: the input's (when placed), then one per node output unless it is written
    // over a dying input of the same size, whose block it then extends.
    std::vector<Block> blocks;
    std::vector<int> block_of(count, -1);
    if (input_in_arena && g.input >= 0) {
        block_of[g.input] = 0;
        blocks.push_back({size[g.input], -1, std::max(-1, last_use(g.input))});
    }
    for (int i = 0; i < end; i++) {
        const Node& n = g.nodes[i];
        const int out = n.output;
        int reused = -1;
        if (op_in_place_safe(n.op))
            for (int t : n.inputs)
                if (reused < 0 && dies_at(t, i) && size[t] == size[out]) reused = t;
        if (reused >= 0) {
            block_of[out] = block_of[reused];
            blocks[block_of[out]].last = std::max(blocks[block_of[out]].last, last_use(out));
            plan.in_place++;
        } else {
            block_of[out] = (int)blocks.size();
            blocks.push_back({size[out], i, std::max(i, last_use(out))});
        }
    }

    // The lower bound: the most bytes alive at one node (index shifted by one for the input's -1).
    std::vector<int64_t> delta((size_t)end + 3, 0);
    for (const Block& b : blocks) {
        delta[(size_t)b.first + 1] += b.size;
        delta[(size_t)b.last + 2] -= b.size;
    }
    int64_t alive = 0;
    for (int64_t d : delta) plan.peak_live_bytes = std::max(plan.peak_live_bytes, alive += d);

    std::vector<int> in_execution_order(blocks.size());
    std::iota(in_execution_order.begin(), in_execution_order.end(), 0);
    std::vector<int> largest_first = in_execution_order;
    std::stable_sort(largest_first.begin(), largest_first.end(),
                     [&](int a, int b) { return blocks[a].size > blocks[b].size; });
    std::vector<int64_t> by_size, by_time;
    int64_t arena_by_size = place_best_fit(blocks, largest_first, by_size);
    int64_t arena_by_time = place_best_fit(blocks, in_execution_order, by_time);
    const bool size_wins = arena_by_size <= arena_by_time;
    const std::vector<int64_t>& block_offset = size_wins ? by_size : by_time;
    plan.arena_bytes = size_wins ? arena_by_size : arena_by_time;
    plan.placement = size_wins ? "largest first" : "execution order";
    for (size_t t = 0; t < count; t++)
        if (block_of[t] >= 0) plan.offset[t] = block_offset[block_of[t]];
    return plan;
}

BatchLimit cuda_batch_limit(const Graph& g) {
    BatchLimit limit;
    limit.batch = 65536;
    for (size_t t = 0; t < g.tensors.size(); t++) {
        Shape shape = g.tensors[t].shape;  // per image
        if ((int)t == g.input && !shape.empty()) shape[0] = std::max<int64_t>(shape[0], 8);
        const int64_t per_image = std::max<int64_t>(shape_numel(shape), 1);
        const int64_t batch = kCudnnMaxTensorElements / per_image;
        if (batch < limit.batch) limit = {(int)batch, g.tensors[t].name, shape};
    }
    return limit;
}

}  // namespace resnest
