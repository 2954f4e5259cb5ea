// conv3x3_implicit_gemm.cu: the implicit-GEMM 3x3 convolution (conv3x3_implicit_gemm.cuh).
// A block of 128 threads computes one 64x64 tile of (M, Cout/G) of one group over one range of K steps:
// four warps of 32x32, each 2x2 wmma 16x16x16 fragments (half in, float accumulators). Every K step moves
// a 64x32 piece of A (the input windows, read straight from x: zeros where a window leaves the image) and
// a 32x64 piece of B (the filter as stored) into shared memory with 16-byte cp.async copies, two stages
// deep, so the next step's loads fly while this one multiplies. The tile then goes through shared memory
// as floats: with one split it is written out with the bias and ReLU; with several, each block writes its
// partial tile, and the last to arrive (a per-tile counter) adds the partials in split order and writes y.
// Before it waits on the kernel before it, the block of the first M tile asks L2 for the filter slice that
// every M tile of its (N tile, group, split) reads (KernelStream::prefetch_weights).
// With split attention's pool in the epilogue (s.pool_radix > 0; rows tiled image by image) that block then
// adds each column of the tile as written (bias, ReLU, rounded to half) into one pool partial.
#include "conv3x3_implicit_gemm.cuh"

#include <mma.h>

#include <cstdint>
#include <string>

#include "kernel_common.cuh"
#include "tile64_gemm.cuh"

namespace resnest {

namespace {

constexpr int kThreads = 128;
constexpr int kLdAB = kImplicitTileK + 8;  // a shared row of A or B: 40 halves (80 bytes, 16-byte aligned)
constexpr int kLdC = kImplicitTileN + 4;   // a shared row of the float tile
constexpr int kTileElems = kImplicitTileM * kImplicitTileN;
static_assert(kImplicitTileM == kSplitTileSide && kImplicitTileN == kSplitTileSide, "split_k_tile_sum's tile");
constexpr int kMaxSplits = 16;

struct StagedTiles {
    __half a[2][kImplicitTileM][kLdAB];  // A: rows m, the K step's columns
    __half b[2][kImplicitTileN][kLdAB];  // B transposed: rows o, the K step's columns (wmma col_major)
};
union SharedTiles {  // the float tile reuses the staging buffers once the K loop is done
    StagedTiles in;
    float c[kImplicitTileM][kLdC];
};

// grid (tiles_m, tiles_n, groups * splits). partial (splits, tiles, 64*64) float; arrivals (tiles) int;
// pool (N, s.pool_chunks(), s.pool_channels()) float where s.pool_radix > 0.
__global__ void __launch_bounds__(kThreads)
conv3x3_implicit_gemm_kernel(const __half* __restrict__ x, const __half* __restrict__ w,
                             const float* __restrict__ bias, __half* __restrict__ y, ImplicitConv3x3Shape s,
                             int splits, bool relu, float* __restrict__ partial, int* __restrict__ arrivals,
                             float* __restrict__ pool, bool prefetch) {
    using namespace nvcuda;
    __shared__ __align__(128) SharedTiles sh;
    __shared__ float column_sums[2][kImplicitTileN];  // the pool's: rows 0-31 and 32-63 of each column
    __shared__ int last_block;
    const int t = threadIdx.x, g = blockIdx.z / splits, split = blockIdx.z % splits;
    const long long row0 = s.tile_row0(blockIdx.x);
    const int rows = s.tile_rows(blockIdx.x);
    const int n0 = blockIdx.y * kImplicitTileN;
    int step_begin, step_end;
    s.split_range(split, splits, &step_begin, &step_end);
    // The first M tile's block of each (N tile, group, split) asks L2 for the filter all of them read.
    if (prefetch && blockIdx.x == 0) prefetch_l2_rows(w, s.b_slice(g, blockIdx.y, step_begin, step_end), t, kThreads);
    wait_for_producer_then_release_consumer();

    // A thread moves pieces v = t and t + 128 of each tile: row v / 4 (t / 4 and t / 4 + 32), halves
    // (v % 4) * 8 .. + 8 of the step; its two rows' window origins are found once, here.
    const ImplicitConv3x3Shape::RowOrigin origin[2] = {s.tile_row_origin(blockIdx.x, t / 4),
                                                       s.tile_row_origin(blockIdx.x, t / 4 + 32)};
    auto load_stage = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            const int v = t + i * kThreads, row = v / 4, piece = (v % 4) * 8, col = step * kImplicitTileK + piece;
            const long long a = s.a_offset(origin[i], g, col);
            copy16_async(&sh.in.a[stage][row][piece], a < 0 ? x : x + a, a >= 0);
            copy16_async(&sh.in.b[stage][row][piece], w + s.b_offset(g, col, n0 + row), true);
        }
    };

