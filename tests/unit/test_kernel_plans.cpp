// test_kernel_plans.cpp: the host arithmetic that decides how CUDA kernels divide their work, checked on the
// CPU: split attention's pool chunking (kernels/split_attention_pool_plan.h), how its kernels find U's
// radix splits (kernels/split_attention_rows.cuh), and the implicit-GEMM convolution's addresses and K split
// (kernels/conv3x3_implicit_gemm_geometry.h, against the labs' direct convolution, lab/lab_reference.h).
// The combine + 1x1 convolution kernel's: test_combine_conv_plan.cpp.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "conv3x3_implicit_gemm_geometry.h"
#include "dtype.h"
#include "kernel_plan_checks.h"
#include "lab/lab_reference.h"
#include "split_attention_pool_plan.h"
#include "split_attention_rows.cuh"
#include "test_helpers.h"

using namespace resnest;


TEST_CASE("split attention pool chunks cover every position once and fill the GPU when they can", "[kernel-plan]") {
    for (int hw : {1, 15, 49, 196, 784, 1025, 3136, 12544})
        for (int c : {24, 64, 128, 256, 512})
            for (bool paired : {false, true})
                for (int n : {1, 2, 3, 8, 32, 128}) {
                    INFO("hw " << hw << " C " << c << (paired ? " half2" : "") << " batch " << n);
                    const int chunks = split_attention_pool_chunks(n, hw, c, paired);
                    REQUIRE(chunks >= 1);
                    CHECK(chunks <= kPoolMaxChunks);
                    CHECK((chunks == 1 || hw / chunks >= kPoolMinChunkPositions));
                    // Enough blocks, unless a limit (positions per chunk, chunks per image) stopped it.
                    const long long blocks = (long long)split_attention_pool_lane_blocks(c, paired) * n * chunks;
                    if (chunks < kPoolMaxChunks && chunks < hw / kPoolMinChunkPositions)
                        CHECK(blocks >= kPoolTargetBlocks);
                    // Fewer chunks as the batch grows, never more.
                    if (n > 1) CHECK(chunks <= split_attention_pool_chunks(n - 1, hw, c, paired));
                    // The kernel's partition: chunk k covers [k*per, min(hw, (k+1)*per)); each position once.
                    const int per = split_attention_pool_chunk_positions(hw, chunks);
                    std::vector<int> seen(hw, 0);
                    for (int k = 0; k < chunks; k++)
                        for (int p = k * per; p < hw && p < (k + 1) * per; p++) seen[p]++;
                    int wrong = 0;
                    for (int p = 0; p < hw; p++) wrong += seen[p] != 1;
                    CHECK(wrong == 0);
                }
}

TEST_CASE("split attention pool lanes: one per channel, or per pair with half2", "[kernel-plan]") {
    CHECK(split_attention_pool_lane_blocks(64, false) == 2);
    CHECK(split_attention_pool_lane_blocks(64, true) == 1);
    CHECK(split_attention_pool_lane_blocks(24, false) == 1);
    CHECK(split_attention_pool_lane_blocks(512, true) == 8);
    CHECK(split_attention_pool_lane_blocks(66, true) == 2);
    // ResNeSt50 at batch 128, fp16 (the lab's best chunk counts): layer 1 (56x56, C 64) 8 chunks, layer 2
    // (28x28, C 128) 4, layer 4 (7x7, C 512) 1; batch 1 takes the most chunks.
    CHECK(split_attention_pool_chunks(1, 3136, 64, true) == kPoolMaxChunks);
    CHECK(split_attention_pool_chunks(128, 3136, 64, true) == 8);
    CHECK(split_attention_pool_chunks(128, 784, 128, true) == 4);
    CHECK(split_attention_pool_chunks(128, 49, 512, true) == 1);
}

