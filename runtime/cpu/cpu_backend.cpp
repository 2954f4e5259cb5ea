// cpu_backend.cpp: runs a graph on the CPU: nodes in order, every image of the batch per node, tensors
// (N, C, H, W) at their planned offsets in one float arena per context.
#include "cpu/cpu_backend.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <new>
#include <thread>

#include "context_checks.h"
#include "cpu/cpu_ops.h"

namespace resnest {

namespace {

// Per-node parameters, resolved once at load.
struct PreparedNode {
    const float* weight = nullptr;  // conv2d / linear
    const float* bias = nullptr;
    std::vector<float> bn_scale, bn_shift;  // batch_norm, or split_attention's inner BN
    SplitAttentionWeights attn{};
};

void bn_scale_shift(const Graph& g, const Node& n, const HostWeights& w, const char* gamma, const char* beta,
                    const char* mean, const char* var, float eps, PreparedNode& p) {
    const float* ga = w.find(n, gamma);
    const float* be = w.find(n, beta);
    const float* mu = w.find(n, mean);
    const float* va = w.find(n, var);
    size_t c = w.tensors.at(n.weights.at(gamma)).size();
    p.bn_scale.resize(c);
    p.bn_shift.resize(c);
    for (size_t i = 0; i < c; i++) {
        double denom = (double)va[i] + eps;
        if (!(denom > 0.0))
            throw Error(g.source + ": node '" + n.name + "': tensor '" + n.weights.at(var) + "' holds variance " +
                        std::to_string(va[i]) + " at channel " + std::to_string(i) +
                        ", so variance + eps is not positive; the weights are corrupt");
        double scale = ga[i] / std::sqrt(denom);
        p.bn_scale[i] = (float)scale;
        p.bn_shift[i] = (float)(be[i] - mu[i] * scale);
    }
}

class CpuEngine : public Engine, public std::enable_shared_from_this<CpuEngine> {
  public:
    CpuEngine(Graph graph, HostWeights weights, const EngineOptions& options, const ModelSummary& summary)
        : graph_(std::move(graph)), weights_(std::move(weights)) {
        options_ = options;
        summary_ = summary;
        if (options_.threads <= 0) options_.threads = std::max(1u, std::thread::hardware_concurrency());
        prepared_.resize(graph_.nodes.size());
        for (size_t i = 0; i < graph_.nodes.size(); i++) prepare(graph_.nodes[i], prepared_[i]);
        plan_ = plan_memory(graph_, options_.max_batch, sizeof(float));
        for (const Node& n : graph_.nodes) {
            if (n.op == OpType::split_attention && n.attn.fused_avg_pool) {
                const Shape& x = graph_.tensors[n.inputs[0]].shape;
                workspace_floats_ = std::max<size_t>(workspace_floats_, (size_t)(n.attn.channels * x[1] * x[2]));
            }
            if (n.op != OpType::conv2d) continue;
            const Shape& x = graph_.tensors[n.inputs[0]].shape;
            const Shape& y = graph_.tensors[n.output].shape;
            workspace_floats_ = std::max(workspace_floats_, conv2d_workspace_floats(n.conv, x[1], x[2], y[1], y[2]));
        }
    }

    std::unique_ptr<Context> create_context() const override;
    void set_pass_log(std::vector<std::string> log) { pass_log_ = std::move(log); }

    const Graph& graph() const { return graph_; }
    const MemoryPlan& plan() const { return plan_; }
    const PreparedNode& prepared(size_t i) const { return prepared_[i]; }
    size_t workspace_floats() const { return workspace_floats_; }

