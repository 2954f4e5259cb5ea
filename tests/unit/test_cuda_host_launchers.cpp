// test_cuda_host_launchers.cpp: our kernels' launchers refuse what they cannot run (shapes, alignments,
// splits, chunk counts) before any CUDA call, naming the kernel, and launch nothing for a zero count. Runs
// on any machine where the CUDA backend is built: no pointer is ever dereferenced, no device is touched.
#include <catch2/catch.hpp>

#ifdef RESNEST_HAVE_CUDA

#include <string>

#include "channel_affine.cuh"
#include "conv3x3_implicit_gemm.cuh"
#include "global_avg_pool.cuh"
#include "layout_convert.cuh"
#include "softmax_rows.cuh"
#include "split_attention_combine_conv1x1.cuh"
#include "split_attention_gate_rows.cuh"
#include "split_attention_pool.cuh"
#include "split_attention_pool_plan.h"
#include "split_attention_pool_row_lanes.cuh"
#include "split_attention_radix_softmax.cuh"
#include "cuda/cuda_check.h"
#include "test_helpers.h"

using namespace resnest;

TEST_CASE("a launcher with nothing to compute (a zero count) launches nothing, and one with nonsense refuses it",
          "[cuda-host]") {
    // No device is needed, and none is touched: on a machine without a GPU a launch would fail.
    const KernelStream stream(nullptr);
    CHECK_NOTHROW(channel_affine_activation<float>(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 64, true, stream));
    CHECK_NOTHROW(softmax_rows_block_per_row<__half>(nullptr, nullptr, 0, 1000, stream));
    CHECK_NOTHROW(global_avg_pool_nhwc<float>(nullptr, nullptr, 0, 49, 2048, stream));
    CHECK_NOTHROW(nchw_float_to_nhwc<__half>(nullptr, nullptr, 0, 3, 8, 224 * 224, stream));
    CHECK_NOTHROW(nhwc_to_nchw_float<float>(nullptr, nullptr, 0, 1000, 1, stream));
    // Arguments no kernel can make sense of are refused before any launch, naming the kernel.
    const float* none = nullptr;
    CHECK_THROWS_WITH(channel_affine_activation<float>(none, none, none, none, nullptr, 100, 0, true, stream),
                      Catch::Contains("channel_affine_activation") && Catch::Contains("not whole rows of 0 channels"));
    CHECK_THROWS_WITH(channel_affine_activation<float>(none, none, none, none, nullptr, 100, 64, false, stream),
                      Catch::Contains("100 elements are not whole rows of 64 channels"));
    CHECK_THROWS_WITH(nchw_float_to_nhwc<float>(nullptr, nullptr, 1, 3, 2, 49, stream),
                      Catch::Contains("nchw_float_to_nhwc") && Catch::Contains("3 channels cannot be padded to 2"));
}

