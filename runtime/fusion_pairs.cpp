// fusion_pairs.cpp: a split-attention node's neighbours that may take its steps (fusion_pairs.h).
#include "fusion_pairs.h"

#include "conv_as_gemm.h"

namespace resnest {

namespace {

// Whether a split-attention node other than a and b runs between them (node order is execution order).
bool split_attention_between(const Graph& g, int a, int b) {
    for (int k = a + 1; k < b; k++)
        if (g.nodes[(size_t)k].op == OpType::split_attention) return true;
    return false;
}

}  // namespace

int conv_writing_split_attention_input(const Graph& g, int i) {
    const Node& n = g.nodes[(size_t)i];
    if (n.op != OpType::split_attention || n.inputs.size() != 1) return -1;
    const TensorInfo& u = g.tensors[(size_t)n.inputs[0]];
    const int j = u.producer;
    if (j < 0 || u.consumers.size() != 1 || u.is_output) return -1;
    const Node& conv = g.nodes[(size_t)j];
    if (conv.op != OpType::conv2d || conv.conv.out_channels != n.attn.radix * n.attn.channels) return -1;
    return split_attention_between(g, j, i) ? -1 : j;
}

int conv_reading_split_attention_output(const Graph& g, int i) {
    const Node& n = g.nodes[(size_t)i];
    if (n.op != OpType::split_attention || n.inputs.size() != 1 || n.attn.fused_avg_pool) return -1;
    const TensorInfo& a = g.tensors[(size_t)n.output];
    if (a.consumers.size() != 1 || a.is_output) return -1;
    const int j = a.consumers[0];
    const Node& conv = g.nodes[(size_t)j];
    if (conv.op != OpType::conv2d || conv.inputs.empty() || conv.inputs[0] != n.output) return -1;
    if (!conv_runs_as_gemm(conv.conv) || conv.conv.in_channels != n.attn.channels) return -1;
    return split_attention_between(g, i, j) ? -1 : j;
}

}  // namespace resnest
