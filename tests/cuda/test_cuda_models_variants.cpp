// test_cuda_models_variants.cpp: whole models under the runtime's optional paths against the CPU oracle: our
// fp16 GEMM kernels and the folds they take (RESNEST_IMPLICIT_GEMM on and auto, at batch 1 and at the
// benchmark's batch sizes, ResNeSt50-D's padding-counting avd pool, the stem read from the NCHW input), the
// L2 hints, split attention pooled in row lanes, the radix splits apart, and small and odd input sizes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "cuda/cuda_context.h"
#include "cuda/cuda_engine.h"
#include "cuda_model_checks.h"
#include "cuda_test_helpers.h"
#include "../scoped_env.h"

using namespace cuda_test;
using resnest::Precision;
using test_env::ScopedEnv;  // engines read these variables when they are made

TEST_CASE("whole models with the implicit-GEMM kernels (RESNEST_IMPLICIT_GEMM=on) match the CPU",
          "[cuda][models][implicit-gemm]") {
    INFO("seed " << run_seed());
    for (int batch : {1, 3}) {
        for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
            const CpuReference ref = cpu_reference(model, 10, batch, 19 + batch);
            std::shared_ptr<resnest::Engine> e;
            {
                ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", "on");
                e = resnest::Engine::load_seeded(src(model), 10, cuda_options(Precision::fp16, batch));
            }
            std::vector<float> got = run_engine(*e, ref.x, batch);
            INFO(model << " fp16 batch " << batch << ", implicit GEMM on");
            const double err = check_logits(got, ref, batch, Precision::fp16);
            // Where it ran: the 16 split-attention convolutions (3x3, stride 1, channels a group by 32 in and
            // 64 out in both models) and the deep stem's third (32 -> 64); not the stem's first (stride 2) or
            // second (32 outputs).
            auto ctx = e->create_context();
            ctx->set_input(ref.x.data(), batch);
            ctx->run_loaded(batch);
            int implicit = 0, pooling_convs = 0, pooled = 0, gate_matmuls = 0, combining_convs = 0, combined = 0,
                avg_pool_convs = 0, avg_pools_in = 0, wmma_1x1 = 0, stem_direct = 0, k_split = 0;
            for (const resnest::NodeProfile& p : ctx->profile(batch, 2)) {
                implicit += p.op.find("(implicit GEMM)") != std::string::npos;
                pooling_convs += p.op.find("(+ split-attention pool)") != std::string::npos;
                pooled += p.op.find("(pool in the convolution)") != std::string::npos;
                gate_matmuls += p.op.find("(gate: two matmuls") != std::string::npos;
                combining_convs += p.op.find("(split-attention combine + implicit GEMM)") != std::string::npos;
                combined += p.op.find("(combine in the convolution)") != std::string::npos;
                avg_pool_convs += p.op.find("(average pool + implicit GEMM)") != std::string::npos;
                avg_pools_in += p.op.rfind("avg_pool2d (in the convolution)", 0) == 0;
                wmma_1x1 += p.op.find("(wmma 1x1)") != std::string::npos;
                stem_direct += p.op.find("(direct from the NCHW input)") != std::string::npos;
                k_split += p.op.find(" (K split ") != std::string::npos;
                // The profile's bytes as the plan runs the node (node_traffic.h): an average pool folded into
                // the 1x1 convolution after it writes nothing and has no weights; our K splits move partials.
                INFO(p.name << " (" << p.op << "): bytes " << p.bytes << ", way bytes " << p.way_bytes);
                if (p.op.rfind("avg_pool2d (in the convolution)", 0) == 0) CHECK(p.bytes == 0.0);
                else CHECK(p.bytes > 0.0);
                if (p.op.find(" (K split ") != std::string::npos) CHECK(p.way_bytes > 0.0);
            }
            CHECK(implicit == 17);
            // After graph replays and the profile's eager and replayed passes, all with dependent launches:
            // every split-K tile count back at zero. At batch 1 some of our kernels split K (layer 4's
            // convolutions fill one wave only so), so the counts were used.
            if (batch == 1) CHECK(k_split >= 1);
            auto* cuda_ctx = dynamic_cast<resnest::CudaContext*>(ctx.get());
            REQUIRE(cuda_ctx != nullptr);
            CHECK(cuda_ctx->tile_counts_not_zero() == 0);
            // Split attention's pool in those convolutions' epilogue: at batch 1 (no extra tiles) in all 16,
            // except where the gate runs as matmuls (which pool on their own).
            CHECK(pooling_convs == pooled);
            if (batch == 1) CHECK(pooled + gate_matmuls == 16);
            // Its weighted sum in conv3, forced on: every block (ResNeSt50's three with the avd pool after
            // attention pool in the same fold: fusion_pairs.h).
            CHECK(combining_convs == combined);
            CHECK(combined == 16);
            // And each downsample path's average pool in its 1x1 convolution (layers 2-4 of both models).
            CHECK(avg_pool_convs == 3);
            CHECK(avg_pools_in == 3);
            // Every other 1x1 convolution (36 in each model: 16 conv1, 16 conv3, 4 downsample) on our wmma kernel.
            CHECK(wmma_1x1 == 36 - 16 - 3);
            CHECK(stem_direct == 1);  // conv1.0 reads the NCHW input itself: no layout conversion
            std::printf("cuda %s fp16 batch %d, implicit GEMM on %d convolutions, %d pooling for split attention "
                        "(%d gates as matmuls), %d combining, %d average pools folded, %d more 1x1 on wmma: "
                        "max|d|/max|ref| %.3g\n", model, batch, implicit, pooled, gate_matmuls, combined, avg_pool_convs,
                        wmma_1x1, err);
        }
    }
}


