// cmd_bench.cpp: `resnest bench`: latency percentiles and throughput per batch size, with seeded weights
// generated in the engine unless a weight file is given; a table on stdout and, with --json, a record of
// the configuration, machine, commit and raw samples.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "cli/cli.h"
#include "conv_algo_cache.h"
#include "resnest/engine.h"
#include "seeded_weights.h"

namespace resnest_cli {

static const char* kBenchHelp =
    "usage: resnest bench --model M.json [--weights W.safetensors | --random-weights [--seed S]]\n"
    "                     [--backend cpu|cuda] [--precision fp32|tf32|fp16] [--device N]\n"
    "                     [--batch 1,4,8,32,128] [--warmup N] [--iters N | --duration SECONDS] [--streams N]\n"
    "                     [--no-graph] [--no-pdl] [--passes auto|on|off] [--algo-cache FILE|none] [--profile]\n"
    "                     [--conv-search find|timed] [--conv-gemm auto|on|off] [--conv-graph auto|on|off]\n"
    "                     [--conv-workspace auto|MIB] [--threads T] [--reload] [--json FILE]\n"
    "\n"
    "Times the forward pass at each batch size on input already on the device: latency min / p50 / p90 / p99 /\n"
    "mean on the device's clock (CUDA events; the CPU backend's wall time) and the host-observed p50 (launch\n"
    "to result), throughput, achieved TFLOP/s (2 x conv and linear MACs) and its share of the card's peak,\n"
    "device memory, load + plan time and the time to the first result. Without --weights the engine draws\n"
    "seeded random weights itself (the values random_weights.py --seed writes), so no file is needed.\n"
    "\n"
    "  --batch LIST     comma-separated batch sizes (default 1)\n"
    "  --warmup N       untimed runs per batch size first (default 10 on cuda, 2 on cpu)\n"
    "  --iters N        timed runs per batch size (default 200 on cuda, 20 on cpu)\n"
    "  --duration S     instead of --iters: time runs for S seconds per batch size (at least 3 runs)\n"
    "  --streams N      cuda: also run N contexts (one stream and thread each) at once and report their\n"
    "                   combined throughput\n"
    "  --no-graph       cuda: launch node by node instead of replaying the captured CUDA graph\n"
    "  --no-pdl         cuda: launch the runtime's kernels the ordinary way, not as programmatic dependent\n"
    "                   launches (the default where the kernels run as sm_90 code or later)\n"
    "  --conv-search S  cuda: convolution algorithms ranked by cuDNN's Find (find) or by timing the node's call\n"
    "  --conv-gemm G    cuda: convolutions as cuBLASLt matmuls (1x1 directly, others over im2col, dense or one\n"
    "                   matmul per group) where faster (auto), always in the dense form (on), never (off)\n"
    "  --conv-graph G   cuda: convolutions through cuDNN's fused operation graph where faster (auto), always\n"
    "                   (on), never (off)\n"
    "  --conv-workspace MIB cuda: each context's convolution workspace; algorithms needing more are not\n"
    "                   considered (auto, the default: 1024 for fp32, 128 for tf32 and fp16)\n"
    "  --profile        per-node device time (replayed in a CUDA graph with events between nodes, and\n"
    "                   eager launches), TFLOP/s, GB/s, sorted, and the distance from the roofline floor\n"
    "  --reload         after the cold start, time a second load + plan to the first result in this process\n"
    "                   (the runtime initialised, the algorithm cache as the first load left it)\n"
    "  --json FILE      also write the configuration, machine, commit and every sample as JSON\n";

namespace {

std::vector<int> parse_batches(const std::string& text) {
    std::vector<int> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        bool digits = !item.empty() && item.size() <= 5 &&
                      std::all_of(item.begin(), item.end(), [](char c) { return c >= '0' && c <= '9'; });
        int v = digits ? std::stoi(item) : 0;
        if (v < 1 || v > 4096) throw UsageError{"--batch takes comma-separated sizes in [1, 4096], got '" + text + "'"};
        out.push_back(v);
    }
    if (out.empty()) throw UsageError{"--batch takes comma-separated sizes in [1, 4096], got '" + text + "'"};
    return out;
}

std::string cpu_model_name() {
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos)
            return line.substr(line.find(':') + 2);
    return "unknown CPU";
}