TEST_CASE("the row-lanes pool takes whole 16-byte lanes in one block, one block per image and chunk",
          "[kernel-plan]") {
    // fp16 (8 halves a lane) and fp32 (4 floats): every ResNeSt50 / fast attention row (R = 2, C 64..512).
    for (int c : {64, 128, 256, 512}) {
        CHECK(split_attention_pool_row_lanes_fits(2, c, 8));
        CHECK(split_attention_pool_row_lanes_fits(2, c, 4));
    }
    CHECK(split_attention_pool_row_lanes_fits(4, 24, 8));       // 96 halves: 12 lanes (splits straddle lanes)
    CHECK_FALSE(split_attention_pool_row_lanes_fits(3, 5, 8));  // 15 halves: not whole 16-byte lanes
    CHECK_FALSE(split_attention_pool_row_lanes_fits(2, 3, 4));  // 6 floats
    CHECK(split_attention_pool_row_lanes_fits(4, 512, 8));      // 2048 halves: 256 lanes, one block
    CHECK_FALSE(split_attention_pool_row_lanes_fits(4, 520, 8));  // 260 lanes: more than a block
    CHECK_FALSE(split_attention_pool_row_lanes_fits(4, 512, 4));  // 512 lanes of floats
    CHECK_FALSE(split_attention_pool_row_lanes_fits(0, 64, 8));
    // The shared-memory row sums hold (rows, R*C) floats: rows * lanes <= the block, so at most 256 * vec.
    for (int radix : {1, 2, 3, 4})
        for (int c = 1; c <= 1024; c++)
            for (int vec : {4, 8})
                if (split_attention_pool_row_lanes_fits(radix, c, vec)) {
                    const int lanes = radix * c / vec, rows = kPoolRowLanesThreads / lanes;
                    REQUIRE(rows >= 1);
                    CHECK(rows * radix * c <= kPoolRowLanesThreads * vec);
                }
    // Chunks: one block per image and chunk, so more chunks than the channel-lanes plan where that has
    // several lane blocks (layer 4 at batch 128: 1 there, 3 here, the positions' limit), the same at layer 1.
    CHECK(split_attention_pool_row_lanes_chunks(128, 3136) == 8);
    CHECK(split_attention_pool_row_lanes_chunks(128, 49) == 3);
    CHECK(split_attention_pool_row_lanes_chunks(1, 3136) == kPoolMaxChunks);
    for (int hw : {1, 15, 49, 196, 784, 3136})
        for (int n : {1, 3, 8, 128}) {
            const int chunks = split_attention_pool_row_lanes_chunks(n, hw);
            CHECK(chunks >= 1);
            CHECK(chunks <= kPoolMaxChunks);
            CHECK((chunks == 1 || hw / chunks >= kPoolMinChunkPositions));
            if (chunks < kPoolMaxChunks && chunks < hw / kPoolMinChunkPositions)
                CHECK((long long)n * chunks >= kPoolTargetBlocks);
        }
}

TEST_CASE("with the radix splits apart, a row lane must also stay inside one split", "[kernel-plan]") {
    // Interleaved (one (N, HW, R*C) tensor) a lane may straddle two splits; apart (R tensors) it may not.
    CHECK(split_attention_pool_row_lanes_fits(2, 36, 8));        // 72 halves: 9 lanes, lane 4 straddles
    CHECK_FALSE(split_attention_pool_row_lanes_fits(2, 36, 8, true));
    CHECK(split_attention_pool_row_lanes_fits(2, 36, 4, true));  // 36 floats: 9 lanes a split
    CHECK(split_attention_pool_row_lanes_fits(2, 6, 4));         // 12 floats: 3 lanes
    CHECK_FALSE(split_attention_pool_row_lanes_fits(2, 6, 4, true));
    CHECK(split_attention_pool_row_lanes_fits(4, 24, 8, true));  // 24 halves: 3 lanes a split
    CHECK_FALSE(split_attention_pool_row_lanes_fits(4, 520, 8, true));  // whole lanes, but over a block
    // Apart is never looser than interleaved, and the same wherever C is whole lanes (every ResNeSt50 row).
    for (int radix : {1, 2, 3, 4, 8})
        for (int c = 1; c <= 600; c++)
            for (int vec : {4, 8}) {
                INFO("R " << radix << " C " << c << " vec " << vec);
                const bool interleaved = split_attention_pool_row_lanes_fits(radix, c, vec);
                const bool apart = split_attention_pool_row_lanes_fits(radix, c, vec, true);
                if (apart) CHECK(interleaved);
                if (c % vec == 0) CHECK(apart == interleaved);
                if (radix == 1) CHECK(apart == interleaved);  // one split: nothing to straddle
            }
}