TEST_CASE("at batches 8 and 128 fp16 matches the CPU with our GEMM kernels timed (auto) and forced on, "
          "and dependent launches equal ordinary ones with them",
          "[cuda][models][implicit-gemm]") {
    // What device_check's implicit stage benchmarks (RESNEST_IMPLICIT_GEMM=auto: each fold and way timed) at
    // batches 8 and 128 (the two latency and throughput targets), and every kernel of ours forced on there:
    // split K across images, the pool in the convolutions' epilogue with many tiles, the combine in conv3,
    // grids at their largest, the gate forms timing picks at these sizes (the matmuls predicted at 128). Each
    // mode's engines share one cache file, so the engine with ordinary launches makes the same choices: the
    // two must agree to rounding, replayed several times (a kernel reading its producer's output early would
    // show here).
    INFO("seed " << run_seed());
    const char* model = "models/resnest50.json";
    const int max_batch = 128;
    // The CPU oracle for 16 of the 128 images: the first 8 (batch 8, and the first tiles of every grid at
    // 128) and the last 8 (the last tiles). All 128 are also checked against the ordinary launches below.
    // (The CPU takes about 0.2 s an image on the GPU machine: 128 would cost the suite 25 s.)
    const CpuReference first16 = cpu_reference(model, 14, 16, 53);
    const size_t per_image = first16.x.size() / 16;
    std::vector<float> x128 = random_floats(per_image * max_batch, -2, 2, 54);
    std::copy(first16.x.begin(), first16.x.begin() + 8 * per_image, x128.begin());
    std::copy(first16.x.begin() + 8 * per_image, first16.x.end(), x128.end() - 8 * per_image);
    // The GPU's rows of the images the CPU computed: the first 8 and the last 8.
    auto checked_rows = [&](const std::vector<float>& y, int batch) {
        const size_t k = (size_t)first16.classes;
        std::vector<float> rows(y.begin(), y.begin() + 8 * k);
        if (batch > 8) rows.insert(rows.end(), y.end() - 8 * k, y.end());
        return rows;
    };
    for (const char* mode : {"auto", "on"}) {
        const std::string cache = scratch_dir() + "/resnest_cuda_test_bench_batches_" + mode + ".tsv";
        std::remove(cache.c_str());
        resnest::EngineOptions o = cuda_options(Precision::fp16, max_batch);
        o.algo_cache = cache;
        resnest::EngineOptions ordinary = o;
        ordinary.dependent_launch = false;
        std::shared_ptr<resnest::Engine> e, e_ordinary;
        {
            ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", mode);
            e = resnest::Engine::load_seeded(src(model), 14, o);
        }
        auto ctx = e->create_context();
        for (int batch : {8, 128}) {
            const CpuReference ref = first_images(first16, batch == 8 ? 8 : 16);
            INFO(model << " fp16 batch " << batch << ", RESNEST_IMPLICIT_GEMM=" << mode);
            std::vector<float> got((size_t)batch * ref.classes, NAN);
            ctx->run(x128.data(), batch, got.data());  // fills the cache file
            const double err = check_logits(checked_rows(got, batch), ref, batch == 8 ? 8 : 16, Precision::fp16);
            {  // loaded now: an engine reads the cache file when it loads
                ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", mode);
                e_ordinary = resnest::Engine::load_seeded(src(model), 14, ordinary);
            }
            const std::vector<float> plain = run_engine(*e_ordinary, x128, batch);
            double pdl_err = max_rel_error(got, plain);
            for (int rep = 0; rep < 5; rep++) {
                std::vector<float> y((size_t)batch * ref.classes, NAN);
                ctx->run(x128.data(), batch, y.data());
                pdl_err = std::max(pdl_err, max_rel_error(y, plain));
            }
            std::printf("cuda %s fp16 batch %d, RESNEST_IMPLICIT_GEMM=%s: max|d|/max|ref| %.3g; dependent launches "
                        "(6 runs) vs ordinary: %.3g\n", model, batch, mode, err, pdl_err);
            CHECK(pdl_err <= 1e-6);
        }
        auto* cuda_ctx = dynamic_cast<resnest::CudaContext*>(ctx.get());
        REQUIRE(cuda_ctx != nullptr);
        CHECK(cuda_ctx->tile_counts_not_zero() == 0);
        std::remove(cache.c_str());
    }
}

