// cmd_classify.cpp: `resnest classify` (images in, top-k classes out, as PaddleClas's predict_cls.py) and
// `resnest preprocess` (images in, the exact (N, 3, S, S) float32 tensor classify feeds the model, out).
// A bad image is one line on stderr naming the file; the others are still processed.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>  // isatty

#include "cli/cli.h"
#include "image.h"
#include "labels.h"
#include "npy.h"
#include "preprocess.h"
#include "resnest/engine.h"

namespace resnest_cli {

static const char* kClassifyHelp =
    "usage: resnest classify --model M.json --weights W.safetensors IMAGE|DIR|- ...\n"
    "                        [--topk K] [--labels FILE] [--batch N] [--backend cpu|cuda] [--precision P]\n"
    "                        [--threads T] [--json] [--preprocess paddleclas|timm|timm-bicubic]\n"
    "                        [--resize-short S] [--max-pixels P] [--ignore-orientation] [--verbose]\n"
    "\n"
    "Classifies images as PaddleClas's inference does: decode to RGB, resize the short side to 256 with\n"
    "OpenCV's bilinear arithmetic, centre-crop 224, normalise with the ImageNet mean and std, run the model,\n"
    "softmax, top K. A directory means every image in it (by extension), sorted by name; '-' reads one path\n"
    "per line from standard input. Formats: JPEG, PNG, BMP, GIF (first frame), TGA, PPM/PGM (binary).\n"
    "\n"
    "  --topk K           classes per image (default 5)\n"
    "  --labels FILE      class names, one \"<id> <name>\" line per class (PaddleClas's format); default:\n"
    "                     imagenet1k_label_list.txt beside the model graph or in models/, for 1000 classes\n"
    "  --batch N          images per forward pass (default 8)\n"
    "  --json             one JSON object per line and image: file_name, class_ids, scores, label_names\n"
    "  --preprocess P     paddleclas (default), timm (Pillow bilinear, crop_pct 0.875), timm-bicubic\n"
    "  --resize-short S   short side before the crop (default: crop * 8 / 7, 256 for a 224 model)\n"
    "  --max-pixels P     refuse images with more pixels, from the header (default 67108864 = 8192^2)\n"
    "  --ignore-orientation  do not apply the EXIF orientation (as cv2.IMREAD_IGNORE_ORIENTATION)\n"
    "  --threads T        CPU worker threads (default: one per hardware thread)\n"
    "  --verbose          log loading and timings to stderr\n"
    "\n"
    "Exit status: 0 when every image was classified, 1 when any could not be (each named on stderr),\n"
    "2 for a usage error. With seeded random weights the classes and labels mean nothing.\n";

static const char* kPreprocessHelp =
    "usage: resnest preprocess IMAGE|DIR|- ... --output X.npy [--model M.json] [--crop S] [--resize-short S]\n"
    "                          [--preprocess paddleclas|timm|timm-bicubic] [--max-pixels P]\n"
    "                          [--ignore-orientation]\n"
    "\n"
    "Writes the float32 (N, 3, S, S) tensor that `resnest classify` feeds the model for these images, in\n"
    "order, so the pipeline can be checked against another one; prints \"<row> <file>\" per image. S is the\n"
    "model's input size with --model, else --crop (default 224). Any bad image is an error (exit 1) and\n"
    "nothing is written.\n";

namespace {

constexpr size_t kScreenful = 24;  // more images than this: progress on stderr

struct InputList {
    std::vector<std::string> paths;
    int errors = 0;
};

void report_error(const char* cmd, const std::string& message) {
    std::fprintf(stderr, "resnest %s: error: %s\n", cmd, message.c_str());
}

void add_directory(const std::string& dir, InputList& list, const char* cmd) {
    namespace fs = std::filesystem;
    std::vector<std::string> found;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code ec2;
        if (it->is_regular_file(ec2) && resnest::image_has_known_extension(it->path().string()))
            found.push_back(it->path().string());
    }
    if (ec) {
        report_error(cmd, dir + ": cannot list the directory: " + ec.message());
        list.errors++;
        return;
    }
    if (found.empty()) {
        report_error(cmd, dir + ": directory holds no images (.jpg .jpeg .jpe .png .bmp .gif .tga .ppm .pgm .pnm)");
        list.errors++;
        return;
    }
    std::sort(found.begin(), found.end());
    list.paths.insert(list.paths.end(), found.begin(), found.end());
}

void add_input(const std::string& arg, InputList& list, const char* cmd) {
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) add_directory(arg, list, cmd);
    else list.paths.push_back(arg);  // a missing or bad file is reported when it is decoded
}

