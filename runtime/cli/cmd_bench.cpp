// cmd_bench.cpp: `resnest bench`: latency percentiles and throughput per batch size, with seeded weights
// generated in the engine unless a weight file is given; a table on stdout and, with --json, a record of
// the configuration, machine, commit and raw samples.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_stats.h"
#include "cli/cli.h"
#include "resnest/engine.h"
#include "seeded_weights.h"

namespace resnest_cli {

static const char* kBenchHelp =
    "usage: resnest bench --model M.json [--weights W.safetensors | --random-weights [--seed S]]\n"
    "                     [--backend cpu] [--precision fp32] [--batch 1,4,8] [--warmup N]\n"
    "                     [--iters N | --duration SECONDS] [--threads T] [--json FILE]\n"
    "\n"
    "Times the forward pass at each batch size: latency min / p50 / p90 / p99 / mean (host clock around\n"
    "each run), throughput, achieved TFLOP/s (2 x conv and linear MACs), load time and memory. Without\n"
    "--weights the engine draws seeded random weights itself (the values random_weights.py --seed writes),\n"
    "so no file is needed. The CPU backend is the only one in this build.\n"
    "\n"
    "  --batch LIST     comma-separated batch sizes (default 1)\n"
    "  --warmup N       untimed runs per batch size first (default 2)\n"
    "  --iters N        timed runs per batch size (default 20)\n"
    "  --duration S     instead of --iters: time runs for S seconds per batch size (at least 3 runs)\n"
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

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    return buf;
}

}  // namespace

int cmd_bench(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--model", true}, {"--weights", true}, {"--random-weights", false}, {"--seed", true},
                            {"--backend", true}, {"--precision", true}, {"--batch", true}, {"--warmup", true},
                            {"--iters", true}, {"--duration", true}, {"--threads", true}, {"--json", true},
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
    const std::vector<int> batches = parse_batches(args.get("--batch", "1"));
    const int warmup = args.get_int("--warmup", 2, 0, 100000);
    const int iters = args.get_int("--iters", 20, 1, 1000000);
    const int duration_s = args.get_int("--duration", 0, 1, 3600);
    const int seed = args.get_int("--seed", 1, 0, 1 << 30);
    resnest::EngineOptions opt = engine_options_from_args(args);
    opt.max_batch = *std::max_element(batches.begin(), batches.end());
    const int threads = opt.threads ? opt.threads : (int)std::max(1u, std::thread::hardware_concurrency());
    const std::string weights_desc =
        args.has("--weights") ? args.get("--weights") : "seeded random weights, seed " + std::to_string(seed);

    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    auto engine = args.has("--weights") ? resnest::Engine::load(model, args.get("--weights"), opt)
                                        : resnest::Engine::load_seeded(model, (uint64_t)seed, opt);
    auto ctx = engine->create_context();
    const double load_s = std::chrono::duration<double>(clock::now() - t0).count();
    const resnest::ModelSummary& s = engine->summary();
    const int64_t per_image = s.input_shape[0] * s.input_shape[1] * s.input_shape[2];

    std::printf("resnest bench: %s (%s)\n", s.name.c_str(), model.c_str());
    std::printf("  backend %s, precision %s, %d CPU thread(s) on %s\n", resnest::backend_name(opt.backend),
                resnest::precision_name(opt.precision), threads, cpu_model_name().c_str());
    std::printf("  weights: %s; input N x %lldx%lldx%lld, seeded\n", weights_desc.c_str(),
                (long long)s.input_shape[0], (long long)s.input_shape[1], (long long)s.input_shape[2]);
    std::printf("  %d warm-up run(s), then %s per batch size; load + plan %.3f s\n", warmup,
                duration_s ? (std::to_string(duration_s) + " s").c_str() : (std::to_string(iters) + " runs").c_str(),
                load_s);
    std::printf("\n%6s %9s %9s %9s %9s %9s %11s %9s\n", "batch", "min ms", "p50 ms", "p90 ms", "p99 ms", "mean ms",
                "img/s", "TFLOP/s");

    std::vector<float> input = resnest::seeded_uniform((uint64_t)seed, "input", per_image * opt.max_batch, -2.0, 2.0);
    std::vector<float> output((size_t)s.num_outputs * opt.max_batch);
    nlohmann::json rows = nlohmann::json::array();
    for (int batch : batches) {
        for (int i = 0; i < warmup; i++) ctx->run(input.data(), batch, output.data());
        std::vector<double> samples;
        auto start = clock::now();
        while (true) {
            auto a = clock::now();
            ctx->run(input.data(), batch, output.data());
            auto b = clock::now();
            samples.push_back(std::chrono::duration<double, std::milli>(b - a).count());
            double elapsed = std::chrono::duration<double>(b - start).count();
            if (duration_s ? (elapsed >= duration_s && samples.size() >= 3) : (int)samples.size() >= iters) break;
        }
        for (float v : output)
            if (!std::isfinite(v)) throw resnest::Error(model + ": the benchmark run produced a non-finite logit");
        resnest::LatencyStats st = resnest::summarize_latencies(samples);
        double ips = resnest::images_per_second(batch, st.p50_ms);
        double tflops = resnest::achieved_tflops(s.macs, batch, st.p50_ms);
        std::printf("%6d %9.3f %9.3f %9.3f %9.3f %9.3f %11.1f %9.4f\n", batch, st.min_ms, st.p50_ms, st.p90_ms,
                    st.p99_ms, st.mean_ms, ips, tflops);
        rows.push_back({{"batch", batch}, {"runs", st.count},
                        {"latency_ms", {{"min", st.min_ms}, {"p50", st.p50_ms}, {"p90", st.p90_ms},
                                        {"p99", st.p99_ms}, {"mean", st.mean_ms}, {"max", st.max_ms}}},
                        {"throughput_img_s", ips}, {"tflops", tflops}, {"samples_ms", samples}});
    }
    const int64_t rss = peak_rss_bytes();
    std::printf("\npeak resident memory %.1f MiB (weights, arena for batch %d, code); latency is host wall time "
                "around each run\n", rss / 1048576.0, opt.max_batch);

    if (args.has("--json")) {
        nlohmann::json j = {
            {"tool", "resnest bench"}, {"version", RESNEST_VERSION}, {"git_commit", RESNEST_GIT_COMMIT},
            {"date_utc", utc_now()},
            {"machine", {{"cpu", cpu_model_name()}, {"hardware_threads", std::thread::hardware_concurrency()}}},
            {"config", {{"model", model}, {"model_name", s.name}, {"backend", resnest::backend_name(opt.backend)},
                        {"precision", resnest::precision_name(opt.precision)}, {"threads", threads},
                        {"weights", weights_desc}, {"batches", batches}, {"warmup", warmup},
                        {"iters", duration_s ? 0 : iters}, {"duration_s", duration_s}}},
            {"model", {{"params", s.params}, {"macs_per_image", s.macs}, {"input_shape", s.input_shape}}},
            {"load_plan_s", load_s}, {"peak_rss_bytes", rss}, {"results", rows}};
        std::ofstream f(args.get("--json"));
        f << j.dump(1) << "\n";
        if (!f) throw resnest::Error(args.get("--json") + ": cannot write the JSON report");
    }
    return 0;
}

}  // namespace resnest_cli
