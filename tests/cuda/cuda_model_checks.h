// cuda_model_checks.h: what the whole-model GPU tests share: CUDA engine options, one run of a batch, and the CPU engine's logits as the oracle a GPU configuration is checked against
// (check_logits: the tolerance and top-1 rule per precision).
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cuda_test_helpers.h"
#include "resnest/engine.h"

namespace cuda_test {

// A path below the source tree; an absolute path (a graph a test wrote) as it is.
inline std::string src(const std::string& rel) { return rel.rfind('/', 0) == 0 ? rel : source_dir() + "/" + rel; }

inline resnest::EngineOptions cuda_options(resnest::Precision p, int max_batch) {
    resnest::EngineOptions o;
    o.backend = resnest::Backend::cuda;
    o.precision = p;
    o.max_batch = max_batch;
    o.algo_cache = "none";
    return o;
}

inline std::vector<float> run_engine(const resnest::Engine& e, const std::vector<float>& x, int batch) {
    auto ctx = e.create_context();
    std::vector<float> y((size_t)batch * e.summary().num_outputs, NAN);
    ctx->run(x.data(), batch, y.data());
    return y;
}

inline int argmax(const float* v, int n) { return (int)(std::max_element(v, v + n) - v); }

// The reference's margin between its top class and the class `got` ranks first, relative to max|ref|: 0 when
// the two agree. A disagreement is a near-tie the observed error explains only when this margin is within it.
inline double top1_margin(const float* got, const float* ref, int n) {
    float scale = 0.0f;
    for (int i = 0; i < n; i++) scale = std::max(scale, std::fabs(ref[i]));
    return (ref[argmax(ref, n)] - ref[argmax(got, n)]) / std::max(scale, 1e-30f);
}

inline double cosine(const float* a, const float* b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / std::sqrt(aa * bb);
}

// A model's CPU-engine logits on a random batch: the oracle a GPU configuration is checked against.
struct CpuReference {
    std::vector<float> x, logits;
    int classes = 0;
};
inline CpuReference cpu_reference(const std::string& model, uint64_t weights_seed, int batch, uint64_t input_seed) {
    resnest::EngineOptions cpu;
    cpu.max_batch = batch;
    auto engine = resnest::Engine::load_seeded(src(model), weights_seed, cpu);
    const auto& s = engine->summary();
    CpuReference r;
    r.x = random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, input_seed);
    r.logits = run_engine(*engine, r.x, batch);
    r.classes = (int)s.num_outputs;
    return r;
}

// The top-1 disagreement tf32 / fp16 may make: a near-tie of seeded random weights, where the reference's
// margin between its top class and the GPU's is within the logits' tolerance, 1e-2 of the image's largest
// logit (fp32: none). A fixed figure, per image: not the error measured on the batch, which would explain
// any disagreement (a margin never exceeds twice the largest difference) and normalizes by the batch.
inline double near_tie_limit(resnest::Precision p) { return p == resnest::Precision::fp32 ? 0.0 : 1e-2; }

// GPU logits against the reference: within 1e-4 (fp32) or 1e-2 of max|ref|, cosine >= 0.999 per image, and
// the same top-1 class but for near-ties (near_tie_limit). Returns the error.
inline double check_logits(const std::vector<float>& got, const CpuReference& ref, int batch, resnest::Precision p) {
    const double err = max_rel_error(got, ref.logits);
    CHECK(err <= (p == resnest::Precision::fp32 ? 1e-4 : 1e-2));
    const int k = ref.classes;
    for (int b = 0; b < batch; b++) {
        const double margin = top1_margin(got.data() + b * k, ref.logits.data() + b * k, k);
        INFO("image " << b << ": reference top-1 margin over the GPU's top-1 " << margin);
        CHECK(margin <= near_tie_limit(p));
        CHECK(cosine(got.data() + b * k, ref.logits.data() + b * k, k) >= 0.999);
    }
    return err;
}

// Runs body(t) for t in [0, threads), each on a thread of its own, all at once; checks that none threw,
// printing each thread's error, and returns whether none did.
inline bool run_on_threads(int threads, const std::function<void(int)>& body) {
    std::vector<std::string> errors((size_t)threads);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++)
        pool.emplace_back([&, t] {
            try {
                body(t);
            } catch (const std::exception& e) {
                errors[(size_t)t] = e.what();
            }
        });
    for (auto& th : pool) th.join();
    bool none = true;
    for (int t = 0; t < threads; t++) {
        INFO("thread " << t << ": " << errors[(size_t)t]);
        CHECK(errors[(size_t)t].empty());
        none = none && errors[(size_t)t].empty();
    }
    return none;
}

// The first `batch` images of a reference (the CPU engine computes each image on its own).
inline CpuReference first_images(const CpuReference& r, int batch) {
    CpuReference out;
    out.classes = r.classes;
    const size_t per_image = r.x.size() / (r.logits.size() / (size_t)r.classes);
    out.x.assign(r.x.begin(), r.x.begin() + (size_t)batch * per_image);
    out.logits.assign(r.logits.begin(), r.logits.begin() + (size_t)batch * r.classes);
    return out;
}

}  // namespace cuda_test