InputList collect_inputs(const std::vector<std::string>& args, const char* cmd) {
    InputList list;
    for (const std::string& a : args) {
        if (a != "-") {
            add_input(a, list, cmd);
            continue;
        }
        std::string line;
        size_t before = list.paths.size();
        while (std::getline(std::cin, line)) {
            while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
            if (!line.empty()) add_input(line, list, cmd);
        }
        if (list.paths.size() == before && list.errors == 0) {
            report_error(cmd, "standard input ('-') gave no image paths");
            list.errors++;
        }
    }
    return list;
}

resnest::ImageDecodeOptions decode_options(const Args& args) {
    resnest::ImageDecodeOptions d;
    const std::string v = args.get("--max-pixels", "");
    if (!v.empty()) {
        bool digits = v.size() <= 15 && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits || std::stoll(v) < 1) throw UsageError{"--max-pixels takes a whole number >= 1, got '" + v + "'"};
        d.max_pixels = std::stoll(v);
    }
    d.apply_exif_orientation = !args.has("--ignore-orientation");
    return d;
}

resnest::PreprocessPipeline pipeline_option(const Args& args) {
    try {
        return resnest::parse_preprocess_pipeline(args.get("--preprocess", "paddleclas"));
    } catch (const resnest::Error& e) {
        throw UsageError{std::string("--preprocess: ") + e.what()};
    }
}

// Progress on stderr: overwritten in place on a terminal, one line every few seconds otherwise.
struct Progress {
    const char* cmd;
    size_t total;
    bool enabled, tty, line_open = false;
    std::chrono::steady_clock::time_point last = std::chrono::steady_clock::now();

    Progress(const char* c, size_t n) : cmd(c), total(n), enabled(n > kScreenful), tty(isatty(2) != 0) {}
    void update(size_t done) {
        if (!enabled) return;
        auto now = std::chrono::steady_clock::now();
        bool final = done == total;
        if (tty) {
            std::fprintf(stderr, "\rresnest %s: %zu/%zu images", cmd, done, total);
            line_open = !final;
            if (final) std::fputc('\n', stderr);
        } else if (final || now - last >= std::chrono::seconds(2)) {
            std::fprintf(stderr, "resnest %s: %zu/%zu images\n", cmd, done, total);
            last = now;
        }
        std::fflush(stderr);
    }
    void before_message() {
        if (line_open) std::fputc('\n', stderr), line_open = false;
    }
};

double round5(double v) { return std::nearbyint(v * 1e5) / 1e5; }  // numpy.around(v, 5)

}  // namespace