    const int warp = t / 32, wm = warp / 2, wn = warp % 2;  // the warp's 32x32 corner of the tile
    Tile64Accumulators acc;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    if (step_begin < step_end) load_stage(0, step_begin);
    copy_commit();
    for (int step = step_begin; step < step_end; step++) {
        const int cur = (step - step_begin) & 1;
        if (step + 1 < step_end) load_stage(cur ^ 1, step + 1);
        copy_commit();  // possibly empty: one group per iteration keeps the wait below exact
        copy_wait_all_but_newest();
        __syncthreads();
        tile64_warp_mma(acc, &sh.in.a[cur][0][0], &sh.in.b[cur][0][0], kLdAB, kImplicitTileK, wm, wn);
        __syncthreads();  // the stage is read before the next iteration loads over it
    }
    copy_wait_all();
    tile64_warp_store(&sh.c[0][0], kLdC, acc, wm, wn);
    __syncthreads();

    if (splits > 1) {
        const int tile = s.tile_index(g, blockIdx.y, blockIdx.x);
        if (!split_k_tile_sum(&sh.c[0][0], kLdC, partial + s.partial_offset(0, tile), s.partial_offset(1, 0), split,
                              splits, &arrivals[tile], &last_block))
            return;
    }

    // y: eight channels (16 bytes) a thread at a time, bias and ReLU applied; for the pool, each value as
    // written goes back to its place in the tile (only this thread reads or writes those eight).
    const bool pooled = s.pool_radix > 0;
    for (int v = t; v < kTileElems / 8; v += kThreads) {
        const int row = v / (kImplicitTileN / 8), col = (v % (kImplicitTileN / 8)) * 8;
        if (row >= rows) continue;
        __align__(16) __half out[8];
        for (int j = 0; j < 8; j++) {
            const float val = sh.c[row][col + j] + (bias ? bias[g * s.cout_g() + n0 + col + j] : 0.0f);
            out[j] = __float2half_rn(relu ? relu_keeping_nan(val) : val);
            if (pooled) sh.c[row][col + j] = __half2float(out[j]);
        }
        *(uint4*)&y[s.y_offset(g, row0 + row, n0 + col)] = *(const uint4*)out;
    }
    if (!pooled) return;
    // The pool partial of each of the tile's 64 channels: two threads a column, 32 rows each, in row order.
    __syncthreads();
    const int col = t % kImplicitTileN, half_rows = t / kImplicitTileN;
    float sum = 0.0f;
    for (int row = half_rows * 32; row < half_rows * 32 + 32 && row < rows; row++) sum += sh.c[row][col];
    column_sums[half_rows][col] = sum;
    __syncthreads();
    if (t < kImplicitTileN)
        pool[s.pool_offset(blockIdx.x, g * s.cout_g() + n0 + t)] = column_sums[0][t] + column_sums[1][t];
}

}  // namespace

const char* conv3x3_implicit_gemm_refusal(const ImplicitConv3x3Shape& s, const void* x, const void* w,
                                          const void* y) {
    if (!s.fits())
        return "needs channels a group in multiples of 32 (inputs) and 64 (outputs)";
    if (s.pool_radix > 0 && !s.pool_fits())
        return "the pool in the epilogue needs the output channels a radix split in multiples of 64";
    if (!aligned16(x) || !aligned16(w) || !aligned16(y)) return "needs 16-byte aligned x, w and y";
    return "";
}

size_t conv3x3_implicit_gemm_partial_bytes(const ImplicitConv3x3Shape& s, int splits) {
    return splits > 1 ? (size_t)splits * s.tiles() * kTileElems * sizeof(float) : 0;
}

void conv3x3_implicit_gemm(const __half* x, const __half* w, const float* bias, __half* y,
                           const ImplicitConv3x3Shape& s, int splits, bool relu, float* partial, int* arrivals,
                           float* pool, KernelStream stream) {
    const std::string refusal = conv3x3_implicit_gemm_refusal(s, x, w, y);
    if (!refusal.empty()) throw Error("conv3x3_implicit_gemm: " + refusal);
    if (splits < 1 || splits > kMaxSplits || splits > s.k_steps())
        throw Error("conv3x3_implicit_gemm: " + std::to_string(splits) + " splits of " + std::to_string(s.k_steps()) +
                    " K steps (1 to 16, at most one a step)");
    if (splits > 1 && (!partial || !arrivals))
        throw Error("conv3x3_implicit_gemm: a split launch needs its partial sums and arrival counts");
    if (splits > 1 && !aligned16(partial))  // read and written as float4
        throw Error("conv3x3_implicit_gemm: a split launch needs 16-byte aligned partial sums");
    if (s.pool_radix > 0 && !pool) throw Error("conv3x3_implicit_gemm: the pool in the epilogue needs its partials");
    const dim3 grid(s.tiles_m(), s.tiles_n(), s.groups * splits);
    launch_kernel("conv3x3_implicit_gemm", conv3x3_implicit_gemm_kernel, grid, kThreads, 0, stream, x, w, bias, y, s,
                  splits, relu, partial, arrivals, s.pool_radix > 0 ? pool : nullptr, stream.prefetch_weights);
}

}  // namespace resnest
