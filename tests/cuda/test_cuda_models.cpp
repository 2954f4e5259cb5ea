// test_cuda_models.cpp: whole models on the CUDA backend against the CPU oracle (both models, both
// semantics, seeded weights generated in the engine), the tiny fixtures against their framework logits,
// concurrency (4 threads x 4 contexts on one engine), CUDA graph vs eager, programmatic dependent launch vs
// ordinary launches, the algorithm cache file, the profile, and the errors a user can cause. The runtime's
// optional paths (our GEMM kernels and folds, L2 hints, pools and radix splits) are in
// test_cuda_models_variants.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <condition_variable>
#include <mutex>

#include <nlohmann/json.hpp>

#include "conv_algo_cache.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_engine.h"
#include "cuda_test_helpers.h"
#include "npy.h"
#include "../scoped_env.h"
#include "cuda_model_checks.h"

using namespace cuda_test;
using resnest::Precision;
using test_env::ScopedEnv;  // engines read these variables when they are made

TEST_CASE("whole models in fp32 match the CPU engine to 1e-4", "[cuda][models]") {
    INFO("seed " << run_seed());
    for (const char* m : kModels) {
        const int batch = 2;
        resnest::EngineOptions cpu;
        cpu.max_batch = batch;
        auto ref_engine = resnest::Engine::load_seeded(src(m), 1, cpu);
        const auto& s = ref_engine->summary();
        std::vector<float> x = random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 11);
        std::vector<float> ref = run_engine(*ref_engine, x, batch);
        auto gpu = resnest::Engine::load_seeded(src(m), 1, cuda_options(Precision::fp32, batch));
        std::vector<float> got = run_engine(*gpu, x, batch);
        double err = max_rel_error(got, ref);
        std::printf("cuda fp32 %s: max|d|/max|ref| %.3g\n", m, err);
        INFO(m << " fp32 rel " << err);
        CHECK(err <= 1e-4);
        const int classes = (int)s.num_outputs;
        for (int b = 0; b < batch; b++)
            CHECK(argmax(got.data() + b * classes, classes) == argmax(ref.data() + b * classes, classes));
    }
}

TEST_CASE("whole models in fp16 and tf32 agree with the CPU on top-1 for at least 63 of 64 images (the other a "
          "near-tie) and cosine >= 0.999",
          "[cuda][models]") {
    INFO("seed " << run_seed());
    for (const char* m : kModels) {
        const int n = 64;
        resnest::EngineOptions cpu;
        cpu.max_batch = n;
        auto ref_engine = resnest::Engine::load_seeded(src(m), 2, cpu);
        const auto& s = ref_engine->summary();
        const int classes = (int)s.num_outputs;
        std::vector<float> x = random_floats((size_t)n * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 12);
        std::vector<float> ref = run_engine(*ref_engine, x, n);
        // tf32 has fp16's 10-bit mantissa, so it is held to the fp16 criteria here (none is set for tf32).
        for (Precision p : {Precision::fp16, Precision::tf32}) {
            auto gpu = resnest::Engine::load_seeded(src(m), 2, cuda_options(p, n));
            std::vector<float> got = run_engine(*gpu, x, n);
            INFO(m << " " << resnest::precision_name(p));
            // Within 1e-2, cosine >= 0.999 and a top-1 disagreement only on a near-tie, image by image
            // (check_logits); and seeded random weights make few near-ties: one is allowed in 64 images.
            const double err = check_logits(got, CpuReference{x, ref, classes}, n, p);
            int agree = 0;
            double min_cos = 1.0;  // for the log line
            for (int b = 0; b < n; b++) {
                const float* g = got.data() + b * classes;
                const float* r = ref.data() + b * classes;
                agree += argmax(g, classes) == argmax(r, classes);
                min_cos = std::min(min_cos, cosine(g, r, classes));
            }
            CHECK(agree >= n - 1);
            std::printf("cuda %s %s: top-1 %d/%d, min cosine %.6f, max|d|/max|ref| %.3g\n", resnest::precision_name(p), m,
                        agree, n, min_cos, err);
        }
    }
}