  private:
    void prepare(const Node& n, PreparedNode& p) {
        const HostWeights& w = weights_;
        switch (n.op) {
            case OpType::conv2d:
            case OpType::linear:
                p.weight = w.find(n, "weight");
                p.bias = w.find(n, "bias");
                break;
            case OpType::batch_norm:
                bn_scale_shift(graph_, n, w, "weight", "bias", "running_mean", "running_var", n.bn.eps, p);
                break;
            case OpType::split_attention:
                if (n.attn.bn_folded) {  // fc1 carries the BN (passes.h)
                    p.bn_scale.assign(n.attn.inter_channels, 1.0f);
                    p.bn_shift.assign(n.attn.inter_channels, 0.0f);
                } else {
                    bn_scale_shift(graph_, n, w, "bn_weight", "bn_bias", "bn_running_mean", "bn_running_var",
                                   n.attn.eps, p);
                }
                p.attn = {w.find(n, "fc1_weight"), w.find(n, "fc1_bias"), p.bn_scale.data(), p.bn_shift.data(),
                          w.find(n, "fc2_weight"), w.find(n, "fc2_bias")};
                break;
            default:
                break;
        }
    }

    Graph graph_;
    HostWeights weights_;
    std::vector<PreparedNode> prepared_;
    MemoryPlan plan_;
    size_t workspace_floats_ = 0;
};

class CpuContext : public Context {
  public:
    explicit CpuContext(std::shared_ptr<const CpuEngine> engine) : engine_(std::move(engine)) {
        const size_t arena = engine_->plan().arena_bytes / sizeof(float) + 1;
        try {
            arena_.resize(arena);
            workspace_.resize(engine_->workspace_floats() + 1);
        } catch (const std::bad_alloc&) {
            throw Error("cannot allocate the CPU backend's activation arena and workspace (" +
                        std::to_string((arena + engine_->workspace_floats()) * sizeof(float) >> 20) + " MiB at batch " +
                        std::to_string(engine_->options().max_batch) + ") in host memory; lower --batch");
        }
    }

    void run(const float* input, int batch, float* output) override {
        const Graph& g = engine_->graph();
        if (!input || !output) throw Error("Context::run: input and output must not be null");
        check_batch(batch, "run");
        output_ready_ = false;  // the arena now holds this input's activations, not the loaded one's
        for (size_t i = 0; i < g.nodes.size(); i++) run_node(i, input, batch);
        int out = g.outputs[0];
        std::memcpy(output, tensor(out, input), shape_numel(g.tensors[out].shape) * batch * sizeof(float));
    }

    void set_input(const float* input, int batch) override {
        check_batch(batch, "set_input");
        if (!input) throw Error("Context::set_input: input must not be null");
        loaded_.assign(input, input + shape_numel(engine_->graph().input_shape) * batch);
        loaded_batch_ = batch;
        output_ready_ = false;
    }

    RunTiming run_loaded(int batch) override {
        check_loaded(batch, "run_loaded");
        auto t0 = std::chrono::steady_clock::now();
        const Graph& g = engine_->graph();
        output_ready_ = false;
        for (size_t i = 0; i < g.nodes.size(); i++) run_node(i, loaded_.data(), batch);
        output_ready_ = true;
        double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return {ms, ms};
    }

    void get_output(float* output, int batch) override {
        check_loaded(batch, "get_output");
        check_context_output(output, output_ready_);
        const Graph& g = engine_->graph();
        int out = g.outputs[0];
        std::memcpy(output, tensor(out, loaded_.data()), shape_numel(g.tensors[out].shape) * batch * sizeof(float));
    }

  private:
    void check_batch(int batch, const char* what) const {
        check_context_batch(batch, engine_->options().max_batch, what);
    }
    void check_loaded(int batch, const char* what) const {
        check_context_loaded(batch, engine_->options().max_batch, loaded_batch_, what);
    }

    const float* tensor(int t, const float* input) const {
        if (t == engine_->graph().input) return input;
        return arena_.data() + engine_->plan().offset[t] / (int64_t)sizeof(float);
    }
    float* tensor(int t) { return arena_.data() + engine_->plan().offset[t] / (int64_t)sizeof(float); }

