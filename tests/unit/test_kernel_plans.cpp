// test_kernel_plans.cpp: the host arithmetic that decides how CUDA kernels divide their work, checked on the
// CPU: split attention's pool chunking (kernels/split_attention_pool_plan.h).
#include <catch2/catch.hpp>

#include <vector>

#include "split_attention_pool_plan.h"

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