TEST_CASE("tiny fixtures on the GPU match their timm / PaddleClas logits, with the radix splits apart too",
          "[cuda][models]") {
    std::ifstream f(src("tests/fixtures/fixtures.json"));
    nlohmann::json manifest = nlohmann::json::parse(f);
    int checked = 0, split = 0;
    for (const auto& fx : manifest["fixtures"]) {
        if (fx["kind"] != "tiny") continue;
        resnest::NpyArray x = resnest::npy_read(src(fx["input"]));
        resnest::NpyArray expected = resnest::npy_read(src(fx["expected"]));
        int n = (int)x.shape[0];
        // RESNEST_RADIX_SPLIT=all rewrites the radix-2 cardinality-1 fixtures: channel counts of 2-4 a split,
        // the scalar paths of the split-attention kernels and tiny plain convolutions.
        for (const char* radix_split : {"off", "all"})
            for (Precision p : {Precision::fp32, Precision::fp16}) {
                std::shared_ptr<resnest::Engine> e;
                {
                    ScopedEnv env("RESNEST_RADIX_SPLIT", radix_split);
                    e = resnest::Engine::load(src(fx["graph"]), src(fx["weights"]), cuda_options(p, n));
                }
                bool rewritten = false;
                for (const std::string& line : e->pass_log())
                    rewritten |= line.rfind("split_radix_convolutions", 0) == 0;
                split += rewritten && p == Precision::fp32;
                std::vector<float> got = run_engine(*e, x.data, n);
                double err = max_rel_error(got, expected.data);
                std::printf("cuda %s %s%s: %.3g\n", resnest::precision_name(p), fx["name"].get<std::string>().c_str(),
                            rewritten ? " (radix splits apart)" : "", err);
                INFO(fx["name"].get<std::string>() << " " << resnest::precision_name(p) << " RESNEST_RADIX_SPLIT="
                                                   << radix_split << " rel " << err);
                // fp32: the whole-model bound; fp16: 1e-2, the per-op fp16 bound, over a network 6 blocks deep.
                CHECK(err <= (p == Precision::fp32 ? 1e-4 : 1e-2));
            }
        checked++;
    }
    CHECK(checked == 6);
    CHECK(split == 2);  // tiny_r2_k1 from PaddleClas and from timm
}