int cmd_classify(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--model", true}, {"--weights", true}, {"--topk", true}, {"--labels", true},
                            {"--batch", true}, {"--backend", true}, {"--precision", true}, {"--passes", true}, {"--no-graph", false}, {"--no-pdl", false}, {"--algo-cache", true}, {"--conv-search", true}, {"--conv-gemm", true}, {"--conv-graph", true}, {"--conv-workspace", true}, {"--threads", true},
                            {"--device", true}, {"--json", false}, {"--preprocess", true}, {"--resize-short", true},
                            {"--max-pixels", true}, {"--ignore-orientation", false}, {"--verbose", false},
                            {"--help", false}},
                           true);
    if (args.has("--help")) {
        std::fputs(kClassifyHelp, stdout);
        return 0;
    }
    const std::string model = args.require("--model"), weights = args.require("--weights");
    if (args.positional.empty()) throw UsageError{"needs at least one IMAGE, directory or - (see --help)"};
    resnest::EngineOptions opt = engine_options_from_args(args);
    const int topk_flag = args.get_int("--topk", 5, 1, 1000000);
    const int batch = args.get_int("--batch", 8, 1, 4096);
    const bool json = args.has("--json");
    const resnest::ImageDecodeOptions decode = decode_options(args);
    resnest::PreprocessOptions pre;
    pre.pipeline = pipeline_option(args);

    resnest::ModelSummary summary = resnest::inspect_model(model);
    const std::vector<int64_t>& in = summary.input_shape;
    if (in.size() != 3 || in[0] != 3 || in[1] != in[2])
        throw resnest::Error(model + ": classify needs a (3, S, S) input; this graph's is (" + std::to_string(in[0]) +
                             ", " + std::to_string(in[1]) + ", " + std::to_string(in[2]) + ")");
    pre.crop = (int)in[1];
    pre.resize_short = args.get_int("--resize-short", pre.crop * 8 / 7, pre.crop, 1 << 20);
    const int64_t classes = summary.num_outputs;
    const int topk = (int)std::min<int64_t>(topk_flag, classes);
    const bool probabilities = !summary.nodes.empty() && summary.nodes.back().op == "softmax";

    std::vector<std::string> labels;
    if (args.has("--labels")) {
        labels = resnest::labels_read(args.get("--labels"), classes);
    } else {
        std::string def = resnest::labels_find_default(model);
        if (!def.empty() && classes == 1000) labels = resnest::labels_read(def, classes);
        if (opt.verbose)
            std::fprintf(stderr, "resnest classify: labels: %s\n",
                         labels.empty() ? "none (no 1000-class model or no imagenet1k_label_list.txt found)" : def.c_str());
    }

    InputList inputs = collect_inputs(args.positional, "classify");
    int failures = inputs.errors;
    const size_t n = inputs.paths.size();
    if (n == 0) return 1;

    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    opt.max_batch = images_per_pass(args, opt, model, batch, (int64_t)n, "classify");
    auto engine = resnest::Engine::load(model, weights, opt);
    auto ctx = engine->create_context();
    auto t1 = clock::now();
    double decode_s = 0, run_s = 0;

    const size_t per_image = (size_t)3 * pre.crop * pre.crop;
    std::vector<float> x((size_t)opt.max_batch * per_image);  // (B, 3, S, S)
    std::vector<float> y((size_t)opt.max_batch * classes);    // (B, classes)
    Progress progress("classify", n);
    size_t classified = 0;
    for (size_t start = 0; start < n; start += (size_t)opt.max_batch) {
        const size_t end = std::min(n, start + (size_t)opt.max_batch);
        std::vector<std::string> names;
        auto d0 = clock::now();
        for (size_t i = start; i < end; i++) {
            try {
                resnest::ImageRGB8 img = resnest::image_decode_file(inputs.paths[i], decode);
                resnest::preprocess_image(img, pre, x.data() + names.size() * per_image);
                names.push_back(inputs.paths[i]);
            } catch (const resnest::Error& e) {
                progress.before_message();
                report_error("classify", e.what());
                failures++;
            } catch (const std::bad_alloc&) {
                progress.before_message();
                report_error("classify", inputs.paths[i] + ": out of memory while decoding");
                failures++;
            }
        }
        auto d1 = clock::now();
        decode_s += std::chrono::duration<double>(d1 - d0).count();
        if (!names.empty()) ctx->run(x.data(), (int)names.size(), y.data());
        run_s += std::chrono::duration<double>(clock::now() - d1).count();
        progress.before_message();
        for (size_t b = 0; b < names.size(); b++) {
            resnest::TopK top = resnest::topk_rank(y.data() + b * classes, classes, topk, probabilities);
            if (json) {
                nlohmann::json j;
                j["file_name"] = names[b];
                j["class_ids"] = top.class_ids;
                std::vector<double> scores;
                for (double s : top.scores) scores.push_back(round5(s));
                j["scores"] = scores;
                std::vector<std::string> label_names;
                if (!labels.empty())
                    for (int64_t c : top.class_ids) label_names.push_back(labels[(size_t)c]);
                j["label_names"] = label_names;
                std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
            } else {
                std::printf("%s%s\n  rank  class    score  label\n", classified + b ? "\n" : "", names[b].c_str());
                for (int r = 0; r < topk; r++)
                    std::printf("  %4d  %5lld  %.5f  %s\n", r + 1, (long long)top.class_ids[(size_t)r],
                                top.scores[(size_t)r], labels.empty() ? "" : labels[(size_t)top.class_ids[(size_t)r]].c_str());
            }
        }
        std::fflush(stdout);
        classified += names.size();
        progress.update(end);
    }
    if (opt.verbose)
        std::fprintf(stderr,
                     "resnest classify: %s: %zu of %zu image(s) on %s/%s (%s): load %.3f s, decode+preprocess %.3f s, "
                     "run %.3f s\n",
                     summary.name.c_str(), classified, n, resnest::backend_name(opt.backend),
                     resnest::precision_name(opt.precision), resnest::preprocess_pipeline_name(pre.pipeline),
                     std::chrono::duration<double>(t1 - t0).count(), decode_s, run_s);
    return failures ? 1 : 0;
}