TEST_CASE("the implicit-GEMM convolution refuses shapes, pointers and splits it cannot run, before any launch",
          "[cuda-host][implicit-gemm]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    alignas(16) static __half x[16], w[16], y[16];
    alignas(16) static float partial[16];
    int arrivals[4];
    const ImplicitConv3x3Shape s{1, 7, 7, 64, 128, 2};  // 32 -> 64 channels a group, 9 K steps
    REQUIRE(std::string(conv3x3_implicit_gemm_refusal(s, x, w, y)).empty());
    float pool[4];
    auto launch = [&](const ImplicitConv3x3Shape& shape, const __half* xp, int splits, int* counts,
                      bool with_pool = true, float* sums = nullptr) {
        conv3x3_implicit_gemm(xp, w, nullptr, y, shape, splits, true, sums ? sums : partial, counts,
                              with_pool ? pool : nullptr,
                              KernelStream());
    };
    CHECK_THROWS_WITH(launch({1, 7, 7, 48, 128, 2}, x, 1, arrivals),
                      Catch::Contains("conv3x3_implicit_gemm") && Catch::Contains("multiples of 32"));
    CHECK_THROWS_WITH(launch({1, 7, 7, 64, 96, 2}, x, 1, arrivals), Catch::Contains("64 (outputs)"));
    CHECK_THROWS_WITH(launch(s, x + 1, 1, arrivals), Catch::Contains("16-byte aligned"));
    for (int splits : {0, 10, 17}) {  // 10: more splits than the 9 K steps
        INFO("splits " << splits);
        CHECK_THROWS_WITH(launch(s, x, splits, arrivals), Catch::Contains("splits of 9 K steps"));
    }
    CHECK_THROWS_WITH(launch(s, x, 2, nullptr), Catch::Contains("arrival counts"));
    CHECK_THROWS_WITH(launch(s, x, 2, arrivals, true, partial + 1), Catch::Contains("16-byte aligned partial sums"));
    // Split attention's pool in the epilogue: each 64-channel N tile inside one radix split, and its buffer.
    ImplicitConv3x3Shape pooled = s;
    pooled.pool_radix = 2;  // 128 outputs = 2 splits of 64
    REQUIRE(std::string(conv3x3_implicit_gemm_refusal(pooled, x, w, y)).empty());
    pooled.pool_radix = 4;  // splits of 32 channels: a tile would straddle two
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals), Catch::Contains("a radix split in multiples of 64"));
    pooled.pool_radix = 3;  // 128 channels do not split three ways
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals), Catch::Contains("a radix split in multiples of 64"));
    pooled.pool_radix = 2;
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals, false),
                      Catch::Contains("pool in the epilogue needs its partials"));
    CHECK(conv3x3_implicit_gemm_partial_bytes(s, 1) == 0);
    CHECK(conv3x3_implicit_gemm_partial_bytes(s, 4) == 4ull * s.tiles() * 64 * 64 * sizeof(float));
}

TEST_CASE("the combine + 1x1 convolution kernel refuses shapes, pointers and splits it cannot run, before any "
          "launch", "[cuda-host][implicit-gemm]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    alignas(16) static __half u[16], w[16], z[16], y[16];
    alignas(16) static float attn[16], partial[16];
    int arrivals[4];
    const CombineConv1x1Shape s{1, 49, 2, 64, 128};  // 2 K steps
    REQUIRE(std::string(split_attention_combine_conv1x1_refusal(s, u, attn, w, z, y)).empty());
    CHECK(std::string(split_attention_combine_conv1x1_refusal(s, u, attn, w, nullptr, y)).empty());  // no residual
    auto launch = [&](const CombineConv1x1Shape& shape, const __half* up, const float* ap, int splits, int* counts,
                      float* sums = nullptr) {
        split_attention_combine_conv1x1(up, ap, w, nullptr, z, y, shape, splits, true, sums ? sums : partial, counts,
                                        KernelStream());
    };
    CHECK_THROWS_WITH(launch({1, 49, 3, 64, 128}, u, attn, 1, arrivals),
                      Catch::Contains("split_attention_combine_conv1x1") && Catch::Contains("radix 1 or 2"));
    CHECK_THROWS_WITH(launch({1, 49, 2, 48, 128}, u, attn, 1, arrivals), Catch::Contains("multiple of 32"));
    CHECK_THROWS_WITH(launch({1, 49, 2, 64, 96}, u, attn, 1, arrivals), Catch::Contains("multiple of 64"));
    CHECK_THROWS_WITH(launch(s, u + 1, attn, 1, arrivals), Catch::Contains("16-byte aligned"));
    CHECK_THROWS_WITH(launch(s, u, attn + 1, 1, arrivals), Catch::Contains("16-byte aligned"));
    for (int splits : {0, 3, 17}) {  // 3: more splits than the 2 K steps
        INFO("splits " << splits);
        CHECK_THROWS_WITH(launch(s, u, attn, splits, arrivals), Catch::Contains("splits of 2 K steps"));
    }
    CHECK_THROWS_WITH(launch(s, u, attn, 2, nullptr), Catch::Contains("arrival counts"));
    CHECK_THROWS_WITH(launch(s, u, attn, 2, arrivals, partial + 1), Catch::Contains("16-byte aligned partial sums"));
    // Without gates (the downsample path's pool) only radix 1; a pool window over padding only.
    CombineConv1x1Shape pool{1, 16, 1, 64, 128, {2, 2, 0, false, 8, 8, 4}};
    REQUIRE(std::string(split_attention_combine_conv1x1_refusal(pool, u, nullptr, w, z, y)).empty());
    CHECK_THROWS_WITH(launch(s, u, nullptr, 1, arrivals), Catch::Contains("gates of one") && Catch::Contains("radix 1"));
    pool.pool.pad = 2;
    CHECK_THROWS_WITH(launch(pool, u, nullptr, 1, arrivals), Catch::Contains("each cover a cell of U"));
    CHECK(split_attention_combine_conv1x1_partial_bytes(s, 1) == 0);
    CHECK(split_attention_combine_conv1x1_partial_bytes(s, 2) == 2ull * s.tiles() * 64 * 64 * sizeof(float));
}