TEST_CASE("4 threads x 4 contexts on one engine give the single-context result, graph equals eager, and "
          "dependent launches equal ordinary ones", "[cuda][models]") {
    INFO("seed " << run_seed());
    const int batch = 3;
    for (Precision p : {Precision::fp32, Precision::fp16}) {
        // Both engines below read one algorithm cache file, so they run the same cuDNN algorithms.
        std::string cache = scratch_dir() + "/resnest_cuda_test_threads_" + resnest::precision_name(p) + ".tsv";
        std::remove(cache.c_str());
        resnest::EngineOptions o = cuda_options(p, batch);
        o.algo_cache = cache;
        auto e = resnest::Engine::load_seeded(src("models/resnest50.json"), 3, o);
        const auto& s = e->summary();
        std::vector<float> x = random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 13);
        std::vector<float> ref = run_engine(*e, x, batch);  // fills the engine's algorithm cache
        std::vector<std::vector<float>> results(16);
        run_on_threads(4, [&](int t) {
            std::vector<std::unique_ptr<resnest::Context>> ctxs;
            for (int k = 0; k < 4; k++) ctxs.push_back(e->create_context());
            for (int rep = 0; rep < 3; rep++)
                for (int k = 0; k < 4; k++) {
                    std::vector<float> y((size_t)batch * s.num_outputs, NAN);
                    ctxs[k]->run(x.data(), batch, y.data());
                    results[t * 4 + k] = y;
                }
        });
        // Every context takes the same algorithms from the engine's cache: the results agree to rounding
        // (1e-6 allows a non-deterministic reduction order; a race would be far larger).
        double worst = 0.0;
        for (const auto& r : results) worst = std::max(worst, max_rel_error(r, ref));
        std::printf("cuda %s 4 threads x 4 contexts vs one: worst %.3g\n", resnest::precision_name(p), worst);
        CHECK(worst <= 1e-6);

        resnest::EngineOptions eager = o;
        eager.cuda_graph = false;
        auto e2 = resnest::Engine::load_seeded(src("models/resnest50.json"), 3, eager);
        double err = max_rel_error(run_engine(*e2, x, batch), ref);
        std::printf("cuda %s eager vs graph: %.3g\n", resnest::precision_name(p), err);
        CHECK(err <= 1e-6);

        // Programmatic dependent launches (the default on sm_90+) against ordinary ones, graph replays
        // repeated on one context: a kernel reading before its producer finished would show here.
        resnest::EngineOptions ordinary = o;
        ordinary.dependent_launch = false;
        auto e3 = resnest::Engine::load_seeded(src("models/resnest50.json"), 3, ordinary);
        double pdl_err = max_rel_error(run_engine(*e3, x, batch), ref);
        auto ctx = e->create_context();
        for (int rep = 0; rep < 5; rep++) {
            std::vector<float> y((size_t)batch * s.num_outputs, NAN);
            ctx->run(x.data(), batch, y.data());
            pdl_err = std::max(pdl_err, max_rel_error(y, ref));
        }
        std::printf("cuda %s dependent launch (5 replays) vs ordinary launches: %.3g\n", resnest::precision_name(p),
                    pdl_err);
        CHECK(pdl_err <= 1e-6);
        std::remove(cache.c_str());
    }
}

TEST_CASE("contexts preparing one batch size at once on a fresh engine make one set of choices", "[cuda][models]") {
    // No cache file and nothing chosen yet: four threads start at once. The engine lets one context choose at
    // a time (CudaEngine::prepare_mutex), so the others take its choices and every result is the same to
    // rounding; contexts timing on a shared GPU each for themselves could pick different algorithms (fp16
    // differences near 1e-3).
    INFO("seed " << run_seed());
    const int batch = 2;
    auto e = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 8, cuda_options(Precision::fp16, batch));
    const auto& s = e->summary();
    const std::vector<float> x =
        random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 16);
    std::vector<std::vector<float>> results(4);
    std::mutex m;
    std::condition_variable cv;
    int ready = 0;
    REQUIRE(run_on_threads(4, [&](int t) {
        {  // all four start together (nothing before the barrier can throw and leave the others waiting)
            std::unique_lock<std::mutex> lock(m);
            if (++ready == 4) cv.notify_all();
            cv.wait(lock, [&] { return ready == 4; });
        }
        auto ctx = e->create_context();
        results[t].assign((size_t)batch * s.num_outputs, NAN);
        ctx->run(x.data(), batch, results[t].data());
    }));
    double worst = 0.0;
    for (int t = 1; t < 4; t++) worst = std::max(worst, max_rel_error(results[t], results[0]));
    std::printf("cuda fp16 4 contexts choosing at once: worst difference between them %.3g\n", worst);
    CHECK(worst <= 1e-6);
}

