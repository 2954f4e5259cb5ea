// split_attention_combine_conv1x1.cu: split attention's weighted radix sum, and the avd pool where one
// follows it, folded into the 1x1 convolution after it (split_attention_combine_conv1x1.cuh). A block of 128
// threads computes one 64x64 tile of (N*HW, Cout) over one range of K steps: four warps of 32x32, each 2x2
// wmma 16x16x16 fragments (half in, float accumulators). Each K step of 32 channels, a thread forms 2 x 8
// values of a from R 16-byte loads of u (R per cell of its window when pooled) and the gates (read-only
// loads: the 64 rows of a tile share an image's gates), rounds them to half and stores them to shared memory.
// Unpooled, the u loads of the next step are issued before this step's MMAs and used after them (two shared
// stages); pooled, a window's loads (up to 9 a radix split) are not held across the MMAs but made as a is
// formed. W's tile comes by 16-byte cp.async, two stages. Split K as conv3x3_implicit_gemm.cu does: the last
// block of a tile adds the float partials in split order. Then bias, the residual and ReLU on the way out.
// Before it waits on the kernel before it, the block of the first M tile asks L2 for the rows of W that every
// M tile of its (N tile, split) reads (KernelStream::prefetch_weights).
#include "split_attention_combine_conv1x1.cuh"

#include <mma.h>

#include <cstdint>
#include <string>

#include "kernel_common.cuh"
#include "tile64_gemm.cuh"

