// dtype.cpp: dtype names and sizes, and IEEE half <-> float conversion.
#include "dtype.h"

#include <cmath>    // std::ldexp
#include <cstring>  // std::memcpy

namespace resnest {

namespace {

struct DTypeInfo {
    DType dtype;
    const char* name;  // as the safetensors header spells it
    size_t size;       // bytes per element
};

const DTypeInfo kDTypes[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4},         {DType::F16, "F16", 2},         {DType::BF16, "BF16", 2},
    {DType::I64, "I64", 8},   {DType::I32, "I32", 4},         {DType::I16, "I16", 2},         {DType::I8, "I8", 1},
    {DType::U64, "U64", 8},   {DType::U32, "U32", 4},         {DType::U16, "U16", 2},         {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
};

const DTypeInfo* dtype_info(DType dtype) {
    for (const DTypeInfo& info : kDTypes) {
        if (info.dtype == dtype) return &info;
    }
    return nullptr;
}

uint32_t float_bits(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return bits;
}

float float_from_bits(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// Shifts `value` right by `shift` bits, rounding to nearest with ties to even.
uint32_t shift_right_round_even(uint32_t value, int shift) {
    uint32_t kept = value >> shift;
    uint32_t rest = value & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (kept & 1u))) kept += 1;
    return kept;
}

}  // namespace

bool dtype_from_name(const std::string& name, DType* out) {
    for (const DTypeInfo& info : kDTypes) {
        if (name == info.name) {
            *out = info.dtype;
            return true;
        }
    }
    return false;
}

const char* dtype_name(DType dtype) {
    const DTypeInfo* info = dtype_info(dtype);
    return info ? info->name : "?";
}

size_t dtype_size(DType dtype) {
    const DTypeInfo* info = dtype_info(dtype);
    return info ? info->size : 0;
}

float half_to_float(uint16_t h) {
    uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        // Zero or subnormal: mantissa x 2^-24, exact in float.
        float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 0x1f) {
        // Inf (mantissa 0) or NaN (payload kept in the top mantissa bits).
        return float_from_bits(sign | 0x7f800000u | (mantissa << 13));
    }
    return float_from_bits(sign | ((exponent - 15 + 127) << 23) | (mantissa << 13));
}

uint16_t float_to_half(float f) {
    uint32_t bits = float_bits(f);
    uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) {
        if (magnitude == 0x7f800000u) return sign | 0x7c00u;  // inf
        // NaN: keep the top payload bits and set the quiet bit so the result cannot become inf.
        return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
    }
    int exponent = static_cast<int>(magnitude >> 23) - 127;
    uint32_t mantissa = magnitude & 0x7fffffu;
    if (exponent > 15) return sign | 0x7c00u;  // too large for any half: inf
    if (exponent >= -14) {
        // Normal half. A carry out of the mantissa correctly bumps the exponent (and 0x7bff + 1 is inf).
        uint32_t packed = (static_cast<uint32_t>(exponent + 15) << 23) | mantissa;
        return static_cast<uint16_t>(sign | shift_right_round_even(packed, 13));
    }
    // Subnormal half: the value in units of 2^-24 is (1.mantissa) x 2^(exponent + 24), i.e. the 24-bit
    // significand shifted right by -(exponent + 1). Below half the smallest subnormal it rounds to zero.
    int shift = -(exponent + 1);
    if (shift > 24) return sign;
    uint32_t significand = mantissa | 0x800000u;
    return static_cast<uint16_t>(sign | shift_right_round_even(significand, shift));
}

}  // namespace resnest