TEST_CASE("a context prepares and captures every batch size correctly while another thread creates, runs and "
          "destroys contexts and synchronizes the device", "[cuda][models]") {
    INFO("seed " << run_seed());
    for (Precision p : {Precision::fp32, Precision::fp16}) {
        std::string cache = scratch_dir() + "/resnest_cuda_test_churn_" + resnest::precision_name(p) + ".tsv";
        std::remove(cache.c_str());
        resnest::EngineOptions o = cuda_options(p, 4);
        o.algo_cache = cache;
        auto e = resnest::Engine::load_seeded(src("models/resnest50.json"), 5, o);
        const auto& s = e->summary();
        const int classes = (int)s.num_outputs;
        std::vector<float> x = random_floats((size_t)4 * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 17);
        std::vector<std::vector<float>> ref(5);  // one context alone, batches 1..4 (this fills the cache)
        {
            auto ctx = e->create_context();
            for (int b = 1; b <= 4; b++) {
                ref[b].assign((size_t)b * classes, NAN);
                ctx->run(x.data(), b, ref[b].data());
            }
        }
        // Destroying a context frees device memory and cuBLAS / cuDNN handles, which synchronize the whole
        // device: in the middle of another thread's graph capture that invalidates the capture.
        std::atomic<bool> done{false};
        std::atomic<int> churned{0};
        std::string churn_error, error;
        std::thread churn([&] {
            try {
                while (!done) {
                    auto c = e->create_context();
                    std::vector<float> y((size_t)classes, NAN);
                    c->run(x.data(), 1, y.data());
                    c.reset();
                    cudaDeviceSynchronize();  // only to disturb: its status may name the other thread's capture
                    cudaGetLastError();
                    churned++;
                }
            } catch (const std::exception& ex) {
                churn_error = ex.what();
            }
        });
        double worst = 0.0;
        try {
            for (int round = 0; round < 3; round++) {
                auto ctx = e->create_context();  // every batch size prepared and captured anew
                for (int b = 1; b <= 4; b++) {
                    std::vector<float> y((size_t)b * classes, NAN);
                    ctx->run(x.data(), b, y.data());
                    worst = std::max(worst, max_rel_error(y, ref[b]));
                }
            }
        } catch (const std::exception& ex) {
            error = ex.what();
        }
        done = true;
        churn.join();
        std::printf("cuda %s capture beside a thread creating and destroying %d contexts: worst %.3g\n",
                    resnest::precision_name(p), churned.load(), worst);
        INFO(resnest::precision_name(p) << ": " << error << " / churning thread: " << churn_error);
        CHECK(error.empty());
        CHECK(churn_error.empty());
        CHECK(churned > 0);
        CHECK(worst <= 1e-6);  // the same algorithms from the cache, graph or (after repeated invalidation) not
    }
}