TEST_CASE("ResNeSt50-D with the implicit-GEMM kernels: the avd pool counting padding, folded, matches the CPU",
          "[cuda][models][implicit-gemm]") {
    // The one committed model whose avd pool (after split attention) counts its padding and whose
    // downsample pools round up (ceil mode): with RESNEST_IMPLICIT_GEMM=on both fold into the 1x1
    // convolutions after them (fusion_pairs.h lists 16 weighted sums, 3 with the avd pool, and 3 average
    // pools for this graph), the divisors the CPU reference takes.
    INFO("seed " << run_seed());
    const char* model = "models/resnest50d_torch.json";
    const int batch = 1;
    const CpuReference ref = cpu_reference(model, 11, batch, 23);
    std::shared_ptr<resnest::Engine> e;
    {
        ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", "on");
        e = resnest::Engine::load_seeded(src(model), 11, cuda_options(Precision::fp16, batch));
    }
    std::vector<float> got = run_engine(*e, ref.x, batch);
    const double err = check_logits(got, ref, batch, Precision::fp16);
    auto ctx = e->create_context();
    ctx->set_input(ref.x.data(), batch);
    ctx->run_loaded(batch);
    int combined = 0, combined_with_avd = 0, avg_pools_in = 0;
    for (const resnest::NodeProfile& p : ctx->profile(batch, 2)) {
        const bool in = p.op.find("(combine in the convolution)") != std::string::npos;
        combined += in;
        combined_with_avd += in && p.op.rfind("split_attention+avg_pool2d", 0) == 0;
        avg_pools_in += p.op.rfind("avg_pool2d (in the convolution)", 0) == 0;
    }
    CHECK(combined == 16);
    CHECK(combined_with_avd == 3);
    CHECK(avg_pools_in == 3);
    std::printf("cuda %s fp16 batch %d, implicit GEMM on: %d weighted sums folded (%d with the avd pool), %d "
                "average pools: max|d|/max|ref| %.3g\n", model, batch, combined, combined_with_avd, avg_pools_in, err);
}

