// planner.h: the activation memory plan: every intermediate tensor gets an offset in one arena.
//
// Walks the nodes in execution order. Each output takes the best-fitting free block (the smallest that is
// large enough), or extends the arena; each input is freed after its last consumer. An op marked safe
// (relu, batch_norm, add) writes over an input that dies at that node. The graph input lives outside the
// arena; graph outputs stay live to the end. Offsets are 64-byte aligned.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph.h"

namespace resnest {

struct MemoryPlan {
    int batch = 0;
    std::vector<int64_t> offset;  // per tensor id, bytes; -1 for the graph input
    std::vector<int64_t> bytes;   // per tensor id, bytes at this batch (before alignment)
    int64_t arena_bytes = 0;
    int in_place = 0;             // outputs written over a dying input
    int64_t naive_bytes = 0;      // the sum of every tensor's size: what no reuse would cost
};

MemoryPlan plan_memory(const Graph& g, int batch, int64_t element_size);

// True for ops whose output may overwrite their first (or, for add, either) input.
bool op_in_place_safe(OpType op);

}  // namespace resnest
