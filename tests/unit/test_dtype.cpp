// test_dtype.cpp: dtype names and sizes, and half <-> float conversion (exhaustive round trip, rounding,
// the vectorised bulk conversion against the scalar one).
#include <catch2/catch.hpp>

#include <cmath>    // std::isnan, std::ldexp, std::fabs, std::isinf
#include <cstring>  // std::memcpy
#include <random>   // std::mt19937, std::random_device
#include <vector>

#include "dtype.h"  // resnest::DType, dtype_*, half_to_float, float_to_half
#include "weight_layout.h"  // floats_to_halves

using namespace resnest;

namespace {

float float_from_bits(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

bool half_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

}  // namespace

TEST_CASE("dtype names and sizes follow the safetensors format", "[dtype]") {
    struct Expected {
        DType dtype;
        const char* name;
        size_t size;
    };
    const Expected all[] = {
        {DType::F64, "F64", 8},   {DType::F32, "F32", 4},         {DType::F16, "F16", 2},
        {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8},         {DType::I32, "I32", 4},
        {DType::I16, "I16", 2},   {DType::I8, "I8", 1},           {DType::U64, "U64", 8},
        {DType::U32, "U32", 4},   {DType::U16, "U16", 2},         {DType::U8, "U8", 1},
        {DType::BOOL, "BOOL", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    };
    for (const Expected& e : all) {
        CAPTURE(e.name);
        CHECK(std::string(dtype_name(e.dtype)) == e.name);
        CHECK(dtype_size(e.dtype) == e.size);
        DType parsed = DType::U8;
        REQUIRE(dtype_from_name(e.name, &parsed));
        CHECK(parsed == e.dtype);
    }
}

TEST_CASE("dtype_from_name rejects names the format does not define", "[dtype]") {
    DType parsed = DType::F32;
    CHECK_FALSE(dtype_from_name("f32", &parsed));
    CHECK_FALSE(dtype_from_name("F128", &parsed));
    CHECK_FALSE(dtype_from_name("", &parsed));
    CHECK_FALSE(dtype_from_name("F32 ", &parsed));
    CHECK(parsed == DType::F32);
}

TEST_CASE("every half bit pattern round-trips through float", "[dtype]") {
    for (uint32_t bits = 0; bits <= 0xffffu; ++bits) {
        uint16_t h = static_cast<uint16_t>(bits);
        float f = half_to_float(h);
        uint16_t back = float_to_half(f);
        if (half_is_nan(h)) {
            INFO("half 0x" << std::hex << bits);
            CHECK(std::isnan(f));
            CHECK(half_is_nan(back));
        } else if (back != h) {
            FAIL("half 0x" << std::hex << bits << " came back as 0x" << back);
        }
    }
}

TEST_CASE("half_to_float gives the exact values of hand-checked halves", "[dtype]") {
    CHECK(half_to_float(0x3c00) == 1.0f);
    CHECK(half_to_float(0xc000) == -2.0f);
    CHECK(half_to_float(0x7bff) == 65504.0f);
    CHECK(half_to_float(0x0400) == std::ldexp(1.0f, -14));  // smallest normal
    CHECK(half_to_float(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
    CHECK(half_to_float(0x03ff) == std::ldexp(1023.0f, -24));
    CHECK(half_to_float(0x3555) == 0.25f * (1.0f + 0x155 / 1024.0f));  // 0.333251953125
    CHECK(std::isinf(half_to_float(0x7c00)));
    CHECK(half_to_float(0xfc00) < 0);
    CHECK(std::isnan(half_to_float(0x7e00)));
    CHECK(std::signbit(half_to_float(0x8000)));
}

TEST_CASE("float_to_half rounds to nearest even on hand-checked values", "[dtype]") {
    const float two_pow_minus_11 = std::ldexp(1.0f, -11);
    CHECK(float_to_half(1.0f) == 0x3c00);
    CHECK(float_to_half(-1.0f) == 0xbc00);
    CHECK(float_to_half(0.0f) == 0x0000);
    CHECK(float_to_half(-0.0f) == 0x8000);
    CHECK(float_to_half(65504.0f) == 0x7bff);
    CHECK(float_to_half(65519.0f) == 0x7bff);  // just below the halfway point to 65536
    CHECK(float_to_half(65520.0f) == 0x7c00);  // halfway rounds to even: inf
    CHECK(float_to_half(-65520.0f) == 0xfc00);
    CHECK(float_to_half(1e10f) == 0x7c00);
    CHECK(float_to_half(5.96e-8f) == 0x0001);
    CHECK(float_to_half(1.0f + two_pow_minus_11) == 0x3c00);      // tie, keeps the even 0x3c00
    CHECK(float_to_half(1.0f + 3 * two_pow_minus_11) == 0x3c02);  // tie, rounds up to the even 0x3c02
    CHECK(float_to_half(1.0f + 1.5f * two_pow_minus_11) == 0x3c01);
    CHECK(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);                          // tie between 0 and 0x0001: 0
    CHECK(float_to_half(std::ldexp(1.0f, -25) * 1.0000001f) == 0x0001);             // just above the tie
    CHECK(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);                          // tie between 1 and 2: 2
    CHECK(float_to_half(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -26)) == 0x0400);  // rounds up into normals
    CHECK(float_to_half(std::ldexp(1.0f, -30)) == 0x0000);
    CHECK(float_to_half(float_from_bits(0x00000001u)) == 0x0000);  // float subnormal
    CHECK(float_to_half(float_from_bits(0x80000001u)) == 0x8000);
    CHECK(float_to_half(INFINITY) == 0x7c00);
    CHECK(float_to_half(-INFINITY) == 0xfc00);
    CHECK(half_is_nan(float_to_half(NAN)));
    CHECK(half_is_nan(float_to_half(float_from_bits(0x7f800001u))));  // NaN payload only in the low bits
}

TEST_CASE("float_to_half picks the nearest half for random floats", "[dtype]") {
    std::random_device seed_source;
    uint32_t seed = seed_source();
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<uint32_t> any_bits;
    for (int i = 0; i < 200000; ++i) {
        // Magnitudes from 2^-27 up to 2^16, both signs.
        uint32_t exponent = 127 - 27 + any_bits(rng) % 44;
        uint32_t bits = (any_bits(rng) & 0x807fffffu) | (exponent << 23);
        float f = float_from_bits(bits);
        uint16_t h = float_to_half(f);
        if ((h & 0x7fffu) >= 0x7c00u) {
            REQUIRE(std::fabs(f) >= 65520.0f);
            continue;
        }
        REQUIRE(std::fabs(f) < 65520.0f);
        double error = std::fabs(static_cast<double>(half_to_float(h)) - f);
        // The neighbours one step away in magnitude must not be closer.
        uint16_t magnitude = h & 0x7fffu;
        uint16_t sign = h & 0x8000u;
        if (magnitude < 0x7bffu) {
            double up = std::fabs(static_cast<double>(half_to_float(sign | (magnitude + 1))) - f);
            REQUIRE(error <= up);
        }
        if (magnitude > 0) {
            double down = std::fabs(static_cast<double>(half_to_float(sign | (magnitude - 1))) - f);
            REQUIRE(error <= down);
        }
    }
}

TEST_CASE("floats_to_halves (F16C eight at a time where built with it) equals float_to_half bit for bit",
          "[dtype]") {
    std::random_device seed_source;
    uint32_t seed = seed_source();
    INFO("seed " << seed);
    std::mt19937 rng(seed);
    std::uniform_int_distribution<uint32_t> any_bits;
    // Any bit pattern (NaNs, infinities, subnormals of both formats, overflow), then the ties and edges by
    // hand; 100003 is not a multiple of 8, so the scalar tail runs too.
    std::vector<float> v(100003);
    for (float& f : v) f = float_from_bits(any_bits(rng));
    const float edges[] = {65504.0f, 65519.99f, 65520.0f, -65520.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-26f,
                           0.0f, -0.0f, 1.0f + 0x1p-11f, 1.0f + 0x1.8p-11f, 0x1.ffcp-15f, INFINITY, -INFINITY};
    for (size_t k = 0; k < sizeof edges / sizeof edges[0]; k++) v[k * 7] = edges[k];
    std::vector<uint16_t> h = floats_to_halves(v);
    REQUIRE(h.size() == v.size());
    size_t differ = 0, first = v.size();
    for (size_t i = 0; i < v.size(); i++)
        if (h[i] != float_to_half(v[i])) differ++, first = std::min(first, i);
    INFO("first difference at " << first);
    CHECK(differ == 0);
}