TEST_CASE("radix rows describe U interleaved in one tensor or as R tensors apart", "[kernel-plan]") {
    // Addresses only: nothing is read. Element (n, p, r, c) of U is at split[r] + (n*HW + p) * row + c.
    alignas(16) static float u[4 * 2 * 3 * 8];  // (N 4, HW 2, R*C 3*8)
    const RadixRows<float> in = radix_rows_interleaved(u, 3, 8);
    CHECK(in.row == 24);
    for (int r = 0; r < 3; r++) CHECK(in.split[r] == u + r * 8);
    for (int r = 3; r < kSplitAttentionMaxRadix; r++) CHECK(in.split[r] == nullptr);
    CHECK(&in.split[2][(3 * 2 + 1) * in.row + 5] == &u[((3 * 2 + 1) * 3 + 2) * 8 + 5]);  // n 3, p 1, r 2, c 5
    CHECK(radix_rows_are_interleaved(in, 3, 8));
    CHECK(radix_rows_aligned(in, 3, 16));  // 8 floats a split: every split on a 16-byte boundary
    CHECK_FALSE(radix_rows_aligned(radix_rows_interleaved(u, 2, 6), 2, 16));  // split 1 at 24 bytes
    CHECK(radix_rows_aligned(radix_rows_interleaved(u, 2, 6), 1, 16));        // split 0 and the 48-byte row
    CHECK_FALSE(radix_rows_aligned(radix_rows_interleaved(u, 3, 6), 1, 16));  // a 72-byte row

    alignas(16) static float a0[4 * 2 * 8], a1[4 * 2 * 8], a2[4 * 2 * 8];  // (N 4, HW 2, C 8) each
    const float* splits[] = {a0, a1, a2};
    const RadixRows<float> ap = radix_rows_apart(splits, 3, 8);
    CHECK(ap.row == 8);
    CHECK(ap.split[1] == a1);
    CHECK(ap.split[3] == nullptr);
    CHECK(&ap.split[2][(3 * 2 + 1) * ap.row + 5] == &a2[(3 * 2 + 1) * 8 + 5]);
    CHECK_FALSE(radix_rows_are_interleaved(ap, 3, 8));
    CHECK(radix_rows_aligned(ap, 3, 16));
    const float* off[] = {a0, a1 + 1, a2};  // split 1 four bytes past its boundary
    CHECK_FALSE(radix_rows_aligned(radix_rows_apart(off, 3, 8), 3, 16));
    CHECK(radix_rows_aligned(radix_rows_apart(off, 3, 8), 3, 4));
    // One split: the two descriptions are the same, and count as interleaved.
    CHECK(radix_rows_are_interleaved(radix_rows_apart(splits, 1, 8), 1, 8));
    // The radix is 1..kSplitAttentionMaxRadix.
    CHECK_THROWS_WITH(radix_rows_interleaved(u, 0, 8), Catch::Contains("radix 0 is outside 1..8"));
    const float* nine[kSplitAttentionMaxRadix + 1] = {a0, a1, a2, a0, a1, a2, a0, a1, a2};
    CHECK_THROWS_WITH(radix_rows_apart(nine, kSplitAttentionMaxRadix + 1, 8),
                      Catch::Contains("radix_rows_apart: radix 9"));
}

