// split_attention_pool_plan.h: how split attention's pool (kernels/split_attention_pool.cu) divides its work:
// a block covers 32 channel lanes (a lane is one channel, or two adjacent channels with half2 loads) of one
// image and one chunk of the spatial positions. Splitting the positions into chunks keeps a small batch
// from leaving most of the GPU idle (batch 1, layer 1: 2 blocks without chunks). Each block writes the
// plain sum of its chunk; the gate kernel adds the chunks in a fixed order (deterministic, no atomics).
// Plain C++ (host arithmetic only), so it is unit-tested on any machine.
#pragma once
#include <string>

#include "resnest/error.h"

#ifdef __CUDACC__
#define RESNEST_HOST_DEVICE __host__ __device__
#else
#define RESNEST_HOST_DEVICE
#endif

namespace resnest {

constexpr int kPoolLanes = 32;          // channel lanes per block (threadIdx.x)
constexpr int kPoolRows = 8;            // position rows per block (threadIdx.y)
constexpr int kPoolMaxChunks = 64;      // chunks per image at most
constexpr int kPoolMinChunkPositions = 16;  // positions per chunk at least (two per thread row)

// Throws, naming `kernel`, unless 1 <= chunks <= kPoolMaxChunks: one chunk a grid row, and the gate reads
// (N, chunks, C) partials from a buffer sized for the plan's chunks.
inline void split_attention_pool_check_chunks(const char* kernel, int chunks) {
    if (chunks < 1 || chunks > kPoolMaxChunks)
        throw Error(std::string(kernel) + ": " + std::to_string(chunks) + " chunks is outside 1.." +
                    std::to_string(kPoolMaxChunks));
}
// About eight blocks per SM on a 132-SM H100/H200: the pool lab (H200, 2026-11-28) had batch 128's best
// chunk counts at 1024 blocks on layers 1, 2 and 4 (layer 1: 8 chunks 0.0566 ms, 5 chunks 0.0755 ms).
constexpr int kPoolTargetBlocks = 1024;

// Blocks across the channels: one lane per channel, or per channel pair when `paired` (half2 loads).
inline int split_attention_pool_lane_blocks(int channels, bool paired) {
    int lanes = paired ? channels / 2 : channels;
    return (lanes + kPoolLanes - 1) / kPoolLanes;
}

// Chunks per image when each chunk takes `blocks` blocks in all (over the images and lane blocks): the
// fewest that give kPoolTargetBlocks blocks, no more than the hw positions allow (kPoolMinChunkPositions
// each) or kPoolMaxChunks; at least 1.
inline int split_attention_pool_chunks_over(long long blocks, int hw) {
    long long want = (kPoolTargetBlocks + blocks - 1) / blocks;
    long long by_positions = hw / kPoolMinChunkPositions;
    long long chunks = want < by_positions ? want : by_positions;
    if (chunks > kPoolMaxChunks) chunks = kPoolMaxChunks;
    return chunks < 1 ? 1 : (int)chunks;
}

// Chunks per image for n images of hw positions, for the channel-lanes pool (split_attention_pool.cu).
inline int split_attention_pool_chunks(int n, int hw, int channels, bool paired) {
    return split_attention_pool_chunks_over((long long)split_attention_pool_lane_blocks(channels, paired) * n, hw);
}

// The row-lanes pool (split_attention_pool_row_lanes.cu): a block of kPoolRowLanesThreads threads takes one
// image and one chunk; a lane is 16 bytes (`vec` elements) of the R*C channel row, so the row must be a
// whole number of lanes, and at most one block of them. With the splits apart (R tensors, not one
// interleaved row: split_attention_rows.cuh) a lane must also stay inside one split: C a multiple of vec.
constexpr int kPoolRowLanesThreads = 256;
inline bool split_attention_pool_row_lanes_fits(int radix, int channels, int vec, bool splits_apart = false) {
    const long long row = (long long)radix * channels;
    return radix >= 1 && channels >= 1 && row % vec == 0 && row / vec <= kPoolRowLanesThreads &&
           (!splits_apart || channels % vec == 0);
}
// Its chunk count: one block per image and chunk.
inline int split_attention_pool_row_lanes_chunks(int n, int hw) { return split_attention_pool_chunks_over(n, hw); }

// Positions per chunk (the last chunk may be shorter, or empty when hw is small).
RESNEST_HOST_DEVICE inline int split_attention_pool_chunk_positions(int hw, int chunks) { return (hw + chunks - 1) / chunks; }

}  // namespace resnest
