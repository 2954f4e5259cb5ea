// planner.cpp: best-fit activation arena with liveness from consumer counts (see planner.h).
#include "planner.h"

#include <algorithm>
#include <iterator>
#include <map>

namespace resnest {

bool op_in_place_safe(OpType op) {
    return op == OpType::relu || op == OpType::batch_norm || op == OpType::add;
}

namespace {

constexpr int64_t kAlign = 64;

int64_t align_up(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

struct FreeList {
    std::map<int64_t, int64_t> blocks;  // offset -> size, disjoint, merged
    int64_t end = 0;                    // arena size so far

    int64_t take(int64_t size) {
        auto best = blocks.end();
        for (auto it = blocks.begin(); it != blocks.end(); ++it)
            if (it->second >= size && (best == blocks.end() || it->second < best->second)) best = it;
        if (best != blocks.end()) {
            int64_t off = best->first, left = best->second - size;
            blocks.erase(best);
            if (left > 0) blocks[off + size] = left;
            return off;
        }
        // No block fits: grow the arena, starting inside a free block that touches its end.
        if (!blocks.empty()) {
            auto last = std::prev(blocks.end());
            if (last->first + last->second == end) {
                int64_t off = last->first;
                blocks.erase(last);
                end = off + size;
                return off;
            }
        }
        int64_t off = end;
        end += size;
        return off;
    }

    void give(int64_t off, int64_t size) {
        auto it = blocks.emplace(off, size).first;
        auto next = std::next(it);
        if (next != blocks.end() && off + size == next->first) {
            it->second += next->second;
            blocks.erase(next);
        }
        if (it != blocks.begin()) {
            auto prev = std::prev(it);
            if (prev->first + prev->second == off) {
                prev->second += it->second;
                blocks.erase(it);
            }
        }
    }
};

}  // namespace

MemoryPlan plan_memory(const Graph& g, int batch, int64_t element_size) {
    MemoryPlan plan;
    plan.batch = batch;
    size_t count = g.tensors.size();
    plan.offset.assign(count, -1);
    plan.bytes.assign(count, 0);
    std::vector<int64_t> size(count, 0);
    std::vector<int> last_use(count, -1);
    for (size_t t = 0; t < count; t++) {
        plan.bytes[t] = shape_numel(g.tensors[t].shape) * batch * element_size;
        size[t] = align_up(plan.bytes[t]);
        if ((int)t != g.input) plan.naive_bytes += size[t];
        if (!g.tensors[t].consumers.empty()) last_use[t] = g.tensors[t].consumers.back();
    }
    auto dies_at = [&](int t, int node) {
        return t != g.input && !g.tensors[t].is_output && last_use[t] == node;
    };

    FreeList arena;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const Node& n = g.nodes[i];
        int out = n.output;
        int reused = -1;
        if (op_in_place_safe(n.op)) {
            for (int t : n.inputs)
                if (reused < 0 && dies_at(t, (int)i) && size[t] == size[out]) reused = t;
        }
        if (reused >= 0) {
            plan.offset[out] = plan.offset[reused];
            plan.in_place++;
        } else {
            plan.offset[out] = arena.take(size[out]);
        }
        // Free the inputs this node was the last to read (each tensor once, even if read twice).
        std::vector<int> freed;
        for (int t : n.inputs) {
            if (t == reused || !dies_at(t, (int)i)) continue;
            if (std::find(freed.begin(), freed.end(), t) != freed.end()) continue;
            freed.push_back(t);
            arena.give(plan.offset[t], size[t]);
        }
        // An output nobody reads (and that is not a graph output) is dead at once.
        if (g.tensors[out].consumers.empty() && !g.tensors[out].is_output) arena.give(plan.offset[out], size[out]);
    }
    plan.arena_bytes = arena.end;
    return plan;
}

}  // namespace resnest
