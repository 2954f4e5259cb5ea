// cuda_test_helpers.h: what the GPU tests share: fresh random data (a new seed each run, printed on
// failure), device buffers with poisoned guard regions, layout transposes, and the error measures.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "dtype.h"
#include "graph.h"
#include "../nhwc_layout.h"
#include "resnest/engine.h"
#include "resnest/error.h"

namespace cuda_test {

// The repository root: $RESNEST_SOURCE_DIR when set (a build carried to another machine), else the
// checkout this was built from.
inline std::string source_dir() {
    const char* env = std::getenv("RESNEST_SOURCE_DIR");
    return env && *env ? env : RESNEST_SOURCE_DIR;
}
// A folder for scratch files: $TMPDIR or /tmp.
inline std::string scratch_dir() {
    const char* env = std::getenv("TMPDIR");
    return env && *env ? env : "/tmp";
}

// The four committed graphs every shape sweep and whole-model test runs over, and their graphs, loaded once.
inline const char* const kModels[] = {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json",
                                      "models/resnest50d_torch.json", "models/resnest50_fast_1s1x64d_torch.json"};
inline std::vector<const resnest::Graph*> model_graphs() {
    static const std::vector<resnest::Graph> graphs = [] {
        std::vector<resnest::Graph> loaded;
        for (const char* m : kModels) loaded.push_back(resnest::graph_load(source_dir() + "/" + m));
        return loaded;
    }();
    std::vector<const resnest::Graph*> out;
    for (const auto& g : graphs) out.push_back(&g);
    return out;
}

inline const char* pname(resnest::Precision p) { return resnest::precision_name(p); }

inline void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) throw resnest::Error(std::string(what) + ": " + cudaGetErrorString(e));
}

// A fresh seed per process: every run draws new data. Tests print it with INFO so a failure reproduces.
inline uint64_t run_seed() {
    static uint64_t seed = [] {
        std::random_device rd;
        return ((uint64_t)rd() << 32) ^ rd();
    }();
    return seed;
}

// Uniform values in [lo, hi], never exactly zero.
inline std::vector<float> random_floats(size_t count, float lo, float hi, uint64_t salt) {
    std::mt19937_64 rng(run_seed() ^ (salt * 0x9E3779B97F4A7C15ull));
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(count);
    for (float& x : v) {
        do x = dist(rng);
        while (x == 0.0f);
    }
    return v;
}

// Small nonzero integers in [-range, range]: products and sums stay exact in float.
inline std::vector<float> random_small_ints(size_t count, int range, uint64_t salt) {
    std::mt19937_64 rng(run_seed() ^ (salt * 0xD1B54A32D192ED03ull));
    std::uniform_int_distribution<int> dist(-range, range);
    std::vector<float> v(count);
    for (float& x : v) {
        int k;
        do k = dist(rng);
        while (k == 0);
        x = (float)k;
    }
    return v;
}

// (N, C, HW) <-> (N, HW, C)
using test_layout::nchw_to_nhwc;
using test_layout::nhwc_to_nchw;

constexpr size_t kGuardBytes = 4096;
constexpr unsigned char kPoison = 0xFF;  // all-ones bytes: NaN as float and as half

// A device array of `count` elements of `esize` bytes with poisoned guard regions before and after; the
// body is poisoned too, so an element nothing wrote reads back as NaN. `skew` bytes more before the body
// put data() off the allocation's 256-byte alignment (1 element: off every 16-byte boundary too).
class GuardedBuffer {
  public:
    GuardedBuffer(size_t count, size_t esize, size_t skew = 0)
        : count_(count), esize_(esize), lead_(kGuardBytes + skew) {
        check(cudaMalloc(&base_, bytes_total()), "cudaMalloc");
        check(cudaMemset(base_, kPoison, bytes_total()), "cudaMemset");
    }
    ~GuardedBuffer() { cudaFree(base_); }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;

    void* data() const { return (unsigned char*)base_ + lead_; }
    size_t count() const { return count_; }

    // Uploads floats in the element type (4 = float, 2 = half).
    void upload(const std::vector<float>& v) {
        std::vector<unsigned char> host(count_ * esize_);
        for (size_t i = 0; i < count_; i++) {
            if (esize_ == 4) std::memcpy(&host[i * 4], &v[i], 4);
            else {
                uint16_t h = resnest::float_to_half(v[i]);
                std::memcpy(&host[i * 2], &h, 2);
            }
        }
        check(cudaMemcpy(data(), host.data(), host.size(), cudaMemcpyHostToDevice), "upload");
    }