TEST_CASE("ResNeSt50-D at small and odd sizes (9, 33 and 97 px, the last blocks at one pixel) matches the CPU",
          "[cuda][models]") {
    // Feature maps of 1 x 1 (split attention over one position, ceil-mode pools whose window reaches past the
    // input), 3 x 3 and odd sizes at every stage: edges no 224 px run reaches. fp32 and fp16, and fp16 with
    // our GEMM kernels forced on (their folds take what fits these shapes).
    INFO("seed " << run_seed());
    std::ifstream f(src("models/resnest50d_torch.json"));
    nlohmann::json graph = nlohmann::json::parse(f);
    const int batch = 3;
    for (int size : {9, 33, 97}) {
        graph["input"]["shape"] = {-1, 3, size, size};
        const std::string path = scratch_dir() + "/resnest50d_torch_" + std::to_string(size) + "px_" +
                                 std::to_string(run_seed()) + ".json";
        std::ofstream(path) << graph.dump();
        const CpuReference ref = cpu_reference(path, 13, batch, 29 + size);
        for (const char* implicit : {"off", "on"})
            for (Precision p : {Precision::fp32, Precision::fp16}) {
                if (p == Precision::fp32 && std::string(implicit) == "on") continue;  // fp16 kernels only
                INFO(size << " px, " << pname(p) << ", RESNEST_IMPLICIT_GEMM=" << implicit);
                std::shared_ptr<resnest::Engine> e;
                {
                    ScopedEnv gemm("RESNEST_IMPLICIT_GEMM", implicit);
                    e = resnest::Engine::load_seeded(path, 13, cuda_options(p, batch));
                }
                const double err = check_logits(run_engine(*e, ref.x, batch), ref, batch, p);
                std::printf("cuda resnest50d_torch at %d px, %s, implicit GEMM %s, batch %d: max|d|/max|ref| %.3g\n",
                            size, pname(p), implicit, batch, err);
            }
        std::remove(path.c_str());
    }
}

