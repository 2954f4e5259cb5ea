// main.cpp: the `resnest` command-line tool: parses the subcommand and reports errors as one line.
//
//   resnest inspect MODEL.json [--weights W] [--json]
//   resnest run --model M --weights W --input X.npy --output Y.npy [--backend cpu] [--batch N]
//   resnest classify --model M --weights W IMAGE|DIR|- ... [--topk K] [--labels F] [--json]
//   resnest preprocess IMAGE|DIR|- ... --output X.npy
//   resnest bench --model M [--weights W | --random-weights] [--batch 1,4,8] [--json FILE]
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cli/cli.h"
#include "resnest/error.h"

static const char* kHelp =
    "usage: resnest <command> [flags]\n"
    "\n"
    "commands:\n"
    "  inspect     validate a model graph; print nodes, parameters, MACs, arena size; check weights\n"
    "  run         run a model on a .npy batch and write the logits as .npy\n"
    "  classify    classify images (JPEG, PNG, BMP, GIF, TGA, PPM/PGM) with PaddleClas's preprocessing\n"
    "  preprocess  write the (N, 3, 224, 224) tensor classify feeds the model, as .npy\n"
    "  bench       time the forward pass per batch size (seeded weights generated when none are given)\n"
    "\n"
    "`resnest <command> --help` describes each command's flags.\n";

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fputs("resnest: missing command (inspect, run, classify, preprocess, bench; see resnest --help)\n", stderr);
        return 2;
    }
    if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        std::fputs(kHelp, stdout);
        return 0;
    }
    if (!std::strcmp(argv[1], "--version")) {
        std::printf("resnest %s\n", RESNEST_VERSION);
        return 0;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "inspect") return resnest_cli::cmd_inspect(argc, argv);
        if (cmd == "run") return resnest_cli::cmd_run(argc, argv);
        if (cmd == "classify") return resnest_cli::cmd_classify(argc, argv);
        if (cmd == "preprocess") return resnest_cli::cmd_preprocess(argc, argv);
        if (cmd == "bench") return resnest_cli::cmd_bench(argc, argv);
        std::fprintf(stderr, "resnest: unknown command '%s' (commands: inspect, run, classify, preprocess, bench; see resnest --help)\n", cmd.c_str());
        return 2;
    } catch (const resnest_cli::UsageError& e) {
        std::fprintf(stderr, "resnest %s: %s\n", cmd.c_str(), e.message.c_str());
        return 2;
    } catch (const resnest::Error& e) {
        std::fprintf(stderr, "resnest %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        std::fprintf(stderr, "resnest %s: error: out of memory\n", cmd.c_str());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "resnest %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
