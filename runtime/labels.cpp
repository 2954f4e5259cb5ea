// labels.cpp: label files in PaddleClas's "<id> <name>" format, the default list's location, and top-k.
#include "labels.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <unistd.h>  // readlink

#include "resnest/error.h"

namespace resnest {

std::vector<std::string> labels_read(const std::string& path, int64_t num_classes) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot open the label file");
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(f, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        lines.push_back(line);
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    if ((int64_t)lines.size() != num_classes)
        throw Error(path + ": has " + std::to_string(lines.size()) + " label lines but the model has " +
                    std::to_string(num_classes) + " classes (one \"<id> <name>\" line per class)");
    std::vector<std::string> names((size_t)num_classes);
    std::vector<bool> seen((size_t)num_classes, false);
    for (size_t i = 0; i < lines.size(); i++) {
        const std::string& l = lines[i];
        const std::string where = path + ":" + std::to_string(i + 1) + ": ";
        const size_t space = l.find(' ');
        const std::string id_text = l.substr(0, space);
        const bool digits = !id_text.empty() && id_text.size() <= 9 &&
                            std::all_of(id_text.begin(), id_text.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) throw Error(where + "expected \"<id> <name>\" with a whole-number id, got '" + l + "'");
        const int64_t id = std::stoll(id_text);
        if (id >= num_classes)
            throw Error(where + "class id " + id_text + " is out of range for a model with " +
                        std::to_string(num_classes) + " classes");
        if (seen[(size_t)id]) throw Error(where + "class id " + id_text + " appears twice");
        seen[(size_t)id] = true;
        names[(size_t)id] = space == std::string::npos ? "" : l.substr(space + 1);
    }
    return names;
}

std::string labels_find_default(const std::string& graph_path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path beside_graph = fs::path(graph_path).parent_path() / kImagenetLabelFile;
    if (fs::is_regular_file(beside_graph, ec)) return beside_graph.string();
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        fs::path beside_exe = fs::path(exe).parent_path().parent_path() / "models" / kImagenetLabelFile;
        if (fs::is_regular_file(beside_exe, ec)) return beside_exe.string();
    }
    return "";
}

TopK topk_rank(const float* output, int64_t classes, int k, bool outputs_are_probabilities) {
    TopK r;
    k = (int)std::min<int64_t>(std::max(k, 0), classes);
    std::vector<int64_t> idx((size_t)classes);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t b) {
        return output[a] > output[b] || (output[a] == output[b] && a < b);
    });
    double sum = 1.0, m = 0.0;
    if (!outputs_are_probabilities) {
        m = *std::max_element(output, output + classes);
        sum = 0.0;
        for (int64_t c = 0; c < classes; c++) sum += std::exp((double)output[c] - m);
    }
    for (int i = 0; i < k; i++) {
        const int64_t c = idx[(size_t)i];
        r.class_ids.push_back(c);
        r.scores.push_back(outputs_are_probabilities ? (double)output[c] : std::exp((double)output[c] - m) / sum);
    }
    return r;
}

}  // namespace resnest
