// cli.h: shared pieces of the `resnest` command-line tool: a strict flag parser and the subcommands.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "resnest/engine.h"
#include "resnest/error.h"

namespace resnest_cli {

// Raised for a usage error: main prints "resnest <cmd>: <message>" and exits 2.
struct UsageError {
    std::string message;
};

struct FlagSpec {
    std::string name;  // "--model"
    bool takes_value;
};

struct Args {
    std::map<std::string, std::string> values;  // flag -> value ("" for switches)
    std::vector<std::string> positional;

    bool has(const std::string& flag) const { return values.count(flag) > 0; }
    std::string get(const std::string& flag, const std::string& def = "") const;
    std::string require(const std::string& flag) const;
    // A whole number in [min_value, max_value], or UsageError naming the flag.
    int get_int(const std::string& flag, int def, int min_value, int max_value) const;
};

// Unknown flags, missing values and repeated flags are UsageErrors. "--flag=value" is accepted too.
Args parse_args(int argc, char** argv, int first, const std::vector<FlagSpec>& specs, bool allow_positional);

// Before any work: throws resnest::Error where `path` (the value of `flag`) cannot be written, naming it and
// why (its folder does not exist or is not writable, or the path is a folder), so that a long run does not
// end without its result. Creates nothing.
// `inputs`: the command's input files by flag; an output that is one of them (the same file, by any path) is
// refused, since writing it would destroy what the command reads.
void check_output_path(const std::string& path, const std::string& flag,
                       const std::vector<std::pair<std::string, std::string>>& inputs = {});

// A flag's value through the library's parser (resnest::parse_precision, parse_backend): a value it refuses
// is a usage error (exit 2), as every wrong flag is.
template <typename Parse>
auto parse_flag_value(Parse parse, const std::string& value) -> decltype(parse(value)) {
    try {
        return parse(value);
    } catch (const resnest::Error& e) {
        throw UsageError{e.what()};
    }
}

// EngineOptions from the flags the commands share: --backend, --precision, --threads, --device, --verbose.
resnest::EngineOptions engine_options_from_args(const Args& args);

// The images per forward pass of `run` and `classify`: `wanted` (their --batch, or its default) and no more
// than `images`, nor on the CUDA backend more than it runs in one pass of `model` (resnest::cuda_max_batch);
// when --batch asked for more than that, a note on stderr says so.
int images_per_pass(const Args& args, const resnest::EngineOptions& opt, const std::string& model, int wanted,
                    int64_t images, const char* command);

int cmd_inspect(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_classify(int argc, char** argv);    // cmd_classify.cpp
int cmd_preprocess(int argc, char** argv);  // cmd_classify.cpp
int cmd_bench(int argc, char** argv);       // cmd_bench.cpp

}  // namespace resnest_cli
