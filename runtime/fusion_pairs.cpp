// fusion_pairs.cpp: the convolutions beside a split-attention node or an average pool that may take its
// steps (fusion_pairs.h).
#include "fusion_pairs.h"

#include "conv_as_gemm.h"
#include "passes.h"

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
    const int j = sole_producer(g, n.inputs[0], i);
    if (j < 0) return -1;
    const Node& conv = g.nodes[(size_t)j];
    if (conv.op != OpType::conv2d || conv.conv.out_channels != n.attn.radix * n.attn.channels) return -1;
    return split_attention_between(g, j, i) ? -1 : j;
}

int conv_reading_split_attention_output(const Graph& g, int i) {
    const Node& n = g.nodes[(size_t)i];
    if (n.op != OpType::split_attention || n.inputs.size() != 1) return -1;
    const TensorInfo& a = g.tensors[(size_t)n.output];
    if (a.consumers.size() != 1 || a.is_output) return -1;
    const int j = a.consumers[0];
    const Node& conv = g.nodes[(size_t)j];
    if (conv.op != OpType::conv2d || conv.inputs.empty() || conv.inputs[0] != n.output) return -1;
    if (!conv_runs_as_gemm(conv.conv) || conv.conv.in_channels != n.attn.channels) return -1;
    return split_attention_between(g, i, j) ? -1 : j;
}

int conv_reading_avg_pool_output(const Graph& g, int i) {
    const Node& n = g.nodes[(size_t)i];
    if (n.op != OpType::avg_pool2d || n.inputs.size() != 1) return -1;
    if (n.pool.kernel_h != n.pool.kernel_w || n.pool.stride_h != n.pool.stride_w || n.pool.pad_h != n.pool.pad_w)
        return -1;
    const TensorInfo& a = g.tensors[(size_t)n.output];
    if (a.consumers.size() != 1 || a.is_output) return -1;
    const int j = a.consumers[0];
    const Node& conv = g.nodes[(size_t)j];
    if (conv.op != OpType::conv2d || conv.inputs.empty() || conv.inputs[0] != n.output) return -1;
    return conv_runs_as_gemm(conv.conv) ? j : -1;
}

int conv1x1_folding(const Graph& g, int i) {
    const OpType op = g.nodes[(size_t)i].op;
    return op == OpType::split_attention ? conv_reading_split_attention_output(g, i)
           : op == OpType::avg_pool2d    ? conv_reading_avg_pool_output(g, i)
                                         : -1;
}

std::vector<ExtraRead> conv1x1_fold_reads(const Graph& g) {
    std::vector<ExtraRead> reads;
    for (int i = 0; i < (int)g.nodes.size(); i++) {
        const int j = conv1x1_folding(g, i);
        if (j >= 0) reads.push_back({g.nodes[(size_t)i].inputs[0], j});
    }
    return reads;
}

std::vector<std::string> conv_fold_candidates(const Graph& g) {
    std::vector<std::string> lines;
    auto add = [&](int i, const char* what, int j) {
        lines.push_back(g.nodes[(size_t)i].name + ": " + what + " into " + g.nodes[(size_t)j].name);
    };
    for (int i = 0; i < (int)g.nodes.size(); i++) {
        const Node& n = g.nodes[(size_t)i];
        if (n.op == OpType::split_attention) {
            const int w = conv_writing_split_attention_input(g, i), r = conv_reading_split_attention_output(g, i);
            if (w >= 0) add(i, "pool", w);
            if (r >= 0) add(i, n.attn.fused_avg_pool ? "weighted sum + avd pool" : "weighted sum", r);
        }
        const int p = conv_reading_avg_pool_output(g, i);
        if (p >= 0) add(i, "average pool", p);
    }
    return lines;
}

bool tensor_kept_between(const Graph& g, const MemoryPlan& plan, int t, int after, int through) {
    const int64_t begin = plan.offset[(size_t)t], end = begin + plan.bytes[(size_t)t];
    if (begin < 0) return false;
    for (int k = after + 1; k <= through && k < (int)g.nodes.size(); k++) {
        const int out = g.nodes[(size_t)k].output;
        const int64_t b = plan.offset[(size_t)out], e = b + plan.bytes[(size_t)out];
        if (out == t || (b >= 0 && b < end && begin < e)) return false;
    }
    return true;
}

std::vector<int> library_calls_after(const Graph& g, int i, const std::function<bool(int)>& on_library, int max) {
    std::vector<int> calls;
    for (int j = i + 1; j < (int)g.nodes.size() && (int)calls.size() < max; j++) {
        const OpType op = g.nodes[(size_t)j].op;
        if ((op != OpType::conv2d && op != OpType::linear) || !on_library(j)) break;
        calls.push_back(j);
    }
    return calls;
}

}  // namespace resnest
