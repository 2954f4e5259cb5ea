// safetensors.h: reader (memory-mapped, fully validated) and writer for the safetensors weight format.
//
// Layout: 8-byte little-endian header length L, then L bytes of JSON
//   { "__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ... }
// then one data block; offsets are relative to the block's start.
// The reader trusts nothing: header length bound, valid JSON object, known dtype, shape product x dtype size
// equal to the byte span (overflow-checked), spans in bounds, no overlap, the data block covered with no hole
// and nothing past it, no duplicate names. Each failure throws resnest::Error naming the file and tensor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dtype.h"

namespace resnest {

// The largest JSON header accepted (the format's own reference reader uses the same bound).
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100ull * 1000 * 1000;
// The deepest nesting of arrays and objects in the header (a valid header needs 3: the header object, an
// entry, its shape).
constexpr int kSafetensorsMaxJsonDepth = 32;

struct SafetensorsTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;  // empty for a scalar
    const uint8_t* data;         // points into the mapping; valid while the file object lives
    uint64_t nbytes;
};

class SafetensorsFile {
  public:
    // Maps and validates the file. Throws resnest::Error on any problem.
    static std::shared_ptr<SafetensorsFile> open(const std::string& path);
    ~SafetensorsFile();
    SafetensorsFile(const SafetensorsFile&) = delete;
    SafetensorsFile& operator=(const SafetensorsFile&) = delete;

    const std::string& path() const { return path_; }
    // In header order.
    const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
    // nullptr when absent.
    const SafetensorsTensor* find(const std::string& name) const;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }

  private:
    SafetensorsFile() = default;
    std::string path_;
    void* map_ = nullptr;
    size_t map_bytes_ = 0;
    std::vector<SafetensorsTensor> tensors_;
    std::map<std::string, size_t> index_;
    std::map<std::string, std::string> metadata_;
};

struct SafetensorsWriteTensor {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    const void* data;  // shape product x dtype_size bytes, little-endian
};

// Writes tensors in the given order, data block packed with no gaps, header padded with spaces to a
// multiple of 8 bytes. Throws resnest::Error on a duplicate name or an I/O failure.
void safetensors_write(const std::string& path, const std::vector<SafetensorsWriteTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace resnest