TEST_CASE("the gate and pool launchers refuse a radix, width or chunk count they cannot run, "
          "before any launch", "[cuda-host]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    float* none = nullptr;
    for (int radix : {0, kSplitAttentionMaxRadix + 1}) {
        INFO("radix " << radix);
        CHECK_THROWS_WITH(split_attention_radix_softmax_thread_per_channel(none, 2, radix, 64, KernelStream()),
                          Catch::Contains("split_attention_radix_softmax_thread_per_channel") &&
                              Catch::Contains("radix " + std::to_string(radix)));
        CHECK_THROWS_WITH(split_attention_gate_rows(none, none, none, none, none, none, none, {2, radix, 1, 64, 32},
                                                    KernelStream()),
                          Catch::Contains("split_attention_gate_rows") && Catch::Contains("radix"));
        CHECK_THROWS_WITH(split_attention_gate_block_per_image(none, none, none, none, none, none,
                                                               {2, radix, 1, 64, 32}, KernelStream()),
                          Catch::Contains("split_attention_gate_block_per_image") &&
                              Catch::Contains("radix " + std::to_string(radix)));
    }
    // One block per image holds C + inter + R·C floats: 4 x (7000 + 64 + 7000) = 56,256 bytes, over 48 KiB.
    const SplitAttentionGateShape wide_block{2, 1, 1, 7000, 64};
    REQUIRE(split_attention_gate_smem_bytes(wide_block) > 48 * 1024);
    CHECK_THROWS_WITH(split_attention_gate_block_per_image(none, none, none, none, none, none, wide_block,
                                                           KernelStream()),
                      Catch::Contains("7000 channels") && Catch::Contains("48 KiB"));
    // Both pools refuse a chunk count outside 1..kPoolMaxChunks (the gate's partials are sized for the plan's).
    const RadixRows<float> u = radix_rows_interleaved((const float*)nullptr, 2, 64);
    for (int chunks : {0, kPoolMaxChunks + 1}) {
        INFO("chunks " << chunks);
        CHECK_THROWS_WITH(split_attention_radix_sum_pool(u, none, 1, 49, 2, 64, chunks, KernelStream()),
                          Catch::Contains("split_attention_radix_sum_pool") &&
                              Catch::Contains(std::to_string(chunks) + " chunks is outside"));
        CHECK_THROWS_WITH(split_attention_radix_sum_pool_row_lanes(u, none, 1, 49, 2, 64, chunks, KernelStream()),
                          Catch::Contains(std::to_string(chunks) + " chunks is outside"));
    }
    // No image: nothing to launch (a launch here, with no device, would throw).
    CHECK_NOTHROW(split_attention_gate_block_per_image(none, none, none, none, none, none, {0, 2, 1, 64, 32},
                                                       KernelStream()));
    // 8 images a tile x 1600 float channels = 51,200 bytes, over 48 KiB.
    const SplitAttentionGateShape wide{2, 2, 1, 1600, 64};
    REQUIRE(split_attention_gate_rows_smem_bytes(wide) > 48 * 1024);
    CHECK_THROWS_WITH(split_attention_gate_rows(none, none, none, none, none, none, none, wide, KernelStream()),
                      Catch::Contains("1600 channels") && Catch::Contains("48 KiB"));
}

#endif  // RESNEST_HAVE_CUDA
