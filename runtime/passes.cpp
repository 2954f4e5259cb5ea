// passes.cpp: BN folding and conv fusions (see passes.h).
#include "passes.h"

#include <cmath>
#include <cstdio>
#include <set>

#include "parallel_for.h"
#include "resnest/error.h"
#include "weight_layout.h"

namespace resnest {

void graph_relink(Graph& g, const std::vector<bool>& dead) {
    std::vector<Node> nodes;
    for (size_t i = 0; i < g.nodes.size(); i++)
        if (!dead[i]) nodes.push_back(std::move(g.nodes[i]));
    g.nodes = std::move(nodes);

    // Keep the tensors the remaining nodes, the input and the outputs touch, in their old order.
    std::vector<bool> used(g.tensors.size(), false);
    used[g.input] = true;
    for (int t : g.outputs) used[t] = true;
    for (const Node& n : g.nodes) {
        used[n.output] = true;
        for (int t : n.inputs) used[t] = true;
    }
    std::vector<int> new_id(g.tensors.size(), -1);
    std::vector<TensorInfo> tensors;
    for (size_t t = 0; t < g.tensors.size(); t++) {
        if (!used[t]) continue;
        new_id[t] = (int)tensors.size();
        TensorInfo info = std::move(g.tensors[t]);
        info.producer = -1;
        info.consumers.clear();
        tensors.push_back(std::move(info));
    }
    g.tensors = std::move(tensors);
    g.input = new_id[g.input];
    for (int& t : g.outputs) t = new_id[t];
    g.weights.clear();
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& n = g.nodes[i];
        n.output = new_id[n.output];
        g.tensors[n.output].producer = (int)i;
        for (int& t : n.inputs) {
            t = new_id[t];
            g.tensors[t].consumers.push_back((int)i);
        }
        for (WeightRequirement& r : node_weight_requirements(n, (int)i)) g.weights.push_back(std::move(r));
    }
}

int sole_producer(const Graph& g, int t, int reader) {
    const TensorInfo& info = g.tensors[t];
    if (info.is_output || info.producer < 0 || info.consumers.size() != 1 || info.consumers[0] != reader) return -1;
    return info.producer;
}

namespace {

// scale = gamma / sqrt(var + eps), shift = beta - mean * scale, in double.
void bn_scale_shift_double(const Graph& g, const Node& n, const HostWeights& w, const char* gamma,
                           const char* beta, const char* mean, const char* var, float eps,
                           std::vector<double>& scale, std::vector<double>& shift) {
    const std::vector<float>& ga = w.tensors.at(n.weights.at(gamma));
    const std::vector<float>& be = w.tensors.at(n.weights.at(beta));
    const std::vector<float>& mu = w.tensors.at(n.weights.at(mean));
    const std::vector<float>& va = w.tensors.at(n.weights.at(var));
    scale.resize(ga.size());
    shift.resize(ga.size());
    for (size_t c = 0; c < ga.size(); c++) {
        double denom = (double)va[c] + eps;
        if (!(denom > 0.0))
            throw Error(g.source + ": node '" + n.name + "': tensor '" + n.weights.at(var) + "' holds variance " +
                        std::to_string(va[c]) + " at channel " + std::to_string(c) +
                        ", so variance + eps is not positive; the weights are corrupt");
        scale[c] = ga[c] / std::sqrt(denom);
        shift[c] = be[c] - mu[c] * scale[c];
    }
}

// Rows of `weight` (rows x row_len) scaled by scale[row]; bias' = bias * scale + shift (bias may be absent).
void fold_rows(const std::vector<float>& weight, const std::vector<float>* bias, const std::vector<double>& scale,
               const std::vector<double>& shift, std::vector<float>& weight_out, std::vector<float>& bias_out) {
    size_t rows = scale.size(), row_len = weight.size() / rows;
    weight_out.resize(weight.size());
    bias_out.resize(rows);
    for (size_t o = 0; o < rows; o++) {
        for (size_t k = 0; k < row_len; k++) weight_out[o * row_len + k] = (float)(weight[o * row_len + k] * scale[o]);
        bias_out[o] = (float)((bias ? (*bias)[o] : 0.0) * scale[o] + shift[o]);
    }
}

void note(PassLog* log, const std::string& line) {
    if (log) log->push_back(line);
}

}  // namespace

void batch_norm_scale_shift(const Graph& g, const Node& n, const HostWeights& w, std::vector<double>& scale,
                            std::vector<double>& shift) {
    bn_scale_shift_double(g, n, w, "weight", "bias", "running_mean", "running_var", n.bn.eps, scale, shift);
}