TEST_CASE("the L2 hints change no result: no weight prefetch, or the weights' L2 window on or timed",
          "[cuda][models][implicit-gemm]") {
    // Our kernels ask L2 for their weights before the dependent launch's wait (RESNEST_WEIGHT_PREFETCH), and
    // the graphs may carry an access policy window over the weights (RESNEST_L2_WEIGHTS): hints, which must
    // change no result. Every engine takes the same choices from one cache file (the first fills it), so
    // they run the same kernels; our convolutions forced on in fp16, where the gate and classifier kernels
    // run in both precisions. Each engine's graph is replayed twice after its eager pass.
    INFO("seed " << run_seed());
    const std::pair<const char*, const char*> variants[] = {{"RESNEST_WEIGHT_PREFETCH", "off"},
                                                            {"RESNEST_L2_WEIGHTS", "on"},
                                                            {"RESNEST_L2_WEIGHTS", "auto"}};
    int persisting_l2 = 0;
    REQUIRE(cudaDeviceGetAttribute(&persisting_l2, cudaDevAttrMaxPersistingL2CacheSize, 0) == cudaSuccess);
    size_t limit_found = 0;  // the device's persisting carve-out: each engine's last context gives it back
    REQUIRE(cudaDeviceGetLimit(&limit_found, cudaLimitPersistingL2CacheSize) == cudaSuccess);
    for (Precision p : {Precision::fp16, Precision::fp32}) {
        const std::string cache = scratch_dir() + "/resnest_cuda_test_l2_" + resnest::precision_name(p) + ".tsv";
        std::remove(cache.c_str());
        for (int batch : {1, 3}) {
            resnest::EngineOptions o = cuda_options(p, batch);
            o.algo_cache = cache;
            std::vector<float> x = random_floats((size_t)batch * 3 * 224 * 224, -2, 2, 41 + batch);
            auto run_with = [&](const char* name, const char* value) {
                ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", p == Precision::fp16 ? "on" : "off");
                ScopedEnv hint(name, value);
                auto e = resnest::Engine::load_seeded(src("models/resnest50.json"), 12, o);
                auto ctx = e->create_context();
                std::vector<float> y;
                for (int rep = 0; rep < 3; rep++) {
                    std::vector<float> out((size_t)batch * e->summary().num_outputs, NAN);
                    ctx->run(x.data(), batch, out.data());
                    for (float v : out) REQUIRE(std::isfinite(v));
                    if (rep > 0) CHECK(max_rel_error(out, y) <= 1e-6);
                    y = out;
                }
                // Forced on, on a device with persisting L2 (H100, H200): the window is on the graph, so the
                // comparison above is not vacuous.
                if (std::string(name) == "RESNEST_L2_WEIGHTS" && std::string(value) == "on" && persisting_l2) {
                    auto* cuda_ctx = dynamic_cast<resnest::CudaContext*>(ctx.get());
                    REQUIRE(cuda_ctx != nullptr);
                    CHECK(cuda_ctx->l2_window_on(batch));
                }
                return y;
            };
            const std::vector<float> base = run_with("RESNEST_WEIGHT_PREFETCH", "on");
            for (const auto& [name, value] : variants) {
                const double err = max_rel_error(run_with(name, value), base);
                size_t limit_after = 0;
                REQUIRE(cudaDeviceGetLimit(&limit_after, cudaLimitPersistingL2CacheSize) == cudaSuccess);
                CHECK(limit_after == limit_found);
                INFO(name << "=" << value);
                std::printf("cuda %s batch %d, %s=%s against the default: max|d|/max|ref| %.3g\n",
                            resnest::precision_name(p), batch, name, value, err);
                CHECK(err <= 1e-6);
            }
        }
        std::remove(cache.c_str());
    }
}

TEST_CASE("in fp32 and tf32, RESNEST_IMPLICIT_GEMM=on reads the NCHW input in the first convolution alone, and "
          "the model matches the CPU", "[cuda][models][implicit-gemm]") {
    INFO("seed " << run_seed());
    const int batch = 2;
    const CpuReference ref = cpu_reference("models/resnest50.json", 10, batch, 23);
    for (Precision p : {Precision::fp32, Precision::tf32}) {
        std::shared_ptr<resnest::Engine> e;
        {
            ScopedEnv implicit("RESNEST_IMPLICIT_GEMM", "on");
            e = resnest::Engine::load_seeded(src("models/resnest50.json"), 10, cuda_options(p, batch));
        }
        std::vector<float> got = run_engine(*e, ref.x, batch);
        INFO(resnest::precision_name(p) << ", implicit GEMM on");
        const double err = check_logits(got, ref, batch, p);
        auto ctx = e->create_context();
        ctx->set_input(ref.x.data(), batch);
        ctx->run_loaded(batch);
        int stem_direct = 0, ours = 0;
        for (const resnest::NodeProfile& n : ctx->profile(batch, 2)) {
            stem_direct += n.op.find("(direct from the NCHW input)") != std::string::npos;
            ours += n.op.find("implicit GEMM") != std::string::npos || n.op.find("wmma 1x1") != std::string::npos;
        }
        CHECK(stem_direct == 1);
        CHECK(ours == 0);  // the GEMM kernels and their folds are fp16 only
        std::printf("cuda resnest50 %s batch %d, RESNEST_IMPLICIT_GEMM=on (stem from the NCHW input): "
                    "max|d|/max|ref| %.3g\n", resnest::precision_name(p), batch, err);
    }
}

