// npy.h: numpy .npy files (format 1.0/2.0/3.0), float32 little-endian, C order: the CLI's tensor format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace resnest {

// Limits of the reader, each refused with an error naming it. Arrays are also bounded by
// kMaxTensorElements (graph.h): 2^30 float32 values, 4 GiB.
constexpr uint64_t kNpyMaxHeaderBytes = 1u << 20;  // the header dict text (numpy writes ~120 bytes)
constexpr size_t kNpyMaxRank = 32;                 // dimensions (numpy's own limit was 32 until 2.0)

struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> data;  // shape product values, C order
};

// Reads a float32 array. Throws resnest::Error naming the file for a bad magic, an unsupported version,
// a malformed header, a dtype other than '<f4' (saying which dtype it found and how to convert),
// fortran_order True, more than kMaxTensorElements values, or a data size that does not match the shape.
// Memory grows with the bytes actually read, never with what the header claims. NaN/Inf values are not
// checked here: the caller decides.
NpyArray npy_read(const std::string& path);

// Writes a float32 array, format 1.0. Throws resnest::Error on an I/O failure.
void npy_write(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace resnest