void split_attention_folded_fc1(const Graph& g, const Node& n, const HostWeights& w, std::vector<float>& weight,
                                std::vector<float>& bias) {
    const std::vector<float>& w1 = w.tensors.at(n.weights.at("fc1_weight"));
    const std::vector<float>* b1 = n.attn.fc1_bias ? &w.tensors.at(n.weights.at("fc1_bias")) : nullptr;
    if (n.attn.bn_folded) {
        weight = w1;
        bias = b1 ? *b1 : std::vector<float>(n.attn.inter_channels, 0.0f);
        return;
    }
    std::vector<double> scale, shift;
    bn_scale_shift_double(g, n, w, "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var", n.attn.eps, scale,
                          shift);
    fold_rows(w1, b1, scale, shift, weight, bias);
}

int fold_batch_norm(Graph& g, HostWeights& w, PassLog* log) {
    // Three phases, so that an error leaves g, w and the log as they were: the folds are decided in graph
    // order (nothing written), their arithmetic runs as parallel jobs (reading the original tensors, writing
    // the jobs' own vectors), and only when every job has succeeded are the graph, weights and log changed.
    struct FoldJob {
        int bn = -1, conv = -1;                   // conv = -1: a split attention's inner BN into its fc1
        std::string weight, bias;                 // the tensors folded ("" = no bias)
        std::string new_weight, new_bias;
        std::vector<float> weight_out, bias_out;  // filled by the job
    };
    std::vector<FoldJob> jobs;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const Node& bn = g.nodes[i];
        if (bn.op == OpType::split_attention && !bn.attn.bn_folded) {
            FoldJob job;
            job.bn = (int)i;
            job.new_weight = bn.name + ":folded_fc1_weight", job.new_bias = bn.name + ":folded_fc1_bias";
            jobs.push_back(std::move(job));
            continue;
        }
        if (bn.op != OpType::batch_norm) continue;
        int p = sole_producer(g, bn.inputs[0], (int)i);
        if (p < 0 || g.nodes[p].op != OpType::conv2d || g.nodes[p].fused_relu || g.nodes[p].inputs.size() != 1) continue;
        const Node& conv = g.nodes[p];
        FoldJob job;
        job.bn = (int)i, job.conv = p;
        job.weight = conv.weights.at("weight");
        job.bias = conv.conv.bias ? conv.weights.at("bias") : "";
        job.new_weight = conv.name + ":folded_weight", job.new_bias = conv.name + ":folded_bias";
        jobs.push_back(std::move(job));
    }
    // A corrupt variance is reported for the first such job in graph order, whichever thread meets it.
    parallel_for_each_index((int64_t)jobs.size(), [&](int64_t k) {
        FoldJob& job = jobs[k];
        const Node& bn = g.nodes[job.bn];
        if (job.conv < 0) {
            split_attention_folded_fc1(g, bn, w, job.weight_out, job.bias_out);
            return;
        }
        std::vector<double> scale, shift;
        bn_scale_shift_double(g, bn, w, "weight", "bias", "running_mean", "running_var", bn.bn.eps, scale, shift);
        fold_rows(w.tensors.at(job.weight), job.bias.empty() ? nullptr : &w.tensors.at(job.bias), scale, shift,
                  job.weight_out, job.bias_out);
    });
    std::vector<bool> dead(g.nodes.size(), false);
    for (FoldJob& job : jobs) {
        w.tensors[job.new_weight] = std::move(job.weight_out);
        w.tensors[job.new_bias] = std::move(job.bias_out);
        Node& bn = g.nodes[job.bn];
        if (job.conv >= 0) {
            Node& conv = g.nodes[job.conv];
            conv.weights["weight"] = job.new_weight;
            conv.weights["bias"] = job.new_bias;
            conv.conv.bias = true;
            conv.output = bn.output;
            dead[job.bn] = true;
            note(log, "fold_batch_norm: " + bn.name + " into " + conv.name);
            continue;
        }
        for (const char* role : {"bn_weight", "bn_bias", "bn_running_mean", "bn_running_var"}) bn.weights.erase(role);
        bn.weights["fc1_weight"] = job.new_weight;
        bn.weights["fc1_bias"] = job.new_bias;
        bn.attn.fc1_bias = true;
        bn.attn.bn_folded = true;
        note(log, "fold_batch_norm: " + bn.name + " inner BN into fc1");
    }
    graph_relink(g, dead);
    return (int)jobs.size();
}

