// node_traffic.cpp: the bytes each node of the CUDA backend's plan moves (node_traffic.h).
#include "node_traffic.h"

#include <string>

#include "conv_as_gemm.h"
#include "resnest/error.h"

namespace resnest {

namespace {

int fold_of(const PlanFolds& f, size_t i) { return f.folded_in_conv.empty() ? -1 : f.folded_in_conv[i]; }
int chunks_of(const PlanFolds& f, size_t i) { return f.pool_chunks.empty() ? 0 : f.pool_chunks[i]; }
int pooler_of(const PlanFolds& f, size_t i) { return f.pool_in_conv.empty() ? -1 : f.pool_in_conv[i]; }

}  // namespace

std::vector<double> node_traffic_bytes(const Graph& g, const PlanFolds& folds, int batch, int esize,
                                       const std::vector<double>& weight_bytes) {
    const size_t count = g.nodes.size();
    auto sized = [&](size_t n, const char* what, bool may_be_empty) {
        if (n != count && !(may_be_empty && n == 0))
            throw Error(g.source + ": node traffic: " + what + " has " + std::to_string(n) + " entries for " +
                        std::to_string(count) + " nodes");
    };
    sized(folds.folded_in_conv.size(), "folded_in_conv", true);
    sized(folds.pool_chunks.size(), "pool_chunks", true);
    sized(folds.pool_in_conv.size(), "pool_in_conv", true);
    sized(weight_bytes.size(), "weight_bytes", false);

    const double n = batch, e = esize, f32 = 4.0;
    auto act = [&](int t) { return (double)shape_numel(g.tensors[(size_t)t].shape) * n * e; };
    auto inputs_of = [&](const Node& node) {
        double b = 0.0;
        for (int t : node.inputs) b += act(t);
        return b;
    };
    auto gates = [&](const Node& node) { return n * node.attn.radix * node.attn.channels * f32; };  // (N, R*C)
    auto chunk_sums = [&](const Node& node, int chunks) { return n * chunks * node.attn.channels * f32; };  // (N, chunks, C)

    std::vector<double> bytes(count, 0.0);
    for (size_t i = 0; i < count; i++) {
        const Node& node = g.nodes[i];
        double b = weight_bytes[i];
        if (fold_of(folds, i) >= 0) {  // checked: a convolution reading this node's output
            const int j = fold_of(folds, i);
            if (j <= (int)i || j >= (int)count || g.nodes[(size_t)j].op != OpType::conv2d ||
                g.nodes[(size_t)j].inputs.empty() || g.nodes[(size_t)j].inputs[0] != node.output ||
                (node.op != OpType::split_attention && node.op != OpType::avg_pool2d))
                throw Error(g.source + ": node traffic: node '" + node.name + "' is folded into node " +
                            std::to_string(j) + ", which is not a convolution reading its output");
        }
        if (pooler_of(folds, i) >= 0) {  // checked: a convolution writing this node's one input
            const int j = pooler_of(folds, i);
            if (node.op != OpType::split_attention || node.inputs.size() != 1 ||
                g.tensors[(size_t)node.inputs[0]].producer != j || g.nodes[(size_t)j].op != OpType::conv2d)
                throw Error(g.source + ": node traffic: node '" + node.name + "' has its pool in node " +
                            std::to_string(j) + ", which is not a convolution writing its input");
        }
        if (node.op == OpType::split_attention) {
            const double sums = chunk_sums(node, chunks_of(folds, i));
            if (pooler_of(folds, i) < 0) b += inputs_of(node) + sums;  // the pool (else the convolution's epilogue)
            b += sums + gates(node);  // the gate reads the chunk sums and writes the gates
            if (fold_of(folds, i) < 0) b += inputs_of(node) + gates(node) + act(node.output);  // the weighted sum
        } else if (node.op == OpType::avg_pool2d && fold_of(folds, i) >= 0) {
            // Nothing: the convolution after it pools.
        } else {
            for (size_t k = 0; k < node.inputs.size(); k++) {
                const int t = node.inputs[k];
                const int p = g.tensors[(size_t)t].producer;
                if ((int)i == folds.stem_node && t == g.input)
                    b += (double)shape_numel(g.input_shape) * n * f32;  // the NCHW float input
                else if (k == 0 && p >= 0 && fold_of(folds, (size_t)p) == (int)i)
                    b += inputs_of(g.nodes[(size_t)p]) +
                         (g.nodes[(size_t)p].op == OpType::split_attention ? gates(g.nodes[(size_t)p]) : 0.0);
                else
                    b += act(t);
            }
            b += act(node.output);
        }
        bytes[i] = b;
    }
    // A convolution that pools for the split attention after it also writes the chunk sums.
    for (size_t i = 0; i < count; i++)
        if (pooler_of(folds, i) >= 0) bytes[(size_t)pooler_of(folds, i)] += chunk_sums(g.nodes[i], chunks_of(folds, i));
    return bytes;
}

double node_way_bytes(const Graph& g, size_t i, int batch, int esize, const NodeWay& way) {
    const Node& node = g.nodes.at(i);
    auto refuse = [&](const std::string& why) {
        throw Error(g.source + ": node traffic: node '" + node.name + "': " + why);
    };
    const bool conv = node.op == OpType::conv2d;
    if (!conv && node.op != OpType::linear &&
        (way.im2col || way.dense_filter || way.lt_split > 1 || way.partial_bytes > 0 || way.bias_pass))
        refuse("only convolution and linear nodes have a way of their own");
    if (!conv && (way.im2col || way.dense_filter)) refuse("im2col and a dense filter are convolutions' ways");
    if (way.lt_split < 1 || way.partial_bytes < 0) refuse("a K split below 1 or negative partial bytes");
    if (way.lt_split > 1 && way.lt_scheme != kReductionInPlace && way.lt_scheme != kReductionComputeType &&
        way.lt_scheme != kReductionOutputType)
        refuse("a cuBLASLt split of " + std::to_string(way.lt_split) + " with reduction " +
               std::to_string(way.lt_scheme) + ", which is none of cuBLASLt's");

    const double n = batch, e = esize, f32 = 4.0;
    const double out = (double)shape_numel(g.tensors[(size_t)node.output].shape) * n;  // (N, OH, OW, Cout) elements
    double b = 0.0;
    if (way.im2col) {  // the gather's matrix (N*OH*OW, KH*KW*Cin), written by it and read by the matmul
        const Shape& x = g.tensors[(size_t)node.inputs[0]].shape;  // (C, H, W)
        const Shape& y = g.tensors[(size_t)node.output].shape;
        const Im2colShape s = im2col_shape(node.conv, batch, (int)x[1], (int)x[2], (int)y[1], (int)y[2]);
        b += 2.0 * (double)s.rows() * (double)s.cols() * e;
    }
    if (way.dense_filter)  // the dense block-diagonal filter read where the graph's grouped one is
        b += (double)(conv_filter_elements(node.conv, true) - conv_filter_elements(node.conv, false)) * e;
    if (way.lt_split > 1) {
        if (way.lt_scheme == kReductionInPlace)
            b += 2.0 * (way.lt_split - 1) * out * e;  // each split after the first reads and writes the output
        else  // partials in the workspace, in float or in the output type
            b += 2.0 * way.lt_split * out * (way.lt_scheme == kReductionComputeType ? f32 : e);
    }
    b += 2.0 * way.partial_bytes;
    // The pass reads y and writes it again; the residual it adds is the node's input, counted already.
    if (way.bias_pass) b += 2.0 * out * e;
    return b;
}

}  // namespace resnest
