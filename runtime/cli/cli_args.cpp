// cli_args.cpp: the command-line flag parser shared by the `resnest` subcommands.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>
#include <vector>

#include "cli/cli.h"
#include "resnest/error.h"

namespace resnest_cli {

std::string Args::get(const std::string& flag, const std::string& def) const {
    auto it = values.find(flag);
    return it == values.end() ? def : it->second;
}

std::string Args::require(const std::string& flag) const {
    auto it = values.find(flag);
    if (it == values.end()) throw UsageError{"missing required flag " + flag};
    return it->second;
}

void check_output_path(const std::string& path, const std::string& flag,
                       const std::vector<std::pair<std::string, std::string>>& inputs) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (fs::is_directory(status)) throw resnest::Error(path + ": " + flag + " names a folder; give a file path inside it");
    if (fs::exists(status) && !fs::is_character_file(status)) {  // /dev/null may be every flag's
        for (const auto& [in_flag, in_path] : inputs) {
            std::error_code same_ec;
            if (!in_path.empty() && fs::equivalent(path, in_path, same_ec))
                throw resnest::Error(path + ": " + flag + " is the " + in_flag + " file (" + in_path +
                                     "); writing it would destroy it: give another " + flag + " path");
        }
    }
    if (fs::exists(status)) {  // a file (or a device such as /dev/null): written in place
        if (access(path.c_str(), W_OK) != 0)
            throw resnest::Error(path + ": cannot write " + flag + ": the file is not writable");
        return;
    }
    fs::path folder = fs::path(path).parent_path();
    if (folder.empty()) folder = ".";
    const fs::file_status folder_status = fs::status(folder, ec);
    if (!fs::is_directory(folder_status)) {
        const bool missing = !ec || ec == std::errc::no_such_file_or_directory;
        throw resnest::Error(path + ": cannot write " + flag + ": the folder '" + folder.string() + "' " +
                             (missing ? "does not exist (create it first)" : "cannot be read (" + ec.message() + ")"));
    }
    if (access(folder.c_str(), W_OK | X_OK) != 0)  // a new file is created in it
        throw resnest::Error(path + ": cannot write " + flag + ": the folder '" + folder.string() + "' is not writable");
}

int Args::get_int(const std::string& flag, int def, int min_value, int max_value) const {
    auto it = values.find(flag);
    if (it == values.end()) return def;
    const std::string& s = it->second;
    bool digits = !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
    int v = digits ? std::stoi(s) : -1;
    if (!digits || v < min_value || v > max_value)
        throw UsageError{flag + " takes a whole number in [" + std::to_string(min_value) + ", " +
                         std::to_string(max_value) + "], got '" + s + "'"};
    return v;
}

int images_per_pass(const Args& args, const resnest::EngineOptions& opt, const std::string& model, int wanted,
                    int64_t images, const char* command) {
    int batch = (int)std::min<int64_t>(wanted, images);
    if (opt.backend != resnest::Backend::cuda) return batch;
    const int limit = resnest::cuda_max_batch(model);
    if (limit >= 1 && batch > limit) {  // (0: no batch fits; the load says why)
        if (args.has("--batch"))
            std::fprintf(stderr,
                         "resnest %s: --batch %d is more than the CUDA backend runs in one pass of %s (cuDNN takes "
                         "no tensor over 2^31 - 1 elements); running batches of %d\n",
                         command, wanted, model.c_str(), limit);
        batch = limit;
    }
    return batch;
}

resnest::EngineOptions engine_options_from_args(const Args& args) {
    resnest::EngineOptions opt;
    opt.backend = parse_flag_value(resnest::parse_backend, args.get("--backend", "cpu"));
    opt.precision = parse_flag_value(resnest::parse_precision, args.get("--precision", "fp32"));
    opt.threads = args.get_int("--threads", 0, 1, 256);
    opt.device = args.get_int("--device", 0, 0, 64);
    opt.verbose = args.has("--verbose");
    std::string passes = args.get("--passes", "auto");
    if (passes == "auto") opt.passes = -1;
    else if (passes == "on") opt.passes = 1;
    else if (passes == "off") opt.passes = 0;
    else throw UsageError{"--passes takes auto, on or off, got '" + passes + "'"};
    opt.cuda_graph = !args.has("--no-graph");
    opt.dependent_launch = !args.has("--no-pdl");
    opt.algo_cache = args.get("--algo-cache", "");
    opt.conv_search = args.get("--conv-search", "find");
    if (opt.conv_search != "find" && opt.conv_search != "timed")
        throw UsageError{"--conv-search takes find or timed, got '" + opt.conv_search + "'"};
    opt.conv_gemm = args.get("--conv-gemm", "auto");
    if (opt.conv_gemm != "auto" && opt.conv_gemm != "on" && opt.conv_gemm != "off")
        throw UsageError{"--conv-gemm takes auto, on or off, got '" + opt.conv_gemm + "'"};
    opt.conv_graph = args.get("--conv-graph", "auto");
    if (opt.conv_graph != "auto" && opt.conv_graph != "on" && opt.conv_graph != "off")
        throw UsageError{"--conv-graph takes auto, on or off, got '" + opt.conv_graph + "'"};
    if (args.get("--conv-workspace", "auto") != "auto") {
        try {
            opt.conv_workspace_mib = args.get_int("--conv-workspace", 0, 0, 65536);
        } catch (const UsageError&) {
            throw UsageError{"--conv-workspace takes auto or a whole number of MiB in [0, 65536], got '" +
                             args.get("--conv-workspace") + "'"};
        }
    }
    if (args.has("--algo-cache") && opt.algo_cache.empty())
        throw UsageError{"--algo-cache needs a file path (or 'none')"};
    if (opt.backend == resnest::Backend::cpu) {  // the CUDA backend's flags do nothing there: say so once
        std::string given;
        for (const char* flag : {"--device", "--no-graph", "--no-pdl", "--algo-cache", "--conv-search", "--conv-gemm",
                                 "--conv-graph", "--conv-workspace", "--profile"})
            if (args.has(flag)) given += std::string(given.empty() ? "" : ", ") + flag;
        if (!given.empty())
            std::fprintf(stderr, "resnest: warning: %s %s the CUDA backend's; ignored with --backend cpu\n",
                         given.c_str(), given.find(',') == std::string::npos ? "is" : "are");
    }
    return opt;
}

Args parse_args(int argc, char** argv, int first, const std::vector<FlagSpec>& specs, bool allow_positional) {
    Args args;
    for (int i = first; i < argc; i++) {
        std::string a = argv[i];
        if (a.size() > 1 && a[0] == '-' && a != "-") {
            std::string name = a, value;
            size_t eq = a.find('=');
            bool inline_value = eq != std::string::npos;
            if (inline_value) name = a.substr(0, eq), value = a.substr(eq + 1);
            auto spec = std::find_if(specs.begin(), specs.end(), [&](const FlagSpec& s) { return s.name == name; });
            if (spec == specs.end()) throw UsageError{"unknown flag '" + name + "' (see --help)"};
            if (args.has(name)) throw UsageError{"flag " + name + " given twice"};
            if (spec->takes_value && !inline_value) {
                if (i + 1 >= argc) throw UsageError{"flag " + name + " needs a value"};
                value = argv[++i];
            } else if (!spec->takes_value && inline_value) {
                throw UsageError{"flag " + name + " takes no value"};
            }
            args.values[name] = value;
        } else {
            if (!allow_positional) throw UsageError{"unexpected argument '" + a + "' (see --help)"};
            args.positional.push_back(a);
        }
    }
    return args;
}

}  // namespace resnest_cli