    void run_node(size_t i, const float* input, int batch) {
        const Graph& g = engine_->graph();
        const Node& n = g.nodes[i];
        const PreparedNode& p = engine_->prepared(i);
        const Shape& xs = g.tensors[n.inputs[0]].shape;
        const Shape& ys = g.tensors[n.output].shape;
        const int64_t x_numel = shape_numel(xs), y_numel = shape_numel(ys);
        const float* x = tensor(n.inputs[0], input);
        float* y = tensor(n.output);
        const int threads = engine_->options().threads;
        for (int b = 0; b < batch; b++) {
            const float* xb = x + b * x_numel;  // (C, H, W) or (C)
            float* yb = y + b * y_numel;
            switch (n.op) {
                case OpType::conv2d:
                    conv2d_im2col_gemm(n.conv, xb, xs[1], xs[2], p.weight, p.bias, yb, ys[1], ys[2], workspace_.data(),
                                       threads);
                    if (n.inputs.size() > 1) add_tensors(yb, tensor(n.inputs[1], input) + b * y_numel, yb, y_numel);
                    if (n.fused_relu) relu_inplace(yb, y_numel);
                    break;
                case OpType::batch_norm:
                    batch_norm_affine(xb, p.bn_scale.data(), p.bn_shift.data(), xs[0], x_numel / xs[0], yb);
                    break;
                case OpType::relu:
                    if (yb != xb) std::memcpy(yb, xb, x_numel * sizeof(float));
                    relu_inplace(yb, x_numel);
                    break;
                case OpType::max_pool2d:
                    max_pool2d(n.pool, xb, xs[0], xs[1], xs[2], yb, ys[1], ys[2]);
                    break;
                case OpType::avg_pool2d:
                    avg_pool2d(n.pool, xb, xs[0], xs[1], xs[2], yb, ys[1], ys[2]);
                    break;
                case OpType::split_attention: {
                    // U's radix splits: planes of one input, or one input each (split_radix_convolutions).
                    std::vector<const float*> splits(n.attn.radix);
                    const bool apart = n.inputs.size() > 1;
                    for (int r = 0; r < n.attn.radix; r++)
                        splits[r] = apart ? tensor(n.inputs[r], input) + b * x_numel
                                          : xb + (int64_t)r * n.attn.channels * xs[1] * xs[2];
                    if (n.attn.fused_avg_pool) {  // into scratch, then the avd pool into y
                        float* full = workspace_.data();
                        split_attention(n.attn, p.attn, splits.data(), xs[1] * xs[2], full);
                        avg_pool2d(n.attn.pool, full, ys[0], xs[1], xs[2], yb, ys[1], ys[2]);
                    } else {
                        split_attention(n.attn, p.attn, splits.data(), xs[1] * xs[2], yb);
                    }
                    break;
                }
                case OpType::add:
                    add_tensors(xb, tensor(n.inputs[1], input) + b * x_numel, yb, x_numel);
                    break;
                case OpType::global_avg_pool:
                    global_avg_pool(xb, xs[0], xs[1] * xs[2], yb);
                    break;
                case OpType::linear:
                    linear(n.linear, xb, p.weight, p.bias, yb);
                    break;
                case OpType::softmax:
                    softmax_vector(xb, x_numel, yb);
                    break;
            }
        }
    }

    std::shared_ptr<const CpuEngine> engine_;
    std::vector<float> arena_;
    std::vector<float> workspace_;
    std::vector<float> loaded_;  // set_input's copy
    int loaded_batch_ = 0;
    bool output_ready_ = false;  // run_loaded ran on what set_input loaded (and run() has not run since)
};

std::unique_ptr<Context> CpuEngine::create_context() const {
    return std::make_unique<CpuContext>(shared_from_this());
}

}  // namespace

std::shared_ptr<Engine> cpu_engine_create(Graph graph, HostWeights weights, const EngineOptions& options,
                                          const ModelSummary& summary, std::vector<std::string> pass_log) {
    auto engine = std::make_shared<CpuEngine>(std::move(graph), std::move(weights), options, summary);
    engine->set_pass_log(std::move(pass_log));
    return engine;
}

}  // namespace resnest