    // Downloads as floats; returns false (and says why in *why, and on stderr: the callers' REQUIRE shows
    // only the call) if a guard byte changed.
    bool download(std::vector<float>& v, std::string* why) const {
        std::vector<unsigned char> host(bytes_total());
        check(cudaMemcpy(host.data(), base_, host.size(), cudaMemcpyDeviceToHost), "download");
        auto overwritten = [&](size_t i, const char* where) {
            *why = "guard byte " + std::to_string(i) + " " + where + " the output was overwritten";
            std::fprintf(stderr, "GuardedBuffer::download: %s\n", why->c_str());
            return false;
        };
        for (size_t i = 0; i < lead_; i++)
            if (host[i] != kPoison) return overwritten(i, "before");
        for (size_t i = 0; i < kGuardBytes; i++)
            if (host[lead_ + count_ * esize_ + i] != kPoison) return overwritten(i, "after");
        v.resize(count_);
        const unsigned char* body = host.data() + lead_;
        for (size_t i = 0; i < count_; i++) {
            if (esize_ == 4) std::memcpy(&v[i], body + i * 4, 4);
            else {
                uint16_t h;
                std::memcpy(&h, body + i * 2, 2);
                v[i] = resnest::half_to_float(h);
            }
        }
        return true;
    }

  private:
    size_t bytes_total() const { return lead_ + count_ * esize_ + kGuardBytes; }
    void* base_ = nullptr;
    size_t count_, esize_, lead_;  // lead_: the bytes before the body (the guard and the skew)
};

// max |got - ref| / max |ref|; infinity when got holds a NaN or the sizes differ.
inline double max_rel_error(const std::vector<float>& got, const std::vector<float>& ref) {
    if (got.size() != ref.size()) return INFINITY;
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < got.size(); i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        num = std::fmax(num, std::fabs((double)got[i] - ref[i]));
        den = std::fmax(den, std::fabs((double)ref[i]));
    }
    return den > 0.0 ? num / den : num;
}

// The tolerance per precision (fp32 1e-5, tf32 5e-3, fp16 1e-2); overrides are commented per case.
inline double op_tolerance(resnest::Precision p) {
    switch (p) {
        case resnest::Precision::fp32: return 1e-5;
        case resnest::Precision::tf32: return 5e-3;
        case resnest::Precision::fp16: return 1e-2;
    }
    return 0.0;
}

inline size_t esize_of(resnest::Precision p) { return p == resnest::Precision::fp16 ? 2 : 4; }

// Values rounded through the storage type, so the CPU oracle sees what the GPU op reads.
inline std::vector<float> round_to_storage(std::vector<float> v, resnest::Precision p) {
    if (p == resnest::Precision::fp16)
        for (float& x : v) x = resnest::half_to_float(resnest::float_to_half(x));
    return v;
}

// One convolution shape: attributes, input and output size.
struct ConvCase {
    resnest::Conv2dAttrs a;
    int h, w, oh, ow;
};

// Every distinct convolution shape (channels, spatial size, kernel, stride, padding, groups) of the four
// committed graphs.
inline std::vector<ConvCase> model_conv_cases() {
    std::vector<ConvCase> cases;
    std::set<std::string> seen;
    for (const resnest::Graph* graph : model_graphs()) {
        const resnest::Graph& g = *graph;
        for (const resnest::Node& n : g.nodes) {
            if (n.op != resnest::OpType::conv2d) continue;
            const auto& x = g.tensors[n.inputs[0]].shape;
            const auto& y = g.tensors[n.output].shape;
            const auto& a = n.conv;
            std::string key = resnest::shape_str(x) + resnest::shape_str(y) + std::to_string(a.kernel_h) +
                              std::to_string(a.stride_h) + std::to_string(a.pad_h) + std::to_string(a.groups);
            if (seen.insert(key).second) cases.push_back({a, (int)x[1], (int)x[2], (int)y[1], (int)y[2]});
        }
    }
    return cases;
}

}  // namespace cuda_test