TEST_CASE("the algorithm cache file is written, read back and gives the same result", "[cuda][models]") {
    std::string path = scratch_dir() + "/resnest_cuda_test_algo_cache.tsv";
    std::remove(path.c_str());
    resnest::EngineOptions o = cuda_options(Precision::fp16, 2);
    o.algo_cache = path;
    auto e1 = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 4, o);
    const auto& s = e1->summary();
    std::vector<float> x = random_floats((size_t)2 * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 14);
    std::vector<float> y1 = run_engine(*e1, x, 2);
    std::ifstream cache_file(path);
    int lines = 0, serialized = 0, gates = 0, linears = 0;
    for (std::string line; std::getline(cache_file, line);) {
        lines += !line.empty();
        // cuBLASLt's entries carry the serialized cublasLtMatmulAlgo_t last (64 bytes, 128 hex digits, and 8
        // of its hash).
        const size_t tab = line.rfind('\t');
        serialized += tab != std::string::npos && line.size() - tab - 1 == 136;
        gates += line.find("|split-attention gate ") != std::string::npos;
        linears += line.find("|linear in2048 out1000 bias") != std::string::npos;
    }
    CHECK(lines >= 10);  // one per distinct conv shape (the fast model has 20)
    CHECK(serialized >= 1);  // the 1x1 convolutions time cuBLASLt
    CHECK(gates >= 4);  // the gate's form, one per gate shape (four channel counts)
    CHECK(linears == 1);  // the classifier's way
    // Every line the runtime wrote reads back (a split-K entry, a descriptor).
    resnest::ConvAlgoCache reread(path);
    CHECK(reread.skipped_lines() == 0);
    CHECK(reread.loaded() >= 10);
    auto e2 = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 4, o);
    CHECK(max_rel_error(run_engine(*e2, x, 2), y1) <= 1e-6);
    // The second start found every choice in the file (convolutions, gates, classifier): it added nothing.
    std::ifstream after(path);
    int lines_after = 0;
    for (std::string line; std::getline(after, line);) lines_after += !line.empty();
    CHECK(lines_after == lines);
    std::remove(path.c_str());

    // Every convolution on cuDNN's legacy call, then each of its entries edited to a math type (and one to an
    // algorithm) cuDNN does not define: the next start searches those again instead of failing, and writes
    // them anew.
    resnest::EngineOptions legacy = o;
    legacy.conv_gemm = legacy.conv_graph = "off";
    auto e3 = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 4, legacy);
    const std::vector<float> y3 = run_engine(*e3, x, 2);
    std::vector<std::string> kept, edited_keys;
    std::ifstream legacy_file(path);
    for (std::string line; std::getline(legacy_file, line);) {
        const size_t tab = line.find('\t');
        std::istringstream fields(tab == std::string::npos ? "" : line.substr(tab + 1));
        long long algo = -1, math = -1, bytes = -1;
        std::string opaque;
        // A legacy entry's key is the convolution's own (conv_algo_key), ending in its epilogue; the other ways'
        // and the decisions' keys add a suffix to it.
        const std::string key = tab == std::string::npos ? "" : line.substr(0, tab);
        auto ends_with = [&](const std::string& end) {
            return key.size() >= end.size() && key.compare(key.size() - end.size(), end.size(), end) == 0;
        };
        const bool legacy_entry = (fields >> algo >> math >> bytes) && !(fields >> opaque) &&
                                  (ends_with("|plain") || ends_with("|bias_relu") || ends_with("|z"));
        if (!legacy_entry) {
            kept.push_back(line);
            continue;
        }
        const bool bad_algo = edited_keys.empty();
        kept.push_back(key + "\t" + std::to_string(bad_algo ? 9 : algo) + " 9 " + std::to_string(bytes));
        edited_keys.push_back(key);
    }
    legacy_file.close();
    REQUIRE(edited_keys.size() >= 10);  // one per distinct conv shape
    {
        std::ofstream rewrite(path, std::ios::trunc);
        for (const std::string& line : kept) rewrite << line << "\n";
    }
    {  // The edited lines parse (a skipped line would also be searched again, and prove nothing here).
        resnest::ConvAlgoCache edited(path);
        CHECK(edited.skipped_lines() == 0);
        resnest::ConvAlgoChoice c;
        REQUIRE(edited.lookup(edited_keys.back(), &c));
        CHECK(c.math_type == 9);
        CHECK_FALSE(resnest::legacy_choice_in_range(c));
    }
    std::shared_ptr<resnest::Engine> e4;
    REQUIRE_NOTHROW(e4 = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 4, legacy));
    std::vector<float> y4;
    REQUIRE_NOTHROW(y4 = run_engine(*e4, x, 2));
    CHECK(max_rel_error(y4, y3) <= 1e-2);  // another algorithm may be found: fp16's rounding, not 1e-6
    resnest::ConvAlgoCache rewritten(path);
    int fixed = 0;
    for (const std::string& key : edited_keys) {
        resnest::ConvAlgoChoice c;
        fixed += rewritten.lookup(key, &c) && resnest::legacy_choice_in_range(c);
    }
    CHECK(fixed == (int)edited_keys.size());
    std::remove(path.c_str());
}