namespace resnest {

namespace {

constexpr int kThreads = 128;
constexpr int kLdAB = kCombineTileK + 8;  // a shared row of A or B: 40 halves (80 bytes, 16-byte aligned)
constexpr int kLdC = kCombineTileN + 4;
constexpr int kTileElems = kCombineTileM * kCombineTileN;
static_assert(kCombineTileM == kSplitTileSide && kCombineTileN == kSplitTileSide, "split_k_tile_sum's tile");

struct StagedTiles {
    __half a[2][kCombineTileM][kLdAB];  // a: rows m, the K step's channels
    __half b[2][kCombineTileN][kLdAB];  // W: rows o, the K step's channels (wmma col_major B)
};
union SharedTiles {
    StagedTiles in;
    float c[kCombineTileM][kLdC];
};

// grid (tiles_m, tiles_n, splits). u (N, HW, R*C) (kAvgPool: (N, in_h*in_w, R*C)), attn (N, R*C) float or null,
// w (Cout, C), bias (Cout) float, z and y (N, HW, Cout); partial (splits, tiles, 64*64) float and arrivals
// (tiles) int where splits > 1.
template <bool kAvgPool>
__global__ void __launch_bounds__(kThreads)
split_attention_combine_conv1x1_kernel(const __half* __restrict__ u, const float* __restrict__ attn,
                                       const __half* __restrict__ w, const float* __restrict__ bias,
                                       const __half* __restrict__ z, __half* __restrict__ y, CombineConv1x1Shape s,
                                       int splits, bool relu, float* __restrict__ partial,
                                       int* __restrict__ arrivals, bool prefetch) {
    using namespace nvcuda;
    __shared__ __align__(128) SharedTiles sh;
    __shared__ int last_block;
    const int t = threadIdx.x, split = blockIdx.z;
    const long long m0 = (long long)blockIdx.x * kCombineTileM;
    const int n0 = blockIdx.y * kCombineTileN;
    int step_begin, step_end;
    s.split_range(split, splits, &step_begin, &step_end);
    // The first M tile's block of each (N tile, split) asks L2 for the rows of W all of them read.
    if (prefetch && blockIdx.x == 0) prefetch_l2_rows(w, s.w_slice(blockIdx.y, step_begin, step_end), t, kThreads);
    wait_for_producer_then_release_consumer();

    // A thread forms a's pieces v = t and t + 128: row v / 4 (t / 4 and t / 4 + 32), channels (t % 4) * 8
    // .. + 8 of the step; its rows' U and gate rows (pooled: its image's U and its window) are found once,
    // here (u_offset and attn_offset are sums of a row's part and a channel's part).
    const int piece = (t % 4) * 8;
    const __half* u_row[2];
    const float* attn_row[2];
    bool valid[2];
    int win[2][4] = {};  // kAvgPool: rows y0, y1 and columns x0, x1 of the window
    float inv_divisor[2] = {1.0f, 1.0f};
    for (int i = 0; i < 2; i++) {
        const long long m = m0 + t / 4 + 32 * i;
        valid[i] = m < s.m();
        const long long image = valid[i] ? m / s.hw : 0;
        attn_row[i] = attn ? attn + s.attn_offset(image, 0, piece) : nullptr;
        if constexpr (kAvgPool) {
            int divisor = 1;
            s.window(valid[i] ? m : 0, &win[i][0], &win[i][1], &win[i][2], &win[i][3], &divisor);
            inv_divisor[i] = 1.0f / (float)divisor;
            u_row[i] = u + s.u_offset(s.u_row(image, 0, 0), 0, piece);
        } else {
            u_row[i] = u + s.u_offset(valid[i] ? m : 0, 0, piece);
        }
    }
    uint4 held[2][kCombineMaxRadix];  // the next step's U pieces: loaded before this step's MMAs, used after them
    auto fetch_u = [&](int step) {
        if constexpr (!kAvgPool)
            for (int i = 0; i < 2; i++)
                for (int r = 0; r < kCombineMaxRadix; r++)
                    held[i][r] = valid[i] && r < s.radix
                                     ? __ldg((const uint4*)(u_row[i] + s.u_offset(0, r, step * kCombineTileK)))
                                     : make_uint4(0, 0, 0, 0);
    };
    // Radix split r of row i's piece at this step, pooled: the mean of its window's cells.
    auto window_mean = [&](int i, int r, int step, float* mean) {
        for (int j = 0; j < 8; j++) mean[j] = 0.0f;
        if (!valid[i]) return;
        float cell[8];
        for (int iy = win[i][0]; iy < win[i][1]; iy++)
            for (int ix = win[i][2]; ix < win[i][3]; ix++) {
                const __half* p = u_row[i] + s.u_offset(s.u_row(0, iy, ix), r, step * kCombineTileK);
                halves8_to_float(__ldg((const uint4*)p), cell);
                for (int j = 0; j < 8; j++) mean[j] += cell[j];
            }
        for (int j = 0; j < 8; j++) mean[j] *= inv_divisor[i];
    };
    auto store_a = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            float sum[8] = {}, uf[8], g[8];
            for (int r = 0; r < kCombineMaxRadix; r++) {
                if (r >= s.radix) break;
                if constexpr (kAvgPool)
                    window_mean(i, r, step, uf);
                else
                    halves8_to_float(held[i][r], uf);
                if (attn) {
                    const float* gp = attn_row[i] + s.attn_offset(0, r, step * kCombineTileK);
                    floats4_to_float(__ldg((const float4*)gp), g);
                    floats4_to_float(__ldg((const float4*)(gp + 4)), g + 4);
                } else {
                    for (int j = 0; j < 8; j++) g[j] = 1.0f;  // the average pool alone
                }
                for (int j = 0; j < 8; j++) sum[j] += g[j] * uf[j];
            }
            store16_from_float(&sh.in.a[stage][t / 4 + 32 * i][piece], sum);
        }
    };
    auto load_w = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            const int v = t + i * kThreads, row = v / 4, p = (v % 4) * 8;
            copy16_async(&sh.in.b[stage][row][p], w + s.w_offset(n0 + row, step * kCombineTileK + p), true);
        }
    };

    const int warp = t / 32, wm = warp / 2, wn = warp % 2;
    Tile64Accumulators acc;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.0f);
    if (step_begin < step_end) {
        fetch_u(step_begin);
        load_w(0, step_begin);
    }
    copy_commit();
    if (step_begin < step_end) store_a(0, step_begin);
    for (int step = step_begin; step < step_end; step++) {
        const int cur = (step - step_begin) & 1;
        const bool next = step + 1 < step_end;
        if (next) {
            fetch_u(step + 1);
            load_w(cur ^ 1, step + 1);
        }
        copy_commit();
        copy_wait_all_but_newest();
        __syncthreads();  // this stage's a (every thread's stores) and W are in shared memory
        tile64_warp_mma(acc, &sh.in.a[cur][0][0], &sh.in.b[cur][0][0], kLdAB, kCombineTileK, wm, wn);
        if (next) store_a(cur ^ 1, step + 1);  // the other stage: last read before the previous barrier
        __syncthreads();
    }
    copy_wait_all();
    tile64_warp_store(&sh.c[0][0], kLdC, acc, wm, wn);
    __syncthreads();

    if (splits > 1) {
        const int tile = s.tile_index(blockIdx.x, blockIdx.y);
        if (!split_k_tile_sum(&sh.c[0][0], kLdC, partial + s.partial_offset(0, tile), s.partial_offset(1, 0), split,
                              splits, &arrivals[tile], &last_block))
            return;
    }

    // y: eight channels a thread at a time, bias, residual and ReLU applied.
    for (int v = t; v < kTileElems / 8; v += kThreads) {
        const int row = v / (kCombineTileN / 8), col = (v % (kCombineTileN / 8)) * 8;
        const long long m = m0 + row;
        if (m >= s.m()) continue;
        float out[8], res[8] = {};
        if (z) halves8_to_float(__ldg((const uint4*)(z + s.y_offset(m, n0 + col))), res);
        for (int j = 0; j < 8; j++) {
            const float val = sh.c[row][col + j] + (bias ? bias[n0 + col + j] : 0.0f) + res[j];
            out[j] = relu ? relu_keeping_nan(val) : val;
        }
        store16_from_float(y + s.y_offset(m, n0 + col), out);
    }
}

}  // namespace