TEST_CASE("the implicit-GEMM convolution's matrices, multiplied, are the grouped 3x3 convolution", "[kernel-plan]") {
    // Two groups of 32 -> 64 channels and one of 32 -> 64, on sizes where the padding and a partial M tile
    // (M = 2*5*3 = 30 < 64) both occur.
    using Shape3x3 = ImplicitConv3x3Shape;
    for (Shape3x3 s : {Shape3x3{2, 5, 3, 64, 128, 2}, Shape3x3{1, 4, 6, 32, 64, 1}}) {
        REQUIRE(s.fits());
        const std::vector<float> x = test::random_floats((size_t)(s.m() * s.cin), -1.0f, 1.0f);
        const std::vector<float> w = test::random_floats((size_t)s.cout * s.k(), -1.0f, 1.0f);
        std::vector<float> y((size_t)(s.m() * s.cout), std::nanf(""));
        for (int g = 0; g < s.groups; g++)
            for (long long m = 0; m < s.m(); m++)
                for (int o = 0; o < s.cout_g(); o++) {
                    double acc = 0.0;
                    for (int k = 0; k < s.k(); k++) {
                        const long long a = s.a_offset(g, m, k);
                        if (a >= 0) acc += (double)x[(size_t)a] * w[(size_t)s.b_offset(g, k, o)];
                    }
                    y[(size_t)s.y_offset(g, m, o)] = (float)acc;
                }
        std::vector<double> ref(y.size());
        for (long long m = 0; m < s.m(); m++)
            for (int o = 0; o < s.cout; o++)
                ref[(size_t)(m * s.cout + o)] =
                    lab::grouped_conv3x3_ref(x, w, s.h, s.w, s.cin, s.cout, s.groups, (int)(m / (s.h * s.w)),
                                             (int)(m / s.w % s.h), (int)(m % s.w), o);
        CHECK(lab::max_rel_error(y, ref) < 1e-6);
        CHECK(s.a_offset(0, s.m(), 0) == -1);  // rows past M read nothing
    }
}

TEST_CASE("the implicit-GEMM convolution's split plan: contiguous ranges, one wave, at least 8 K steps a split",
          "[kernel-plan]") {
    for (int splits = 1; splits <= 16; splits++) {
        const ImplicitConv3x3Shape s{1, 7, 7, 512, 1024, 2};  // 72 K steps
        test::check_split_ranges(s, splits);
    }
    // ResNeSt50's conv2 at batch 1 on 132 SMs, by the rule: layer 4 has 1 x 8 x 2 = 16 tiles and 72 steps,
    // so 8 splits (128 blocks, 9 steps each); layer 1 has 49 x 1 x 2 = 98 tiles (a second wave would be 196).
    CHECK(conv3x3_implicit_gemm_splits({1, 7, 7, 512, 1024, 2}, 132) == 8);
    CHECK(conv3x3_implicit_gemm_splits({1, 56, 56, 64, 128, 2}, 132) == 1);
    using Shape3x3 = ImplicitConv3x3Shape;
    for (int batch : {1, 8, 32})
        for (Shape3x3 s : {Shape3x3{batch, 28, 28, 128, 256, 2}, Shape3x3{batch, 14, 14, 256, 512, 2}}) {
            const int splits = conv3x3_implicit_gemm_splits(s, 132);
            CHECK((splits == 1 || (long long)s.tiles() * splits <= 132));
            CHECK(s.k_steps() / splits >= 8);
        }
    CHECK_FALSE((Shape3x3{1, 7, 7, 48, 128, 2}.fits()));  // 24 channels a group: not whole K steps
    CHECK_FALSE((Shape3x3{1, 7, 7, 64, 96, 2}.fits()));   // 48 outputs a group: not a whole N tile
    CHECK_FALSE((Shape3x3{1, 7, 7, 0, 128, 2}.fits()));   // no input channels
    CHECK_FALSE((Shape3x3{1, 7, 7, 64, 0, 2}.fits()));    // no output channels
    CHECK_FALSE((Shape3x3{1, 7, 7, 64, 128, 0}.fits()));  // no groups
    CHECK((Shape3x3{1, 7, 7, 64, 128, 2}.fits()));        // the smallest that does: one K step, one N tile a group
}