TEST_CASE("the profile times every executed node, eager and inside a replayed CUDA graph", "[cuda][models]") {
    const int batch = 2;
    auto e = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 5, cuda_options(Precision::fp16, batch));
    const auto& s = e->summary();
    std::vector<float> x = random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 16);
    auto ctx = e->create_context();
    ctx->set_input(x.data(), batch);
    std::vector<double> replays;
    for (int i = 0; i < 20; i++) replays.push_back(ctx->run_loaded(batch).device_ms);
    std::nth_element(replays.begin(), replays.begin() + 10, replays.end());
    const double p50 = replays[10];
    std::vector<resnest::NodeProfile> prof = ctx->profile(batch, 5);
    REQUIRE(prof.size() >= 50);  // the fused graph: fewer nodes than the summary's, each one of them
    std::set<std::string> names;
    for (const auto& n : s.nodes) names.insert(n.name);
    double eager = 0.0, replayed = 0.0;
    int attention = 0;
    for (const auto& p : prof) {
        INFO(p.name << " (" << p.op << "): eager " << p.ms << " ms, replayed " << p.replay_ms << " ms; stages "
                    << p.pool_ms << " / " << p.gate_ms << " / " << p.combine_ms << " ms");
        CHECK(names.count(p.name) == 1);
        CHECK(std::isfinite(p.ms));
        CHECK(std::isfinite(p.replay_ms));
        CHECK(p.ms > 0.0);
        CHECK(p.replay_ms > 0.0);
        // Bytes as the plan runs the node (node_traffic.h): every node moves some here (with our GEMM kernels
        // off nothing folds; the implicit-GEMM model test checks that a folded average pool moves none).
        INFO("bytes " << p.bytes);
        CHECK(p.bytes > 0.0);
        // What the way moves beyond them: an im2col way its matrix at least, a K split (ours, "(K split N
        // ways)", or cuBLASLt's, "(cuBLASLt K split N ways)") its partials; nothing for nodes without a way
        // of their own.
        INFO("way bytes " << p.way_bytes);
        CHECK(p.way_bytes >= 0.0);
        if (p.op.find("(im2col + cuBLASLt") != std::string::npos || p.op.find("K split ") != std::string::npos)
            CHECK(p.way_bytes > 0.0);
        if (p.op.rfind("conv2d", 0) != 0 && p.op.rfind("linear", 0) != 0) CHECK(p.way_bytes == 0.0);
        eager += p.ms, replayed += p.replay_ms;
        // Split attention's stages partition its time in every run (pool, gate, weighted sum between the
        // node's events): their medians add up to about the node's; other nodes have none.
        const double stages = p.pool_ms + p.gate_ms + p.combine_ms;
        if (p.op.rfind("split_attention", 0) == 0) {
            attention++;
            CHECK(p.pool_ms > 0.0);
            CHECK(p.gate_ms > 0.0);
            CHECK(p.combine_ms > 0.0);
            CHECK(stages >= 0.75 * p.ms);
            CHECK(stages <= 1.25 * p.ms);
        } else {
            CHECK(stages == 0.0);
        }
    }
    CHECK(attention == 16);
    std::printf("cuda profile fast fp16 batch %d: %zu nodes, eager %.3f ms, replayed with events %.3f ms, graph p50 %.3f ms\n",
                batch, prof.size(), eager, replayed, p50);
    // The nodes cover the forward pass but for the input and output layout kernels; the events between
    // them cost some overlap, not a multiple.
    CHECK(replayed >= 0.8 * p50);
    CHECK(replayed <= 3.0 * p50);
}

TEST_CASE("on Hopper the kernels run as sm_90 code, so they take programmatic dependent launches", "[cuda][models]") {
    resnest::DeviceInfo d = resnest::cuda_device_info(0);
    std::printf("cuda: %s sm_%d%d, kernels run as %d\n", d.name.c_str(), d.cc_major, d.cc_minor, d.kernels_arch);
    CHECK(d.kernels_arch >= 50);  // they load at all
    if (d.cc_major >= 9) CHECK(d.kernels_arch >= 90);  // the default build is sm_90: the wait is compiled in
}