TEST_CASE("whole models with split attention pooled in row lanes (RESNEST_ATTENTION_POOL=row-lanes) match the CPU",
          "[cuda][models]") {
    INFO("seed " << run_seed());
    const int batch = 5;
    for (const char* model : {"models/resnest50.json", "models/resnest50_fast_1s1x64d_torch.json"}) {
        const CpuReference ref = cpu_reference(model, 8, batch, 17);
        for (Precision p : {Precision::fp32, Precision::fp16}) {
            std::shared_ptr<resnest::Engine> e;
            {
                ScopedEnv row_lanes("RESNEST_ATTENTION_POOL", "row-lanes");
                e = resnest::Engine::load_seeded(src(model), 8, cuda_options(p, batch));
            }
            // Every split-attention node of these models takes the row-lanes pool (R*C whole 16-byte lanes).
            const auto* cuda_engine = dynamic_cast<const resnest::CudaEngine*>(e.get());
            REQUIRE(cuda_engine);
            int row_lane_nodes = 0;
            for (const resnest::Node& n : cuda_engine->graph().nodes)
                if (n.op == resnest::OpType::split_attention) {
                    CHECK(cuda_engine->pool_row_lanes(n));
                    row_lane_nodes++;
                }
            CHECK(row_lane_nodes == 16);
            std::vector<float> got = run_engine(*e, ref.x, batch);
            INFO(model << " " << resnest::precision_name(p) << " row-lanes pool");
            const double err = check_logits(got, ref, batch, p);
            std::printf("cuda %s %s, row-lanes pool: max|d|/max|ref| %.3g\n", model, resnest::precision_name(p), err);
        }
    }
}

TEST_CASE("ResNeSt50 with its radix splits apart (RESNEST_RADIX_SPLIT) matches the CPU, with either pool",
          "[cuda][models]") {
    INFO("seed " << run_seed());
    const int batch = 5;
    const CpuReference ref = cpu_reference("models/resnest50.json", 9, batch, 18);  // unsplit, on the CPU
    struct Variant {
        const char* split;
        const char* pool;
        int blocks;  // split-attention nodes reading their splits apart
    };
    for (Variant v : {Variant{"all", "channel-lanes", 16}, Variant{"196", "channel-lanes", 8},
                      Variant{"all", "row-lanes", 16}})
        for (Precision p : {Precision::fp32, Precision::fp16}) {
            std::shared_ptr<resnest::Engine> e;
            {
                ScopedEnv split("RESNEST_RADIX_SPLIT", v.split), pool("RESNEST_ATTENTION_POOL", v.pool);
                e = resnest::Engine::load_seeded(src("models/resnest50.json"), 9, cuda_options(p, batch));
            }
            const auto* cuda_engine = dynamic_cast<const resnest::CudaEngine*>(e.get());
            REQUIRE(cuda_engine);
            int apart = 0;
            for (const resnest::Node& n : cuda_engine->graph().nodes)
                if (n.op == resnest::OpType::split_attention) {
                    apart += n.inputs.size() == 2;
                    // ResNeSt50's C (64-512) is whole 16-byte lanes: the row-lanes pool takes the splits apart too.
                    if (std::string(v.pool) == "row-lanes") CHECK(cuda_engine->pool_row_lanes(n));
                }
            CHECK(apart == v.blocks);
            std::vector<float> got = run_engine(*e, ref.x, batch);
            INFO("RESNEST_RADIX_SPLIT=" << v.split << " RESNEST_ATTENTION_POOL=" << v.pool << " "
                                        << resnest::precision_name(p));
            const double err = check_logits(got, ref, batch, p);
            std::printf("cuda resnest50 %s, radix splits apart (%s, %s pool): max|d|/max|ref| %.3g\n",
                        resnest::precision_name(p), v.split, v.pool, err);
        }
}