const char* split_attention_combine_conv1x1_refusal(const CombineConv1x1Shape& s, const void* u, const void* attn,
                                                    const void* w, const void* z, const void* y) {
    if (!s.fits())
        return "needs radix 1 or 2, C a multiple of 32, Cout a multiple of 64, and a pool (if any) whose windows "
               "each cover a cell of U";
    if (!aligned16(u) || !aligned16(attn) || !aligned16(w) || !aligned16(z) || !aligned16(y))
        return "needs 16-byte aligned u, attn, w, z and y";
    if (!attn && s.radix != 1) return "gates of one (attn null) need radix 1";
    return "";
}

size_t split_attention_combine_conv1x1_partial_bytes(const CombineConv1x1Shape& s, int splits) {
    return splits > 1 ? (size_t)splits * s.tiles() * kTileElems * sizeof(float) : 0;
}

void split_attention_combine_conv1x1(const __half* u, const float* attn, const __half* w, const float* bias,
                                     const __half* z, __half* y, const CombineConv1x1Shape& s, int splits, bool relu,
                                     float* partial, int* arrivals, KernelStream stream) {
    const std::string refusal = split_attention_combine_conv1x1_refusal(s, u, attn, w, z, y);
    if (!refusal.empty()) throw Error("split_attention_combine_conv1x1: " + refusal);
    if (splits < 1 || splits > kCombineMaxSplits || splits > s.k_steps())
        throw Error("split_attention_combine_conv1x1: " + std::to_string(splits) + " splits of " +
                    std::to_string(s.k_steps()) + " K steps (1 to 16, at most one a step)");
    if (splits > 1 && (!partial || !arrivals))
        throw Error("split_attention_combine_conv1x1: a split launch needs its partial sums and arrival counts");
    if (splits > 1 && !aligned16(partial))  // read and written as float4
        throw Error("split_attention_combine_conv1x1: a split launch needs 16-byte aligned partial sums");
    const dim3 grid(s.tiles_m(), s.tiles_n(), splits);
    if (s.pooled())
        launch_kernel("split_attention_combine_avg_pool_conv1x1", split_attention_combine_conv1x1_kernel<true>, grid,
                      kThreads, 0, stream, u, attn, w, bias, z, y, s, splits, relu, partial, arrivals,
                      stream.prefetch_weights);
    else
        launch_kernel("split_attention_combine_conv1x1", split_attention_combine_conv1x1_kernel<false>, grid, kThreads,
                      0, stream, u, attn, w, bias, z, y, s, splits, relu, partial, arrivals, stream.prefetch_weights);
}

}  // namespace resnest
