// cmd_run.cpp: `resnest run`: an NCHW float32 .npy in, logits out as .npy.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "npy.h"
#include "resnest/engine.h"

namespace resnest_cli {

static const char* kRunHelp =
    "usage: resnest run --model M.json --weights W.safetensors --input X.npy --output Y.npy\n"
    "                   [--backend cpu|cuda] [--precision fp32|tf32|fp16] [--device N] [--batch N]\n"
    "                   [--threads T] [--top K] [--passes auto|on|off] [--no-graph] [--no-pdl]\n"
    "                   [--algo-cache FILE|none]\n"
    "                   [--conv-search find|timed] [--conv-gemm auto|on|off] [--conv-graph auto|on|off]\n"
    "                   [--conv-workspace auto|MIB] [--verbose]\n"
    "\n"
    "Runs the model on every image of X.npy, a float32 (N, C, H, W) array matching the graph's input, and\n"
    "writes the logits (N, classes) as float32 to Y.npy.\n"
    "\n"
    "  --batch N      images per forward pass (default: all N at once; cuda: at most what it runs in one\n"
    "                 pass, 2674 for the committed models at 224 px)\n"
    "  --backend B    cpu (the reference, fp32 only) or cuda (default cpu)\n"
    "  --precision P  fp32 (IEEE, no TF32), tf32 or fp16 (fp16 storage, fp32 accumulation); cuda only for\n"
    "                 tf32 and fp16\n"
    "  --device N     CUDA device ordinal (default 0)\n"
    "  --threads T    CPU worker threads (default: one per hardware thread)\n"
    "  --passes P     graph passes (BN folding, conv+bias+residual+ReLU fusion): auto = on for cuda, off\n"
    "                 for the cpu oracle\n"
    "  --no-graph     cuda: launch node by node instead of replaying a captured CUDA graph\n"
    "  --no-pdl       cuda: no programmatic dependent launches (the default for sm_90 kernels)\n"
    "  --algo-cache F cuda: convolution algorithm cache file (default $RESNEST_CACHE_DIR/conv_algos.tsv or\n"
    "                 ~/.cache/resnest/conv_algos.tsv); 'none' keeps it in memory\n"
    "  --conv-search S cuda: rank convolution algorithms by cuDNN's timing of the plain convolution (find,\n"
    "                 the default) or by timing each candidate on the node's own fused call (timed)\n"
    "  --conv-gemm G  cuda: run convolutions as cuBLASLt matmuls with bias/residual/ReLU epilogue (1x1\n"
    "                 directly, others over im2col, dense or one matmul per group) where they time fastest\n"
    "                 (auto, the default), wherever they can in the dense form (on), or never (off)\n"
    "  --conv-graph G cuda: run convolutions through cuDNN's operation graph (conv, bias, residual, ReLU fused)\n"
    "                 where it times fastest (auto, the default), wherever an engine runs it (on), or never (off)\n"
    "  --conv-workspace MIB cuda: each context's convolution workspace; algorithms needing more are not\n"
    "                 considered (auto, the default: 1024 for fp32, 128 for tf32 and fp16)\n"
    "  --top K        also print each image's K best classes with softmax scores\n"
    "  --verbose      log loading, the memory plan and timings to stderr\n";

static void print_top(const float* logits, int64_t classes, int image, int k) {
    std::vector<double> p(classes);
    double m = *std::max_element(logits, logits + classes), sum = 0.0;
    for (int64_t c = 0; c < classes; c++) sum += (p[c] = std::exp((double)logits[c] - m));
    std::vector<int64_t> idx(classes);
    std::iota(idx.begin(), idx.end(), 0);
    k = (int)std::min<int64_t>(k, classes);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    std::printf("image %d:", image);
    for (int r = 0; r < k; r++) std::printf("  %lld (%.5f)", (long long)idx[r], p[idx[r]] / sum);
    std::printf("\n");
}

int cmd_run(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--model", true}, {"--weights", true}, {"--input", true}, {"--output", true},
                            {"--backend", true}, {"--precision", true}, {"--passes", true}, {"--no-graph", false}, {"--no-pdl", false}, {"--algo-cache", true}, {"--conv-search", true}, {"--conv-gemm", true}, {"--conv-graph", true}, {"--conv-workspace", true}, {"--batch", true}, {"--threads", true},
                            {"--device", true}, {"--top", true}, {"--verbose", false}, {"--help", false}},
                           false);
    if (args.has("--help")) {
        std::fputs(kRunHelp, stdout);
        return 0;
    }
    const std::string model = args.require("--model"), weights = args.require("--weights");
    const std::string input_path = args.require("--input"), output_path = args.require("--output");
    resnest::EngineOptions opt = engine_options_from_args(args);
    int top = args.get_int("--top", 0, 1, 1000000);
    check_output_path(output_path, "--output",  // after the usage errors (exit 2), before any work
                      {{"--model", model}, {"--weights", weights}, {"--input", input_path}});

    using clock = std::chrono::steady_clock;
    resnest::NpyArray x = resnest::npy_read(input_path);
    resnest::ModelSummary summary = resnest::inspect_model(model);
    const std::vector<int64_t>& in = summary.input_shape;
    if (x.shape.size() != 4 || x.shape[0] < 1 || x.shape[1] != in[0] || x.shape[2] != in[1] || x.shape[3] != in[2]) {
        std::string got;
        for (size_t i = 0; i < x.shape.size(); i++) got += (i ? ", " : "") + std::to_string(x.shape[i]);
        throw resnest::Error(input_path + ": shape (" + got + ") does not match the model's input (N, " +
                             std::to_string(in[0]) + ", " + std::to_string(in[1]) + ", " + std::to_string(in[2]) +
                             "), float32 NCHW");
    }
    for (size_t i = 0; i < x.data.size(); i++)
        if (!std::isfinite(x.data[i]))
            throw resnest::Error(input_path + ": holds a non-finite value at flat index " + std::to_string(i));
    const int n = (int)x.shape[0];
    opt.max_batch = images_per_pass(args, opt, model, args.get_int("--batch", n, 1, 65536), n, "run");

    auto t0 = clock::now();
    auto engine = resnest::Engine::load(model, weights, opt);
    auto ctx = engine->create_context();
    auto t1 = clock::now();
    const int64_t per_image = in[0] * in[1] * in[2], classes = summary.num_outputs;
    std::vector<float> y((size_t)n * classes);
    for (int b = 0; b < n; b += opt.max_batch) {
        int count = std::min(opt.max_batch, n - b);
        ctx->run(x.data.data() + (size_t)b * per_image, count, y.data() + (size_t)b * classes);
    }
    auto t2 = clock::now();
    resnest::npy_write(output_path, {n, classes}, y.data());
    double load_s = std::chrono::duration<double>(t1 - t0).count();
    double run_s = std::chrono::duration<double>(t2 - t1).count();
    std::fprintf(stderr, "resnest run: %s: %d image(s) on %s/%s: load %.3f s, run %.3f s (%.1f ms/image); wrote %s\n",
                 summary.name.c_str(), n, resnest::backend_name(opt.backend), resnest::precision_name(opt.precision),
                 load_s, run_s, 1e3 * run_s / n, output_path.c_str());
    if (top > 0)
        for (int i = 0; i < n; i++) print_top(y.data() + (size_t)i * classes, classes, i, top);
    return 0;
}

}  // namespace resnest_cli