int fuse_conv_residual_add(Graph& g, PassLog* log) {
    std::vector<bool> dead(g.nodes.size(), false);
    int fused = 0;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& add = g.nodes[i];
        if (add.op != OpType::add || add.inputs[0] == add.inputs[1]) continue;
        // The conv that runs last of the two takes the other input as z; that one is ready by then.
        int best = -1, z = -1;
        for (int k = 0; k < 2; k++) {
            int p = sole_producer(g, add.inputs[k], (int)i);
            if (p < 0 || dead[p]) continue;
            const Node& c = g.nodes[p];
            if (c.op != OpType::conv2d || c.fused_relu || c.inputs.size() != 1) continue;
            int other = add.inputs[1 - k];
            if (other != g.input && g.tensors[other].producer >= p) continue;
            if (p > best) best = p, z = other;
        }
        if (best < 0) continue;
        Node& conv = g.nodes[best];
        conv.inputs.push_back(z);
        conv.output = add.output;
        dead[i] = true;
        note(log, "fuse_conv_residual_add: " + add.name + " into " + conv.name + " (z = " + g.tensors[z].name + ")");
        fused++;
    }
    graph_relink(g, dead);
    return fused;
}

int fuse_conv_relu(Graph& g, PassLog* log) {
    std::vector<bool> dead(g.nodes.size(), false);
    int fused = 0;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& relu = g.nodes[i];
        if (relu.op != OpType::relu) continue;
        int p = sole_producer(g, relu.inputs[0], (int)i);
        if (p < 0 || g.nodes[p].op != OpType::conv2d || g.nodes[p].fused_relu) continue;
        Node& conv = g.nodes[p];
        conv.fused_relu = true;
        conv.output = relu.output;
        dead[i] = true;
        note(log, "fuse_conv_relu: " + relu.name + " into " + conv.name);
        fused++;
    }
    graph_relink(g, dead);
    return fused;
}

int fuse_split_attention_avg_pool(Graph& g, PassLog* log) {
    std::vector<bool> dead(g.nodes.size(), false);
    int fused = 0;
    for (size_t i = 0; i < g.nodes.size(); i++) {
        Node& pool = g.nodes[i];
        if (pool.op != OpType::avg_pool2d) continue;
        int p = sole_producer(g, pool.inputs[0], (int)i);
        if (p < 0 || g.nodes[p].op != OpType::split_attention || g.nodes[p].attn.fused_avg_pool) continue;
        Node& attn = g.nodes[p];
        attn.attn.fused_avg_pool = true;
        attn.attn.pool = pool.pool;
        attn.output = pool.output;
        dead[i] = true;
        note(log, "fuse_split_attention_avg_pool: " + pool.name + " into " + attn.name);
        fused++;
    }
    graph_relink(g, dead);
    return fused;
}

int pad_input_channels(Graph& g, HostWeights& w, int multiple, PassLog* log) {
    TensorInfo& in = g.tensors[g.input];
    const int c = (int)in.shape[0], padded = (c + multiple - 1) / multiple * multiple;
    if (padded == c || in.is_output || in.consumers.empty()) return c;
    for (int k : in.consumers) {
        const Node& n = g.nodes[k];
        if (n.op != OpType::conv2d || n.conv.groups != 1 || n.inputs[0] != g.input ||
            (n.inputs.size() > 1 && n.inputs[1] == g.input))
            return c;
    }
    for (int k : in.consumers) {
        Node& n = g.nodes[k];
        const Conv2dAttrs& a = n.conv;
        std::string name = n.name + ":padded_weight";
        w.tensors[name] = conv_weight_pad_in_channels(w.tensors.at(n.weights.at("weight")), a.out_channels, c, padded,
                                                      a.kernel_h, a.kernel_w);
        n.weights["weight"] = name;
        n.conv.in_channels = padded;
        note(log, "pad_input_channels: " + n.name + " reads the input widened from " + std::to_string(c) + " to " +
                      std::to_string(padded) + " channels (zero filter weights there)");
    }
    in.shape[0] = padded;
    graph_relink(g, std::vector<bool>(g.nodes.size(), false));  // the weight requirements follow the new shapes
    return padded;
}

int drop_unread_weights(const Graph& g, HostWeights& w) {
    std::set<std::string> read;
    for (const WeightRequirement& r : g.weights) read.insert(r.tensor);
    int erased = 0;
    for (auto it = w.tensors.begin(); it != w.tensors.end();) {
        if (read.count(it->first)) {
            ++it;
            continue;
        }
        it = w.tensors.erase(it);
        erased++;
    }
    return erased;
}

void run_graph_passes(Graph& g, HostWeights& w, PassLog* log) {
    fold_batch_norm(g, w, log);
    fuse_conv_residual_add(g, log);
    fuse_conv_relu(g, log);
    fuse_split_attention_avg_pool(g, log);
}

}  // namespace resnest