// The process's peak resident set (VmHWM), bytes; 0 where /proc does not say.
int64_t peak_rss_bytes() {
    std::ifstream f("/proc/self/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
    return 0;
}

// Seconds from this process's start (its exec: the dynamic loading of the libraries it links, cuBLAS and
// cuDNN among them, comes after) to now, to the kernel's clock tick (10 ms); -1 where /proc does not say.
double seconds_since_process_start() {
    std::ifstream f("/proc/self/stat");
    const std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    const size_t name_end = stat.rfind(')');  // the command name (field 2) may hold spaces and parentheses
    if (name_end == std::string::npos) return -1.0;
    std::istringstream fields(stat.substr(name_end + 1));
    std::string field;
    for (int i = 3; i <= 22 && fields >> field; i++)  // field 22: the start time, clock ticks after boot
        if (i == 22) {
            timespec now{};
            const long hz = sysconf(_SC_CLK_TCK);
            if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &now) != 0) return -1.0;
            const double start = std::strtod(field.c_str(), nullptr) / (double)hz;
            const double age = (double)now.tv_sec + 1e-9 * (double)now.tv_nsec - start;
            return age >= 0.0 ? age : -1.0;
        }
    return -1.0;
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

// The diagnostic environment variables that change how the CUDA backend runs (README), those set: a row
// measured under one of them says so, on the screen and in the JSON.
std::vector<std::pair<std::string, std::string>> diagnostic_environment() {
    std::vector<std::pair<std::string, std::string>> set;
    for (const char* name : {"RESNEST_ATTENTION_POOL", "RESNEST_CHOICE_TIMING", "RESNEST_SPLIT_K",
                             "RESNEST_RADIX_SPLIT", "RESNEST_IMPLICIT_GEMM", "RESNEST_WEIGHT_PREFETCH",
                             "RESNEST_L2_WEIGHTS", "RESNEST_CUDA_DEBUG"})
        if (const char* v = std::getenv(name)) set.emplace_back(name, v);
    return set;
}

}  // namespace

