// test_helpers.h: shared pieces of the unit suites: fresh random data, temp files, repository paths.
#pragma once
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "../nhwc_layout.h"

namespace test {

inline std::string source_path(const std::string& rel) { return std::string(RESNEST_SOURCE_DIR) + "/" + rel; }
inline std::string binary_path(const std::string& rel) { return std::string(RESNEST_BINARY_DIR) + "/" + rel; }

// A generator seeded from std::random_device: every run checks fresh data. The seed is printed by the
// caller through INFO so a failure can be replayed.
inline std::mt19937_64& rng() {
    static std::mt19937_64 gen = [] {
        std::random_device rd;
        return std::mt19937_64(((uint64_t)rd() << 32) ^ rd());
    }();
    return gen;
}

// Uniform in [lo, hi), never exactly zero.
inline std::vector<float> random_floats(size_t count, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(count);
    for (float& x : v) {
        do x = dist(rng());
        while (x == 0.f);
    }
    return v;
}

// A private temporary directory, removed with the object.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("resnest_test_" + std::to_string(std::random_device{}()) + std::to_string(rng()() % 100000));
        std::filesystem::create_directories(path);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
}

inline std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Writes bytes to a file; throws when it cannot (the test then fails with the message).
inline void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out.good()) throw std::runtime_error(path + ": cannot write the test file");
}

// (N, C, HW) -> (N, HW, C)
using test_layout::nchw_to_nhwc;

// max |a - b| / max |b|; NaN anywhere gives NaN.
inline double max_rel_error(const float* a, const float* b, size_t n) {
    double diff = 0, ref = 0;
    for (size_t i = 0; i < n; i++) {
        if (std::isnan(a[i]) || std::isnan(b[i])) return NAN;
        diff = std::max(diff, (double)std::fabs((double)a[i] - b[i]));
        ref = std::max(ref, (double)std::fabs((double)b[i]));
    }
    return ref > 0 ? diff / ref : diff;
}

}  // namespace test
