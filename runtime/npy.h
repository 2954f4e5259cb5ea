// npy.h: numpy .npy files (format 1.0/2.0/3.0), float32 little-endian, C order: the CLI's tensor format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace resnest {

struct NpyArray {
    std::vector<int64_t> shape;
    std::vector<float> data;  // shape product values, C order
};

// Reads a float32 array. Throws resnest::Error naming the file for a bad magic, an unsupported version,
// a malformed header, a dtype other than '<f4' (saying which dtype it found and how to convert),
// fortran_order True, or a data size that does not match the shape. NaN/Inf values are not checked here:
// the caller decides.
NpyArray npy_read(const std::string& path);

// Writes a float32 array, format 1.0. Throws resnest::Error on an I/O failure.
void npy_write(const std::string& path, const std::vector<int64_t>& shape, const float* data);

}  // namespace resnest