TEST_CASE("the implicit-GEMM convolution's blocks, emulated on the host, cover every output once and split K "
          "without loss", "[kernel-plan]") {
    // The kernel's grid walked on the CPU with its own index functions: block (tile_m, tile_n, g * splits + s)
    // multiplies its K steps into a 64x64 float tile at partial_offset(s, tile_index(...)); the tile's splits
    // are then added in split order and written at y_offset, rows past M skipped. Every output must be
    // written exactly once and equal the direct convolution, at every split count.
    using Shape3x3 = ImplicitConv3x3Shape;
    for (Shape3x3 s : {Shape3x3{3, 5, 7, 64, 128, 2}, Shape3x3{1, 3, 3, 64, 256, 2}, Shape3x3{2, 4, 4, 96, 64, 1}}) {
        REQUIRE(s.fits());
        const std::vector<float> x = test::random_floats((size_t)(s.m() * s.cin), -1.0f, 1.0f);
        const std::vector<float> w = test::random_floats((size_t)s.cout * s.k(), -1.0f, 1.0f);
        std::vector<double> ref((size_t)(s.m() * s.cout));
        for (long long m = 0; m < s.m(); m++)
            for (int o = 0; o < s.cout; o++)
                ref[(size_t)(m * s.cout + o)] =
                    lab::grouped_conv3x3_ref(x, w, s.h, s.w, s.cin, s.cout, s.groups, (int)(m / (s.h * s.w)),
                                             (int)(m / s.w % s.h), (int)(m % s.w), o);
        for (int splits = 1; splits <= s.k_steps() && splits <= 16; splits++) {
            INFO("shape " << s.n << "x" << s.h << "x" << s.w << " " << s.cin << "->" << s.cout << " groups "
                          << s.groups << ", " << splits << " splits");
            const int tile_elems = kImplicitTileM * kImplicitTileN;
            std::vector<float> partial((size_t)splits * s.tiles() * tile_elems, std::nanf(""));
            std::vector<int> writes_to_slot(partial.size() / tile_elems, 0);
            for (int g = 0; g < s.groups; g++)
                for (int tn = 0; tn < s.tiles_n(); tn++)
                    for (int tm = 0; tm < s.tiles_m(); tm++)
                        for (int q = 0; q < splits; q++) {
                            const int tile = s.tile_index(g, tn, tm);
                            REQUIRE(tile >= 0);
                            REQUIRE(tile < s.tiles());
                            const long long slot = s.partial_offset(q, tile);
                            REQUIRE(slot % tile_elems == 0);
                            writes_to_slot[(size_t)(slot / tile_elems)]++;
                            int b = 0, e = 0;
                            s.split_range(q, splits, &b, &e);
                            for (int row = 0; row < kImplicitTileM; row++) {
                                const auto origin = s.tile_row_origin(tm, row);  // as the kernel takes it
                                for (int col = 0; col < kImplicitTileN; col++) {
                                    float acc = 0.0f;
                                    const int o = tn * kImplicitTileN + col;
                                    for (int k = b * kImplicitTileK; k < e * kImplicitTileK; k++) {
                                        const long long a = s.a_offset(origin, g, k);
                                        if (a >= 0) acc += x[(size_t)a] * w[(size_t)s.b_offset(g, k, o)];
                                    }
                                    partial[(size_t)(slot + row * kImplicitTileN + col)] = acc;
                                }
                            }
                        }
            CHECK(std::count(writes_to_slot.begin(), writes_to_slot.end(), 1) == (long)writes_to_slot.size());
            std::vector<float> y((size_t)(s.m() * s.cout), std::nanf(""));
            std::vector<int> writes((size_t)(s.m() * s.cout), 0);
            for (int g = 0; g < s.groups; g++)
                for (int tn = 0; tn < s.tiles_n(); tn++)
                    for (int tm = 0; tm < s.tiles_m(); tm++)
                        for (int row = 0; row < kImplicitTileM; row++) {
                            const long long m = (long long)tm * kImplicitTileM + row;
                            if (m >= s.m()) continue;
                            for (int col = 0; col < kImplicitTileN; col++) {
                                float sum = 0.0f;
                                for (int q = 0; q < splits; q++)
                                    sum += partial[(size_t)(s.partial_offset(q, s.tile_index(g, tn, tm)) +
                                                            row * kImplicitTileN + col)];
                                const long long at = s.y_offset(g, m, tn * kImplicitTileN + col);
                                y[(size_t)at] = sum;
                                writes[(size_t)at]++;
                            }
                        }
            CHECK(std::count(writes.begin(), writes.end(), 1) == (long)writes.size());
            CHECK(lab::max_rel_error(y, ref) < 1e-5);
        }
    }
}


