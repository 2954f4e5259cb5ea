// weight_blob.h: the CUDA engine's weights laid out on the host as the one buffer it uploads: per node, the
// pieces its kernels and library calls read, each starting 256-byte aligned:
//   conv2d          filter (O, KH, KW, I/G) in the storage type; a grouped one also as its dense
//                   block-diagonal form (O, KH, KW, I); bias (O) in the storage type (zeros without a bias:
//                   cuDNN's fused call needs one) and, with a bias, as float
//   batch_norm      scale and shift (C) float (only where no conv precedes it, or with the passes off)
//   split_attention fc1 (BN folded in) weight and bias, fc2 weight and bias, float
//   linear          weight (out, in) in the storage type; bias (out) float
// Host code only; each node's pieces are converted on their own thread (parallel_for.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "graph.h"
#include "resnest/engine.h"
#include "weights.h"

namespace resnest {

// Byte offsets of one node's pieces in the buffer; -1 where the node has none.
struct NodeWeightOffsets {
    int64_t conv_w = -1, conv_w_dense = -1, conv_b = -1, conv_b_f = -1, bn_scale = -1, bn_shift = -1, fc1_w = -1,
            fc1_b = -1, fc2_w = -1, fc2_b = -1, linear_w = -1, linear_b = -1;
    int64_t bytes = 0;  // what the node reads per run (the dense form not counted)
};

struct WeightBlob {
    std::unique_ptr<unsigned char[]> data;  // `size` bytes; the gaps between pieces are zeros
    int64_t size = 0;
    std::vector<NodeWeightOffsets> nodes;  // per graph node
};

// Storage type: __half bits for fp16, float otherwise.
WeightBlob build_weight_blob(const Graph& g, const HostWeights& w, Precision p);

}  // namespace resnest