TEST_CASE("CUDA errors a user can cause are named", "[cuda][models]") {
    auto e = resnest::Engine::load_seeded(src("models/resnest50_fast_1s1x64d.json"), 1, cuda_options(Precision::fp16, 2));
    auto ctx = e->create_context();
    std::vector<float> x(3 * 3 * 224 * 224, 0.5f), y(3000);
    CHECK_THROWS_WITH(ctx->run(x.data(), 3, y.data()), Catch::Contains("outside [1, 2]"));
    // Out of order: never the output buffer's stale or uninitialised contents.
    CHECK_THROWS_WITH(ctx->get_output(y.data(), 2), Catch::Contains("Context::get_output: batch 2 but set_input loaded nothing yet"));
    ctx->set_input(x.data(), 2);
    CHECK_THROWS_WITH(ctx->get_output(y.data(), 2), Catch::Contains("no result for the loaded input yet"));
    CHECK_THROWS_WITH(ctx->get_output(nullptr, 2), Catch::Contains("output must not be null"));
    ctx->run_loaded(2);
    CHECK_NOTHROW(ctx->get_output(y.data(), 2));
    resnest::EngineOptions bad = cuda_options(Precision::fp16, 1);
    bad.device = 63;
    CHECK_THROWS_WITH(resnest::Engine::load_seeded(src("models/resnest50.json"), 1, bad),
                      Catch::Contains("CUDA device 63 does not exist"));
}

TEST_CASE("the timed algorithm search computes the same function", "[cuda][models]") {
    INFO("seed " << run_seed());
    const int batch = 4;
    resnest::EngineOptions cpu;
    cpu.max_batch = batch;
    auto ref_engine = resnest::Engine::load_seeded(src("models/resnest50.json"), 6, cpu);
    const auto& s = ref_engine->summary();
    std::vector<float> x = random_floats((size_t)batch * s.input_shape[0] * s.input_shape[1] * s.input_shape[2], -2, 2, 15);
    std::vector<float> ref = run_engine(*ref_engine, x, batch);
    const int classes = (int)s.num_outputs;
    for (Precision p : {Precision::fp32, Precision::fp16}) {
        resnest::EngineOptions o = cuda_options(p, batch);
        o.conv_search = "timed";
        auto e = resnest::Engine::load_seeded(src("models/resnest50.json"), 6, o);
        std::vector<float> got = run_engine(*e, x, batch);
        INFO(resnest::precision_name(p) << " timed search");
        // fp32 to 1e-4 with the same top-1; fp16 to 1e-2, a top-1 disagreement only on a near-tie.
        const double err = check_logits(got, CpuReference{x, ref, classes}, batch, p);
        std::printf("cuda %s timed search: max|d|/max|ref| %.3g\n", resnest::precision_name(p), err);
    }
}

TEST_CASE("whole models with every convolution forced onto cuBLASLt (1x1 directly, the rest over im2col) or "
          "cuDNN's graph match the CPU",
          "[cuda][models][gemm][cudnn-graph]") {
    INFO("seed " << run_seed());
    const int batch = 4;
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        const CpuReference ref = cpu_reference(model, 7, batch, 16);
        for (const char* way : {"--conv-gemm on", "--conv-graph on"})
            for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16}) {
                resnest::EngineOptions o = cuda_options(p, batch);
                const bool gemm = std::string(way) == "--conv-gemm on";
                o.conv_gemm = gemm ? "on" : "off";
                o.conv_graph = gemm ? "off" : "on";
                auto e = resnest::Engine::load_seeded(src(model), 7, o);
                std::vector<float> got = run_engine(*e, ref.x, batch);
                INFO(model << " " << resnest::precision_name(p) << " " << way);
                const double err = check_logits(got, ref, batch, p);
                std::printf("cuda %s %s %s: max|d|/max|ref| %.3g\n", model, resnest::precision_name(p), way, err);
            }
    }
}