TEST_CASE("the implicit-GEMM convolution pooling for split attention, emulated on the host, keeps each tile in one "
          "image and writes each pool partial once, as its tile's sum", "[kernel-plan]") {
    // The kernel's grid walked on the CPU as above, rows tiled image by image (pool_radix > 0): the last block
    // of a tile writes y (bias, ReLU) for its tile_rows rows, then each column's sum (rows 0-31 plus rows
    // 32-63) at pool_offset. Every output and every pool partial (N, chunks, C) must be written exactly once;
    // partial (n, j*R + r, c) must be the sum of y[n, p, r*C + c] over the positions p of the image's tile j
    // (the layout the gate reads: split_attention_gate.cuh), so its chunks add up to the radix-summed pool.
    using Shape3x3 = ImplicitConv3x3Shape;
    auto pooled = [](Shape3x3 s, int radix) {
        s.pool_radix = radix;
        return s;
    };
    for (Shape3x3 s : {pooled({3, 5, 7, 64, 128, 2}, 2),   // 35 positions: one short tile an image
                       pooled({2, 9, 9, 64, 128, 1}, 2),   // 81 = 64 + 17; radix 2 without groups
                       pooled({2, 12, 12, 32, 64, 1}, 1),  // 144 = 64 + 64 + 16; radix 1 (the fast model)
                       pooled({2, 8, 8, 64, 256, 2}, 2)}) {  // 64: one whole tile an image; C = 128
        INFO("shape " << s.n << "x" << s.h << "x" << s.w << " " << s.cin << "->" << s.cout << " groups " << s.groups
                      << " radix " << s.pool_radix);
        REQUIRE(s.fits());
        REQUIRE(s.pool_fits());
        const int hw = s.h * s.w, C = s.pool_channels(), R = s.pool_radix;
        CHECK(s.tiles_m() == s.n * ((hw + 63) / 64));
        CHECK(s.pool_chunks() == (hw + 63) / 64 * R);
        const std::vector<float> x = test::random_floats((size_t)(s.m() * s.cin), -1.0f, 1.0f);
        const std::vector<float> w = test::random_floats((size_t)s.cout * s.k(), -1.0f, 1.0f);
        const std::vector<float> bias = test::random_floats((size_t)s.cout, -0.5f, 0.5f);
        std::vector<double> ref((size_t)(s.m() * s.cout));  // relu(conv + bias), (N*H*W, Cout)
        for (long long m = 0; m < s.m(); m++)
            for (int o = 0; o < s.cout; o++)
                ref[(size_t)(m * s.cout + o)] = std::max(
                    0.0, lab::grouped_conv3x3_ref(x, w, s.h, s.w, s.cin, s.cout, s.groups, (int)(m / hw),
                                                  (int)(m / s.w % s.h), (int)(m % s.w), o) + bias[(size_t)o]);
        for (int splits : {1, 2, 3}) {
            INFO(splits << " splits");
            const int tile_elems = kImplicitTileM * kImplicitTileN;
            std::vector<float> y((size_t)(s.m() * s.cout), std::nanf(""));
            std::vector<int> writes(y.size(), 0);
            std::vector<float> pool((size_t)s.n * s.pool_chunks() * C, std::nanf(""));
            std::vector<int> pool_writes(pool.size(), 0);
            for (int g = 0; g < s.groups; g++)
                for (int tn = 0; tn < s.tiles_n(); tn++)
                    for (int tm = 0; tm < s.tiles_m(); tm++) {
                        const int rows = s.tile_rows(tm);
                        REQUIRE(rows >= 1);
                        REQUIRE(rows <= kImplicitTileM);
                        CHECK(s.tile_row0(tm) / hw == (s.tile_row0(tm) + rows - 1) / hw);  // one image
                        std::vector<float> tile((size_t)tile_elems, 0.0f);  // the splits' partials, in split order
                        for (int q = 0; q < splits; q++) {
                            int b = 0, e = 0;
                            s.split_range(q, splits, &b, &e);
                            for (int row = 0; row < kImplicitTileM; row++) {
                                const auto origin = s.tile_row_origin(tm, row);
                                CHECK(origin.valid == (row < rows));
                                for (int col = 0; col < kImplicitTileN; col++) {
                                    float acc = 0.0f;
                                    for (int k = b * kImplicitTileK; k < e * kImplicitTileK; k++) {
                                        const long long a = s.a_offset(origin, g, k);
                                        const int o = tn * kImplicitTileN + col;
                                        if (a >= 0) acc += x[(size_t)a] * w[(size_t)s.b_offset(g, k, o)];
                                    }
                                    tile[(size_t)(row * kImplicitTileN + col)] += acc;
                                }
                            }
                        }
                        float column[2][kImplicitTileN] = {};
                        for (int row = 0; row < rows; row++)
                            for (int col = 0; col < kImplicitTileN; col++) {
                                const int o = tn * kImplicitTileN + col;
                                const float b = bias[(size_t)(g * s.cout_g() + o)];
                                const float v = std::max(tile[(size_t)(row * kImplicitTileN + col)] + b, 0.0f);
                                const long long at = s.y_offset(g, s.tile_row0(tm) + row, o);
                                y[(size_t)at] = v;
                                writes[(size_t)at]++;
                                column[row / 32][col] += v;
                            }
                        for (int col = 0; col < kImplicitTileN; col++) {
                            const long long at = s.pool_offset(tm, g * s.cout_g() + tn * kImplicitTileN + col);
                            REQUIRE(at >= 0);
                            REQUIRE(at < (long long)pool.size());
                            pool[(size_t)at] = column[0][col] + column[1][col];
                            pool_writes[(size_t)at]++;
                        }
                    }
            CHECK(std::count(writes.begin(), writes.end(), 1) == (long)writes.size());
            CHECK(lab::max_rel_error(y, ref) < 1e-5);
            CHECK(std::count(pool_writes.begin(), pool_writes.end(), 1) == (long)pool_writes.size());
            // The gate's reading: chunk j*R + r of image n holds tile j's sum of radix split r.
            std::vector<double> expect(pool.size(), 0.0);
            for (int n = 0; n < s.n; n++)
                for (int p = 0; p < hw; p++)
                    for (int r = 0; r < R; r++)
                        for (int c = 0; c < C; c++)
                            expect[((size_t)n * s.pool_chunks() + (size_t)(p / 64) * R + r) * C + c] +=
                                ref[((size_t)n * hw + p) * s.cout + (size_t)r * C + c];
            CHECK(lab::max_rel_error(pool, expect) < 1e-5);
        }
    }
}

