// engine.cpp: the public API's entry points: option names, inspect_model, and Engine::load, which
// validates graph and weights and hands them to a backend.
#include "resnest/engine.h"

#include <chrono>
#include <cstdlib>
#include <cstdio>

#include "cpu/cpu_backend.h"
#ifdef RESNEST_HAVE_CUDA
#include "cuda/cuda_backend.h"
#endif
#include "fusion_pairs.h"
#include "graph.h"
#include "passes.h"
#include "planner.h"
#include "safetensors.h"
#include "seeded_weights.h"
#include "weights.h"

namespace resnest {

const char* backend_name(Backend b) { return b == Backend::cpu ? "cpu" : "cuda"; }

const char* precision_name(Precision p) {
    switch (p) {
        case Precision::fp32: return "fp32";
        case Precision::tf32: return "tf32";
        case Precision::fp16: return "fp16";
    }
    return "?";
}

Backend parse_backend(const std::string& name) {
    if (name == "cpu") return Backend::cpu;
    if (name == "cuda") return Backend::cuda;
    throw Error("unknown backend '" + name + "' (use cpu or cuda)");
}

Precision parse_precision(const std::string& name) {
    if (name == "fp32") return Precision::fp32;
    if (name == "tf32") return Precision::tf32;
    if (name == "fp16") return Precision::fp16;
    throw Error("unknown precision '" + name + "' (use fp32, tf32 or fp16)");
}

static ModelSummary summarize(const Graph& g) {
    ModelSummary s;
    s.name = g.name;
    s.graph_path = g.source;
    s.input_shape = g.input_shape;
    s.num_outputs = shape_numel(g.tensors[g.outputs[0]].shape);
    s.params = g.params;
    s.macs = g.macs;
    s.arena_bytes_batch1 = plan_memory(g, 1, sizeof(float)).arena_bytes;
    s.weight_tensors = (int64_t)g.weights.size();
    std::vector<int64_t> node_params(g.nodes.size(), 0);
    for (const WeightRequirement& w : g.weights)
        if (w.trainable) node_params[w.node] += shape_numel(w.shape);
    for (size_t i = 0; i < g.nodes.size(); i++) {
        const Node& n = g.nodes[i];
        s.nodes.push_back({n.name, fused_op_name(n), g.tensors[n.output].shape, node_params[i], n.macs});
    }
    return s;
}

ModelSummary inspect_model(const std::string& graph_path) { return summarize(graph_load(graph_path)); }

// The rewrites an engine with these options makes before its backend prepares the graph (passes.h), in
// their order; the log gets one line each. Returns false when the options turn the passes off.
static bool run_load_passes(Graph& graph, HostWeights& weights, const EngineOptions& options, PassLog* log) {
    bool passes = options.passes == 1 || (options.passes == -1 && options.backend == Backend::cuda);
    // Experimental until measured: each radix split of the chosen blocks in tensors of its own.
    const int64_t radix_split = radix_split_from(std::getenv("RESNEST_RADIX_SPLIT"));
    if (radix_split != 0 && !passes)
        std::fprintf(stderr, "resnest: warning: RESNEST_RADIX_SPLIT is set but the graph passes are off "
                             "(the CPU backend's default; --passes on turns them on): the graph runs unsplit\n");
    if (!passes) return false;
    run_graph_passes(graph, weights, log);
    if (radix_split != 0) split_radix_convolutions(graph, weights, radix_split, log);
    // fp16 and tf32 tensor cores read the first convolution's input in 16-byte channel groups.
    if (options.backend == Backend::cuda && options.precision != Precision::fp32)
        pad_input_channels(graph, weights, options.precision == Precision::fp16 ? 8 : 4, log);
    drop_unread_weights(graph, weights);  // the engine keeps one host copy of each weight
    return true;
}

ModelSummary inspect_runtime_graph(const std::string& graph_path, Precision precision) {
    Graph graph = graph_load(graph_path);
    HostWeights weights = make_seeded_weights(graph, 1);  // the rewrites' shapes never depend on the values
    EngineOptions options;
    options.backend = Backend::cuda;
    options.precision = precision;
    options.passes = 1;
    PassLog log;
    run_load_passes(graph, weights, options, &log);
    ModelSummary s = summarize(graph);
    s.params = 0;  // what the rewritten nodes hold (folded biases in place of BN gamma and beta)
    for (const NodeSummary& n : s.nodes) s.params += n.params;
    s.passes = std::move(log);
    if (precision == Precision::fp16) s.folds = conv_fold_candidates(graph);
    return s;
}

WeightsReport check_weights(const std::string& graph_path, const std::string& weights_path) {
    Graph graph = graph_load(graph_path);
    std::shared_ptr<SafetensorsFile> file = SafetensorsFile::open(weights_path);
    HostWeights weights = bind_weights(graph, *file);
    WeightsReport report;
    report.tensors_checked = (int64_t)weights.tensors.size();
    for (const SafetensorsTensor& t : file->tensors())
        if (!weights.tensors.count(t.name)) report.unused.push_back(t.name);
    for (const auto& kv : file->metadata()) report.metadata.push_back(kv);
    return report;
}

int conv_workspace_mib_for(const EngineOptions& options) {
    if (options.conv_workspace_mib >= 0) return options.conv_workspace_mib;
    return options.precision == Precision::fp32 ? 1024 : 128;
}

static void check_options(const EngineOptions& options) {
    if (options.max_batch < 1 || options.max_batch > 65536)
        throw Error("max_batch " + std::to_string(options.max_batch) + " is outside [1, 65536]");
    if (options.passes < -1 || options.passes > 1)
        throw Error("EngineOptions::passes is " + std::to_string(options.passes) + "; use -1, 0 or 1");
    if (options.conv_search != "find" && options.conv_search != "timed")
        throw Error("EngineOptions::conv_search is '" + options.conv_search + "'; use find or timed");
    if (options.conv_gemm != "auto" && options.conv_gemm != "on" && options.conv_gemm != "off")
        throw Error("EngineOptions::conv_gemm is '" + options.conv_gemm + "'; use auto, on or off");
    if (options.conv_graph != "auto" && options.conv_graph != "on" && options.conv_graph != "off")
        throw Error("EngineOptions::conv_graph is '" + options.conv_graph + "'; use auto, on or off");
    if (options.conv_workspace_mib < -1 || options.conv_workspace_mib > 65536)
        throw Error("EngineOptions::conv_workspace_mib is " + std::to_string(options.conv_workspace_mib) +
                    "; use 0..65536 (MiB), or -1 for the precision's default");
    if (options.backend == Backend::cuda) {
        if (!cuda_backend_built()) throw Error("this build has no CUDA backend; use --backend cpu");
        return;
    }
    if (options.precision != Precision::fp32)
        throw Error(std::string("the CPU backend runs fp32 only, not ") + precision_name(options.precision));
}

using load_clock = std::chrono::steady_clock;

static double seconds_since(load_clock::time_point t) {
    return std::chrono::duration<double>(load_clock::now() - t).count();
}

// What a load does before it reaches the backend runs beside CUDA's initialisation (CudaInitialization).
struct CudaStartup {
#ifdef RESNEST_HAVE_CUDA
    std::unique_ptr<CudaInitialization> init;
    explicit CudaStartup(const EngineOptions& o) {
        if (o.backend == Backend::cuda) init = std::make_unique<CudaInitialization>(o.device);
    }
    void log(const EngineOptions& o) {
        if (!init) return;
        init->wait();
        if (o.verbose)
            std::fprintf(stderr,
                         "load: CUDA context on device %d created in %.3f s and %d of cuDNN's %zu sub-libraries "
                         "loaded in %.3f s, each on a thread of its own beside the host's part of the load\n",
                         o.device, init->seconds(), init->cudnn_preloaded(), cudnn_sublibraries().size(),
                         init->cudnn_seconds());
    }
#else
    explicit CudaStartup(const EngineOptions&) {}
    void log(const EngineOptions&) {}
#endif
};

// Hands a validated graph and its weights to the backend; logs the plan and how long each step of the load
// took when verbose (t_load: when the load began; t_weights: when the graph was parsed; cuda: the CUDA
// initialisation started beside the load, waited for here).
static std::shared_ptr<Engine> create_engine(Graph graph, HostWeights weights, const std::string& weights_source,
                                             const EngineOptions& options, load_clock::time_point t_load,
                                             load_clock::time_point t_weights, CudaStartup& cuda) {
    auto t0 = load_clock::now();
    ModelSummary summary = summarize(graph);
    if (options.verbose) {
        std::fprintf(stderr, "load: %s: %zu nodes, %lld params, %.3f GMACs/image\n", graph.source.c_str(),
                     graph.nodes.size(), (long long)graph.params, graph.macs / 1e9);
        std::fprintf(stderr, "load: %s: %zu tensors bound, %d in the file unused\n", weights_source.c_str(),
                     graph.weights.size(), weights.unused_in_file);
    }
    if (options.verbose)
        std::fprintf(stderr, "load: graph parsed in %.3f s, weights %s in %.3f s\n",
                     std::chrono::duration<double>(t_weights - t_load).count(),
                     weights_source.rfind("seeded", 0) == 0 ? "drawn" : "read",
                     std::chrono::duration<double>(t0 - t_weights).count());
    PassLog log;
    auto t_passes = load_clock::now();
    if (run_load_passes(graph, weights, options, &log) && options.verbose) {
        for (const std::string& line : log) std::fprintf(stderr, "pass: %s\n", line.c_str());
        std::fprintf(stderr, "pass: %zu rewrites; %zu nodes run; %.3f s\n", log.size(), graph.nodes.size(),
                     seconds_since(t_passes));
    }
    if (options.verbose && options.backend == Backend::cpu) {  // the CUDA engine logs its own, in its precision
        MemoryPlan plan = plan_memory(graph, options.max_batch, sizeof(float));
        std::fprintf(stderr, "plan: batch %d, fp32: arena %.2f MiB, placed %s (at least %.2f MiB alive at one node; "
                     "%d outputs written in place; %.2f MiB without reuse)\n", plan.batch, plan.arena_bytes / 1048576.0,
                     plan.placement.c_str(), plan.peak_live_bytes / 1048576.0, plan.in_place, plan.naive_bytes / 1048576.0);
    }
    std::shared_ptr<Engine> engine;
#ifdef RESNEST_HAVE_CUDA
    if (options.backend == Backend::cuda)
        engine = cuda_engine_create(std::move(graph), std::move(weights), options, summary, log);
#endif
    if (!engine) engine = cpu_engine_create(std::move(graph), std::move(weights), options, summary, log);
    if (options.verbose)
        std::fprintf(stderr, "load: backend ready in %.3f s; %.3f s since the load began\n", seconds_since(t0),
                     seconds_since(t_load));
    cuda.log(options);
    return engine;
}

#ifndef RESNEST_HAVE_CUDA
bool cuda_backend_built() { return false; }
int cuda_device_count() { return 0; }
DeviceInfo cuda_device_info(int) { throw Error("this build has no CUDA backend"); }
#endif

int cuda_max_batch(const std::string& graph_path) { return cuda_batch_limit(graph_load(graph_path)).batch; }

std::shared_ptr<Engine> Engine::load(const std::string& graph_path, const std::string& weights_path,
                                     const EngineOptions& options) {
    auto t_load = load_clock::now();
    check_options(options);
    CudaStartup cuda(options);
    Graph graph = graph_load(graph_path);
    auto t_weights = load_clock::now();
    std::shared_ptr<SafetensorsFile> file = SafetensorsFile::open(weights_path);
    HostWeights weights = bind_weights(graph, *file);
    return create_engine(std::move(graph), std::move(weights), weights_path, options, t_load, t_weights, cuda);
}

std::shared_ptr<Engine> Engine::load_seeded(const std::string& graph_path, uint64_t seed,
                                            const EngineOptions& options) {
    auto t_load = load_clock::now();
    check_options(options);
    CudaStartup cuda(options);
    Graph graph = graph_load(graph_path);
    auto t_weights = load_clock::now();
    HostWeights weights = make_seeded_weights(graph, seed);
    return create_engine(std::move(graph), std::move(weights), "seeded weights (seed " + std::to_string(seed) + ")",
                         options, t_load, t_weights, cuda);
}

}  // namespace resnest