namespace {

// Runs `contexts` at once, one thread each, for `iters` runs each; returns images per second overall.
double concurrent_throughput(std::vector<std::unique_ptr<resnest::Context>>& contexts, const std::vector<float>& input,
                             int batch, int iters) {
    for (auto& c : contexts) {
        c->set_input(input.data(), batch);
        c->run_loaded(batch);  // prepares the batch size outside the timed region
    }
    std::vector<std::thread> threads;
    std::vector<std::string> errors(contexts.size());
    auto start = std::chrono::steady_clock::now();
    for (size_t k = 0; k < contexts.size(); k++)
        threads.emplace_back([&, k] {
            try {
                for (int i = 0; i < iters; i++) contexts[k]->run_loaded(batch);
            } catch (const std::exception& e) {
                errors[k] = e.what();
            }
        });
    for (auto& t : threads) t.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (const std::string& e : errors)
        if (!e.empty()) throw resnest::Error("concurrent run: " + e);
    return (double)contexts.size() * iters * batch / s;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--model", true}, {"--weights", true}, {"--random-weights", false}, {"--seed", true},
                            {"--backend", true}, {"--precision", true}, {"--passes", true}, {"--no-graph", false}, {"--no-pdl", false},
                            {"--algo-cache", true}, {"--conv-search", true}, {"--conv-gemm", true}, {"--conv-graph", true}, {"--conv-workspace", true}, {"--batch", true}, {"--warmup", true}, {"--iters", true},
                            {"--duration", true}, {"--threads", true}, {"--device", true}, {"--streams", true},
                            {"--profile", false}, {"--reload", false}, {"--json", true}, {"--verbose", false},
                            {"--help", false}},
                           false);
    if (args.has("--help")) {
        std::fputs(kBenchHelp, stdout);
        return 0;
    }
    const std::string model = args.require("--model");
    if (args.has("--weights") && (args.has("--random-weights") || args.has("--seed")))
        throw UsageError{"give either --weights or --random-weights [--seed], not both"};
    if (args.has("--iters") && args.has("--duration")) throw UsageError{"give either --iters or --duration, not both"};
    resnest::EngineOptions opt = engine_options_from_args(args);
    const bool cuda = opt.backend == resnest::Backend::cuda;
    const std::vector<int> batches = parse_batches(args.get("--batch", "1"));
    const int warmup = args.get_int("--warmup", cuda ? 10 : 2, 0, 100000);
    const int iters = args.get_int("--iters", cuda ? 200 : 20, 1, 1000000);
    const int duration_s = args.get_int("--duration", 0, 1, 3600);
    const int seed = args.get_int("--seed", 1, 0, 1 << 30);
    const int streams = args.get_int("--streams", 1, 1, 64);
    if (streams > 1 && !cuda) throw UsageError{"--streams needs --backend cuda"};
    if (args.has("--json"))
        check_output_path(args.get("--json"), "--json", {{"--model", model}, {"--weights", args.get("--weights", "")}});
    opt.max_batch = *std::max_element(batches.begin(), batches.end());
    const int threads = opt.threads ? opt.threads : (int)std::max(1u, std::thread::hardware_concurrency());
    const std::string weights_desc =
        args.has("--weights") ? args.get("--weights") : "seeded random weights, seed " + std::to_string(seed);

    // Cold start is timed from here: CUDA's initialisation counts, as it does for a process that starts, loads
    // and answers (Engine::load runs it beside the host's part of the load).
    using clock = std::chrono::steady_clock;
    auto load = [&] {
        return args.has("--weights") ? resnest::Engine::load(model, args.get("--weights"), opt)
                                     : resnest::Engine::load_seeded(model, (uint64_t)seed, opt);
    };
    auto t0 = clock::now();
    auto engine = load();
    auto ctx = engine->create_context();
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    resnest::DeviceInfo dev;
    if (cuda) dev = resnest::cuda_device_info(opt.device);  // the engine's device, initialised by now
    const std::string precision = resnest::precision_name(opt.precision);
    const double peak = cuda ? resnest::card_peak_tflops(dev.name, precision) : 0.0;
    const double peak_bw = cuda ? resnest::card_peak_bandwidth_tbs(dev.name) : 0.0;
    const resnest::ModelSummary& s = engine->summary();
    const int64_t per_image = s.input_shape[0] * s.input_shape[1] * s.input_shape[2];
    std::vector<float> input = resnest::seeded_uniform((uint64_t)seed, "input", per_image * opt.max_batch, -2.0, 2.0);
    std::vector<float> output((size_t)s.num_outputs * opt.max_batch);
    // Time to the first result: load + plan above, then the first batch's preparation (algorithm choice,
    // graph capture) and run.
    ctx->set_input(input.data(), batches[0]);
    ctx->run_loaded(batches[0]);
    const double first_result_s = std::chrono::duration<double>(clock::now() - t0).count();
    const double process_first_result_s = seconds_since_process_start();
    // --reload: the same again in this process, CUDA (or the CPU backend) already up and the algorithm cache
    // as the first load left it: what loading a further model costs a running server.
    double reload_s = -1.0;
    if (args.has("--reload")) {
        auto t1 = clock::now();
        auto again = load();
        auto again_ctx = again->create_context();
        again_ctx->set_input(input.data(), batches[0]);
        again_ctx->run_loaded(batches[0]);
        reload_s = std::chrono::duration<double>(clock::now() - t1).count();
    }
    char process_note[96] = "";
    if (process_first_result_s >= 0.0)
        std::snprintf(process_note, sizeof(process_note), " (%.2f s since the process started)", process_first_result_s);
    char reload_note[96] = "";
    if (reload_s >= 0.0)
        std::snprintf(reload_note, sizeof(reload_note), "; again in this process %.3f s", reload_s);
    // A cold start with a filled algorithm cache file skips the search: name the file with the figure.
    const std::string cache_file = resnest::conv_algo_cache_path(opt.algo_cache);
    const std::string algo_cache_note =
        cache_file.empty() ? "; no algorithm cache file" : "; algorithm cache " + cache_file;

    std::printf("resnest bench: %s (%s)\n", s.name.c_str(), model.c_str());
    if (cuda)
        std::printf("  backend cuda on %s (sm_%d%d, %d SMs), driver %d, runtime %d, cuDNN %d, cuBLAS %d "
                    "(cuBLASLt %d)\n",
                    dev.name.c_str(), dev.cc_major, dev.cc_minor, dev.multiprocessors, dev.driver_version,
                    dev.runtime_version, dev.cudnn_version, dev.cublas_version, dev.cublaslt_version);
    else
        std::printf("  backend cpu, %d thread(s) on %s (no GPU in use: the CPU reference backend)\n", threads,
                    cpu_model_name().c_str());
    std::printf("  precision %s, passes %s, %s%s\n", precision.c_str(),
                engine->pass_log().empty() ? "off" : (std::to_string(engine->pass_log().size()) + " rewrites").c_str(),
                cuda ? (opt.cuda_graph ? "CUDA graph replay" : "eager launches (--no-graph)") : "host loop",
                !cuda ? "" : opt.dependent_launch && dev.kernels_arch >= 90 ? ", programmatic dependent launch"
                                                                           : ", ordinary launches");
    const auto environment = diagnostic_environment();
    if (!environment.empty()) {
        std::string list;
        for (const auto& [name, value] : environment) list += (list.empty() ? "" : ", ") + name + "=" + value;
        std::printf("  diagnostics: %s\n", list.c_str());
    }
    std::printf("  weights: %s; input N x %lldx%lldx%lld, seeded\n", weights_desc.c_str(),
                (long long)s.input_shape[0], (long long)s.input_shape[1], (long long)s.input_shape[2]);
    std::printf("  %d warm-up run(s), then %s per batch size\n", warmup,
                duration_s ? (std::to_string(duration_s) + " s").c_str() : (std::to_string(iters) + " runs").c_str());
    if (cuda)
        std::printf("  cold start: load + plan %.3f s (CUDA's initialisation beside it), first result (batch %d) %.3f s%s%s%s\n",
                    load_s, batches[0], first_result_s, process_note, reload_note, algo_cache_note.c_str());
    else
        std::printf("  cold start: load + plan %.3f s, first result (batch %d) %.3f s%s%s\n", load_s, batches[0],
                    first_result_s, process_note, reload_note);
    std::printf("\n%6s %9s %9s %9s %9s %9s %9s %11s %9s %6s %9s\n", "batch", "min ms", "p50 ms", "p90 ms", "p99 ms",
                "mean ms", "host p50", "img/s", "TFLOP/s", "%peak", "mem MiB");

    nlohmann::json rows = nlohmann::json::array();
    for (int batch : batches) {
        ctx->set_input(input.data(), batch);
        for (int i = 0; i < warmup; i++) ctx->run_loaded(batch);
        std::vector<double> device_ms, host_ms;
        auto start = clock::now();
        while (true) {
            resnest::RunTiming t = ctx->run_loaded(batch);
            device_ms.push_back(t.device_ms);
            host_ms.push_back(t.host_ms);
            double elapsed = std::chrono::duration<double>(clock::now() - start).count();
            if (duration_s ? (elapsed >= duration_s && device_ms.size() >= 3) : (int)device_ms.size() >= iters) break;
        }
        ctx->get_output(output.data(), batch);
        for (int64_t i = 0; i < s.num_outputs * batch; i++)
            if (!std::isfinite(output[i])) throw resnest::Error(model + ": the benchmark run produced a non-finite logit");
        resnest::LatencyStats st = resnest::summarize_latencies(device_ms);
        resnest::LatencyStats hs = resnest::summarize_latencies(host_ms);
        double ips = resnest::images_per_second(batch, st.p50_ms);
        double tflops = resnest::achieved_tflops(s.macs, batch, st.p50_ms);
        int64_t mem = cuda ? engine->device_bytes() + ctx->device_bytes() : peak_rss_bytes();
        std::printf("%6d %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %11.1f %9.3f %6.1f %9.1f\n", batch, st.min_ms, st.p50_ms,
                    st.p90_ms, st.p99_ms, st.mean_ms, hs.p50_ms, ips, tflops, peak > 0 ? 100.0 * tflops / peak : 0.0,
                    mem / 1048576.0);
        nlohmann::json row = {{"batch", batch}, {"runs", st.count}, {"precision", precision}, {"model", s.name},
                              {"latency_ms", {{"min", st.min_ms}, {"p50", st.p50_ms}, {"p90", st.p90_ms},
                                              {"p99", st.p99_ms}, {"mean", st.mean_ms}, {"max", st.max_ms}}},
                              {"host_latency_ms", {{"p50", hs.p50_ms}, {"p90", hs.p90_ms}, {"mean", hs.mean_ms}}},
                              {"throughput_img_s", ips}, {"tflops", tflops},
                              {"peak_share", peak > 0 ? tflops / peak : 0.0}, {"device_memory_bytes", mem},
                              {"samples_ms", device_ms}};
        if (cuda)  // the same device-clock numbers under the name PyTorch-side tools look for
            row["gpu_latency_ms"] = row["latency_ms"];
        if (streams > 1) {
            std::vector<std::unique_ptr<resnest::Context>> contexts;
            for (int k = 0; k < streams; k++) contexts.push_back(engine->create_context());
            int per = duration_s ? std::max(3, (int)(duration_s * 1e3 / st.p50_ms)) : iters;
            double cips = concurrent_throughput(contexts, input, batch, per);
            std::printf("%6s %d streams at once: %.1f img/s\n", "", streams, cips);
            row["concurrent"] = {{"streams", streams}, {"throughput_img_s", cips}};
        }
        if (args.has("--profile") && cuda) {
            std::vector<resnest::NodeProfile> prof = ctx->profile(batch, 20);
            double total = 0, replay_total = 0, flops = 0, bytes = 0, way_bytes = 0;
            bool replayed = !prof.empty();
            for (const auto& p : prof) {
                total += p.ms, replay_total += p.replay_ms, flops += p.flops, bytes += p.bytes;
                way_bytes += p.way_bytes;
                replayed = replayed && p.replay_ms > 0.0;
            }
            // Ranked by the replayed times where there are any: those are the kernels as production runs them
            // (eager launches at small batches time the host's launches as much as the kernels).
            auto key = [&](const resnest::NodeProfile& p) { return replayed ? p.replay_ms : p.ms; };
            const double ranked_total = replayed ? replay_total : total;
            std::sort(prof.begin(), prof.end(), [&](const auto& a, const auto& b) { return key(a) > key(b); });
            double floor_ms = resnest::roofline_floor_ms(flops, bytes, peak, peak_bw);
            std::printf("\n  profile, batch %d: %zu nodes, %.3f ms eager in all", batch, prof.size(), total);
            if (replayed) std::printf(", %.3f ms replayed with an event between nodes", replay_total);
            // The p50 is a graph replay's unless the context runs node by node (--no-graph, RESNEST_CUDA_DEBUG=1).
            std::printf(" (%s p50 %.3f ms); roofline floor %.3f ms (%.1f GFLOP, %.1f MB)",
                        opt.cuda_graph && !(std::getenv("RESNEST_CUDA_DEBUG") &&
                                            std::string(std::getenv("RESNEST_CUDA_DEBUG")) == "1")
                            ? "graph replay"
                            : "eager launches",
                        st.p50_ms, floor_ms, flops / 1e9, bytes / 1e6);
            if (floor_ms > 0.0) std::printf(", p50 %.2fx the floor", st.p50_ms / floor_ms);
            std::printf("\n");
            if (way_bytes > 0.0)
                std::printf("  the chosen ways move %.1f MB more through workspaces and passes of their own (im2col "
                            "matrices, split-K partials, dense filters, bias passes): in GB/s, not in the floor\n",
                            way_bytes / 1e6);
            std::printf("  %-34s %-26s %9s %9s %6s %9s %9s\n", "node", "op", replayed ? "replay ms" : "ms", "eager ms",
                        "%", "TFLOP/s", "GB/s");
            nlohmann::json pj = nlohmann::json::array();
            for (size_t i = 0; i < prof.size(); i++) {
                const auto& p = prof[i];
                const double ms = key(p);
                if (i < 25)
                    std::printf("  %-34s %-26s %9.4f %9.4f %6.1f %9.2f %9.1f\n", p.name.c_str(), p.op.c_str(), ms, p.ms,
                                100.0 * ms / ranked_total, p.flops / (ms * 1e9), (p.bytes + p.way_bytes) / (ms * 1e6));
                pj.push_back({{"node", p.name}, {"op", p.op}, {"ms", p.ms}, {"replay_ms", p.replay_ms},
                              {"flops", p.flops}, {"bytes", p.bytes}, {"way_bytes", p.way_bytes}});
                if (p.pool_ms > 0.0 || p.gate_ms > 0.0 || p.combine_ms > 0.0)
                    pj.back()["stages_ms"] = {{"pool", p.pool_ms}, {"gate", p.gate_ms}, {"weighted_sum", p.combine_ms}};
            }
            // Split attention's three stages over all its nodes (eager launches).
            double pool = 0, gate = 0, combine = 0;
            for (const auto& p : prof) pool += p.pool_ms, gate += p.gate_ms, combine += p.combine_ms;
            if (pool + gate + combine > 0.0)
                std::printf("  split attention, eager, all nodes: pool %.4f ms, gate %.4f ms, weighted sum %.4f ms\n",
                            pool, gate, combine);
            row["profile"] = {{"eager_total_ms", total}, {"replay_total_ms", replay_total},
                              {"roofline_floor_ms", floor_ms}, {"way_bytes", way_bytes},
                              {"floor_distance", floor_ms > 0.0 ? st.p50_ms / floor_ms : 0.0}, {"nodes", pj}};
            std::printf("\n");
        }
        rows.push_back(row);
    }
    if (cuda)
        std::printf("\nlatency: device time (CUDA events) per forward pass on resident input; host p50 adds launch and "
                    "synchronisation; memory: weights + one context's arena, workspace and I/O buffers\n");
    else
        std::printf("\nlatency: host wall time around each run; memory: peak resident set\n");

    if (args.has("--json")) {
        nlohmann::json machine = {{"cpu", cpu_model_name()}, {"hardware_threads", std::thread::hardware_concurrency()}};
        if (cuda)
            machine["gpu"] = {{"name", dev.name}, {"compute_capability", std::to_string(dev.cc_major) + "." +
                                                                          std::to_string(dev.cc_minor)},
                              {"multiprocessors", dev.multiprocessors}, {"memory_total", dev.memory_total},
                              {"sm_clock_mhz", dev.sm_clock_mhz}, {"memory_clock_mhz", dev.memory_clock_mhz},
                              {"driver_version", dev.driver_version}, {"runtime_version", dev.runtime_version},
                              {"cudnn_version", dev.cudnn_version}, {"cublas_version", dev.cublas_version},
                              {"cublaslt_version", dev.cublaslt_version},
                              {"kernels_arch", dev.kernels_arch},
                              {"peak_tflops", peak}, {"peak_tbs", peak_bw}};
        nlohmann::json j = {
            {"tool", "resnest bench"}, {"version", RESNEST_VERSION}, {"git_commit", RESNEST_GIT_COMMIT},
            {"date_utc", utc_now()}, {"machine", machine},
            {"config", {{"model", model}, {"model_name", s.name}, {"backend", resnest::backend_name(opt.backend)},
                        {"precision", precision}, {"threads", threads}, {"cuda_graph", cuda && opt.cuda_graph},
                        {"conv_search", opt.conv_search}, {"conv_gemm", opt.conv_gemm},
                        {"conv_graph", opt.conv_graph}, {"conv_workspace_mib", resnest::conv_workspace_mib_for(opt)},
                        {"dependent_launch", cuda && opt.dependent_launch && dev.kernels_arch >= 90},
                        {"passes", engine->pass_log().size()}, {"weights", weights_desc}, {"batches", batches},
                        {"warmup", warmup}, {"iters", duration_s ? 0 : iters}, {"duration_s", duration_s},
                        {"streams", streams}, {"environment", nlohmann::json::object()}}},
            {"model", {{"params", s.params}, {"macs_per_image", s.macs}, {"input_shape", s.input_shape}}},
            {"load_plan_s", load_s}, {"first_result_s", first_result_s}, {"peak_rss_bytes", peak_rss_bytes()},
            {"device_weight_bytes", engine->device_bytes()}, {"results", rows}};
        for (const auto& [name, value] : environment) j["config"]["environment"][name] = value;
        if (reload_s >= 0.0) j["reload_first_result_s"] = reload_s;
        if (process_first_result_s >= 0.0) j["process_first_result_s"] = process_first_result_s;
        std::ofstream f(args.get("--json"));
        f << j.dump(1) << "\n";
        if (!f) throw resnest::Error(args.get("--json") + ": cannot write the JSON report");
    }
    return 0;
}

}  // namespace resnest_cli
