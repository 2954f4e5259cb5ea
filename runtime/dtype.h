// dtype.h: element types of weight files and tensors, their names and sizes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace resnest {

// Every dtype the safetensors format defines. The engine computes with F32 and F16 only; the others are
// parsed so that a file holding them (timm's I64 num_batches_tracked, say) can still be checked and read.
enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2 };

// "F32" -> DType::F32; returns false for a name the format does not define.
bool dtype_from_name(const std::string& name, DType* out);
const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);

// IEEE half <-> float, exact for every finite half (round-to-nearest-even on the way down).
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

}  // namespace resnest
