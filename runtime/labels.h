// labels.h: class-name lists in PaddleClas's class_id_map format, one "<id> <name>" line per class
// (models/imagenet1k_label_list.txt is ImageNet-1k's, as ppcls/utils/imagenet1k_label_list.txt), and the
// softmax/top-k ranking of a model's output.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace resnest {

// The file name of the shipped ImageNet-1k list.
constexpr const char* kImagenetLabelFile = "imagenet1k_label_list.txt";

// Reads a label file: each line is split at its first space into an integer id and a name (the rest of the
// line, which may contain spaces; a trailing '\r' is dropped); empty lines at the end are ignored. The ids
// must be 0..num_classes-1, each once, so the line count must equal num_classes. Returns names by id.
// Throws resnest::Error naming the file and the line.
std::vector<std::string> labels_read(const std::string& path, int64_t num_classes);

// The shipped list next to the model graph (<graph dir>/imagenet1k_label_list.txt) or in the models/
// folder beside the executable's folder (<exe dir>/../models/); "" when neither exists.
std::string labels_find_default(const std::string& graph_path);

struct TopK {
    std::vector<int64_t> class_ids;  // best first; ties go to the lower id
    std::vector<double> scores;      // probabilities
};

// Ranks one image's output. With outputs_are_probabilities false the values are logits and a softmax (in
// double, max-subtracted) gives the scores; with true (a graph ending in softmax, as a PaddleClas export)
// they are used as they are, never put through a second softmax.
TopK topk_rank(const float* output, int64_t classes, int k, bool outputs_are_probabilities);

}  // namespace resnest