int cmd_preprocess(int argc, char** argv) {
    Args args = parse_args(argc, argv, 2,
                           {{"--output", true}, {"--model", true}, {"--crop", true}, {"--resize-short", true},
                            {"--preprocess", true}, {"--max-pixels", true}, {"--ignore-orientation", false},
                            {"--help", false}},
                           true);
    if (args.has("--help")) {
        std::fputs(kPreprocessHelp, stdout);
        return 0;
    }
    const std::string output = args.require("--output");
    if (args.positional.empty()) throw UsageError{"needs at least one IMAGE, directory or - (see --help)"};
    if (args.has("--model") && args.has("--crop")) throw UsageError{"give --model or --crop, not both"};
    const resnest::ImageDecodeOptions decode = decode_options(args);
    resnest::PreprocessOptions pre;
    pre.pipeline = pipeline_option(args);
    pre.crop = args.get_int("--crop", 224, 1, 1 << 16);
    if (args.has("--model")) {
        const std::string model = args.get("--model");
        resnest::ModelSummary summary = resnest::inspect_model(model);
        const std::vector<int64_t>& in = summary.input_shape;
        if (in.size() != 3 || in[0] != 3 || in[1] != in[2])
            throw resnest::Error(model + ": preprocess needs a (3, S, S) model input");
        pre.crop = (int)in[1];
    }
    pre.resize_short = args.get_int("--resize-short", pre.crop * 8 / 7, pre.crop, 1 << 20);
    check_output_path(output, "--output");  // after the usage errors (exit 2), before any image is read

    InputList inputs = collect_inputs(args.positional, "preprocess");
    int failures = inputs.errors;
    const size_t n = inputs.paths.size();
    const size_t per_image = (size_t)3 * pre.crop * pre.crop;
    std::vector<float> x;  // (N, 3, S, S)
    Progress progress("preprocess", n);
    for (size_t i = 0; i < n; i++) {
        try {
            resnest::ImageRGB8 img = resnest::image_decode_file(inputs.paths[i], decode);
            x.resize((i + 1) * per_image);
            resnest::preprocess_image(img, pre, x.data() + i * per_image);
        } catch (const resnest::Error& e) {
            progress.before_message();
            report_error("preprocess", e.what());
            failures++;
        }
        progress.update(i + 1);
    }
    if (failures) return 1;  // each bad input is already one line on stderr; nothing is written
    resnest::npy_write(output, {(int64_t)n, 3, pre.crop, pre.crop}, x.data());
    for (size_t i = 0; i < n; i++) std::printf("%zu %s\n", i, inputs.paths[i].c_str());
    std::fprintf(stderr, "resnest preprocess: wrote %s: (%zu, 3, %d, %d) float32, %s, short side %d\n", output.c_str(), n,
                 pre.crop, pre.crop, resnest::preprocess_pipeline_name(pre.pipeline), pre.resize_short);
    return 0;
}

}  // namespace resnest_cli