TEST_CASE("the implicit-GEMM convolution takes split attention's pool where tiling image by image adds at most an "
          "eighth more tiles", "[kernel-plan]") {
    using Shape3x3 = ImplicitConv3x3Shape;
    for (int batch : {1, 2, 8, 32, 128}) {
        INFO("batch " << batch);
        // ResNeSt50's split-attention convolutions: 56x56 (49 whole tiles an image), 28x28 (12.25), 14x14
        // (3.06), 7x7 (0.77).
        CHECK(conv3x3_implicit_gemm_pool_tiles_allowed({batch, 56, 56, 64, 128, 2}));
        CHECK(conv3x3_implicit_gemm_pool_tiles_allowed({batch, 28, 28, 128, 256, 2}));  // 13 against 12.25: 6 %
        CHECK(conv3x3_implicit_gemm_pool_tiles_allowed({batch, 14, 14, 256, 512, 2}) == (batch == 1));
        // Two images of 49: 98 rows are 2 tiles either way; eight are 7 tiles over all, 8 image by image.
        CHECK(conv3x3_implicit_gemm_pool_tiles_allowed({batch, 7, 7, 512, 1024, 2}) == (batch <= 2));
    }
    // The rule counts the tiles as the kernel would make them.
    Shape3x3 s{8, 7, 7, 512, 1024, 2};
    CHECK(s.tiles_m() == 7);  // 392 rows
    s.pool_radix = 2;
    CHECK(s.tiles_m() == 8);
    CHECK(s.tile_rows(3) == 49);
    CHECK(s.tile_row0(3) == 3 * 49);
}
