// planner.h: the activation memory plan: every intermediate tensor gets an offset in one arena.
//
// Liveness first: a tensor lives from the node that writes it to its last reader (graph outputs to the end;
// the graph input, when it is placed in the arena, from before the first node). An op marked safe (relu,
// batch_norm, add) writes over an input of the same size that dies at that node; such chains share one
// block, live over their members' union. Then the blocks are placed offline, each at the smallest gap left
// between the blocks already placed that overlap it in time (best fit), in two orders: largest block
// first, and in execution order; the smaller arena is kept. Offsets are 64-byte aligned.
//
// `peak_live_bytes` is the most bytes alive at any node: no plan can use less, and the gap between it and
// `arena_bytes` is what fragmentation costs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "graph.h"

namespace resnest {

struct MemoryPlan {
    int batch = 0;
    std::vector<int64_t> offset;  // per tensor id, bytes; -1 for the graph input when it is not in the arena
    std::vector<int64_t> bytes;   // per tensor id, bytes at this batch (before alignment)
    int64_t arena_bytes = 0;
    int64_t peak_live_bytes = 0;  // the lower bound on arena_bytes (aligned sizes)
    int in_place = 0;             // outputs written over a dying input
    int64_t naive_bytes = 0;      // the sum of every arena tensor's size: what no reuse would cost
    std::string placement;        // the order that gave the kept plan: "largest first" or "execution order"
};

// A read the graph does not show: node `node` also reads tensor `tensor` (a backend's fused kernel that
// reaches past the node between them), so the tensor lives until then.
struct ExtraRead {
    int tensor, node;
};

// input_in_arena: the graph input gets a block too (a backend that writes it at the start of every run, such
// as the CUDA backend's NHWC input); otherwise it lives outside the arena (offset -1). extra_reads lengthen
// those tensors' lives.
MemoryPlan plan_memory(const Graph& g, int batch, int64_t element_size, bool input_in_arena = false,
                       const std::vector<ExtraRead>& extra_reads = {});

// True for ops whose output may overwrite their first (or, for add, either) input.
bool op_in_place_safe(OpType op);

// cuDNN takes no tensor of more than 2^31 - 1 elements (a descriptor past it is CUDNN_STATUS_NOT_SUPPORTED).
constexpr int64_t kCudnnMaxTensorElements = 2147483647;

// The largest batch the CUDA backend runs in one pass of `g`: the batch at which the graph's largest tensor
// per image still fits cuDNN's limit, capped at 65,536 (EngineOptions' own cap). The graph input is counted
// at 8 channels at least, as the fp16 stem pads it, so the graph as loaded and as rewritten give one answer.
// `tensor` and `shape` name the tensor that sets the limit (empty when the cap does); 0 when one image's
// tensor is already past cuDNN's limit. Every tensor counts,
// not only those a cuDNN call sees: the one rule a user can be told.
struct BatchLimit {
    int batch = 0;
    std::string tensor;
    Shape shape;  // per image
};
BatchLimit cuda_batch_limit(const Graph& g);

}  // namespace resnest
