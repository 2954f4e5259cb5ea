// conv_algo_cache.h: the convolution algorithm choices the CUDA backend made, in memory and in a text file,
// so a second start skips the search. Host code only (no CUDA types), so it is tested on any machine.
//
// A key names everything the choice depends on: GPU, compute capability, cuDNN version, precision, batch
// and the layer's shape (conv_algo_key). The file holds one choice per line:
//   <key>\t<algo>\t<math type>\t<workspace bytes>[\t<opaque>]
// where <opaque> (optional) is a library's serialized algorithm descriptor in hex: cuBLASLt's
// cublasLtMatmulAlgo_t (64 bytes, then its FNV-1a hash as 8 more hex digits: bytes_to_checked_hex, so an
// edited or damaged entry is chosen again rather than handed to cuBLASLt), which its header says restores
// for the same cuBLAS version (in the key), or a cuDNN graph engine's global index and knobs
// (cudnn_engine_choice.h), so a cached start skips the heuristic query.
// Lines that do not parse are skipped and counted (a corrupt cache costs a search, never a failure).
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace resnest {

struct ConvAlgoChoice {
    int algo = -1;       // cudnnConvolutionFwdAlgo_t; a rank in a heuristic list; a ConvImpl
    int math_type = 0;   // cudnnMathType_t; cuBLASLt's split-K (pack_split_k, conv_as_gemm.h), < 1024
    int64_t workspace_bytes = 0;
    std::string opaque;  // hex of a serialized algorithm descriptor, or empty
};

constexpr size_t kMaxOpaqueHex = 4096;  // longer <opaque> fields do not parse
constexpr int kMaxCachedAlgo = 1023;    // larger <algo> fields (an algorithm enum or a heuristic rank) do not parse

// Bytes as lowercase hex, and back: false unless `hex` is exactly 2 * bytes hex digits.
std::string bytes_to_hex(const void* data, size_t bytes);
bool hex_to_bytes(const std::string& hex, void* data, size_t bytes);
// The same followed by the bytes' FNV-1a 32-bit hash (8 more hex digits), for what a library takes as it is
// (a serialized cublasLtMatmulAlgo_t, which cuBLASLt's check may accept edited and then fault on): false
// unless the length and the hash match, so an edited or damaged entry is chosen again rather than run.
std::string bytes_to_checked_hex(const void* data, size_t bytes);
bool checked_hex_to_bytes(const std::string& hex, void* data, size_t bytes);

struct ConvAlgoKeyParts {
    std::string device;  // GPU name
    int cc_major = 0, cc_minor = 0;
    int cudnn_version = 0;
    std::string precision;  // fp32, tf32, fp16
    int batch = 0, in_channels = 0, in_h = 0, in_w = 0, out_channels = 0;
    int kernel_h = 0, kernel_w = 0, stride_h = 0, stride_w = 0, pad_h = 0, pad_w = 0;
    int dilation_h = 0, dilation_w = 0, groups = 0;
    bool fused_bias_relu = false;  // the cudnnConvolutionBiasActivationForward call (restricts the algorithms)
    bool residual = false;         // a second input z added before the ReLU (another cuDNN operation graph)
    bool timed_search = false;     // chosen by timing the node's own call (EngineOptions::conv_search "timed")
    int workspace_mib = 128;       // the workspace the choice was limited to (named in the key unless 128)
};

// One line, no tabs or newlines (any in the device name become spaces).
std::string conv_algo_key(const ConvAlgoKeyParts& p);
// The key of another op's choice (the split-attention gate's form, the classifier's way): the device,
// library, precision and batch fields of p, then `op`, which names the op's shape and its candidates.
std::string op_algo_key(const ConvAlgoKeyParts& p, const std::string& op);

// The default cache file: $RESNEST_CACHE_DIR/conv_algos.tsv, else $XDG_CACHE_HOME/resnest/..., else
// $HOME/.cache/resnest/...; "" when none of these is set.
std::string conv_algo_cache_default_path();

// The file EngineOptions::algo_cache names: "none" -> "" (memory only), "" -> the default path, else itself.
std::string conv_algo_cache_path(const std::string& option);

class ConvAlgoCache {
  public:
    // path "" keeps the cache in memory only. A missing file is an empty cache.
    explicit ConvAlgoCache(std::string path);
    bool lookup(const std::string& key, ConvAlgoChoice* out) const;
    // Records a choice and appends it to the file (creating its folder) as one line in one write; a file that
    // cannot be written leaves a warning in last_warning() (printed the first time) and the cache in memory
    // only. A folder, or a file none of whose lines parse (a graph, weights: another file given by mistake), is
    // never written (its warning is there from the start).
    void insert(const std::string& key, const ConvAlgoChoice& choice);

    const std::string& path() const { return path_; }
    int loaded() const { return loaded_; }        // choices read from the file
    int skipped_lines() const { return skipped_; }  // lines that did not parse
    std::string last_warning() const;

  private:
    std::string path_;
    mutable std::mutex mutex_;
    std::map<std::string, ConvAlgoChoice> choices_;
    int loaded_ = 0, skipped_ = 0;
    bool writable_ = true;
    std::string warning_;
};

}  // namespace resnest
