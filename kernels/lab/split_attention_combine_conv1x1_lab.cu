// split_attention_combine_conv1x1_lab.cu: lab for split attention's last step, the weighted radix sum,
// folded into the 1x1 convolution that reads it (conv3 of each ResNeSt bottleneck whose attention has no avd
// pool after it: 13 of ResNeSt50's 16 blocks), fp16 NHWC, float accumulation:
//   a (N, HW, C)    = half( sum_r attn[n, r*C + c] * U[n, p, r*C + c] )   (half: what the runtime stores)
//   y (N, HW, Cout) = relu( a W^T + bias + z )        W (Cout, C) as stored, z the residual (N, HW, Cout)
// The question it answers: at batch 1 each block ends with the combine kernel (split_attention_combine.cu)
// and then conv3's cuBLASLt matmul with bias, residual and ReLU in its epilogue: two launches and a round
// trip of a through memory (6ebbad4 profile, eager: split attention 0.268 ms over 16 blocks, conv3 0.223 ms)
// where one kernel can form a while it loads its A operand.
//
//   cmake --build build --target lab_split_attention_combine_conv1x1   # built on demand
//   build/kernels/lab/lab_split_attention_combine_conv1x1              # on a GPU machine
//
// Ways, each timed as a CUDA graph replay of 20 launches (lab::time_graph_ms):
//   apart      the runtime's: split_attention_weighted_sum into a, then conv3 as one cuBLASLt matmul with
//              bias, residual and ReLU fused (GemmConvLaunch, the algorithm its timed choice would take,
//              split-K forms included)
//   v1 sS      one kernel: a block of 128 threads (4 warps of 32x32, wmma 16x16x16 half -> float) per 64x64
//              tile of (N*HW, Cout) and K split. Each K step of 32 channels, a thread forms 2 x 8 values of
//              a from R 16-byte loads of U and the gates (read-only, cached: the 64 rows of a tile share an
//              image's), rounds them to half and stores them to shared memory; the loads for the next step
//              are issued before this step's MMAs and used after them (registers, two stages); W's tile
//              comes by 16-byte cp.async, two stages. The K split as kernels/conv3x3_implicit_gemm.cu's
//              (the last block of a tile adds the float partials in split order), then bias, the residual
//              and ReLU on the way out. Radix 1 or 2 (ResNeSt50: 2; the fast model: 1). The split plan
//              (v1_splits: one wave, at least 4 K steps a split) is marked "*".
// Correctness: 512 sampled outputs of every way against a double-precision reference (a rounded to half,
// as both ways store or stage it), relative to the largest |reference|, within 1e-2; outputs poisoned before
// each way's first run.
// Prediction (not yet measured): at batch 1 v1 at its planned split beats apart on every ResNeSt50 shape by
// 3-6 us (one launch and one round trip of a fewer; the MMAs are a few percent of either), so the 13 blocks
// would save 40-80 us of the batch-1 forward pass; at batch 8 within 15 % either way; at batch 32 apart wins
// on layers 1-2 (cuBLASLt's Hopper kernels against 64x64 wmma tiles once the GPU is full).
//
// Numbers and the verdict are recorded at the bottom of this file once measured on a GPU.
#include <cublasLt.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "conv_algo_cache.h"
#include "cuda/cuda_gemm_conv.h"
#include "kernel_common.cuh"
#include "lab_reference.h"
#include "lab_util.cuh"
#include "split_attention_combine.cuh"

namespace {

using resnest::floats4_to_float;
using resnest::halves8_to_float;
using resnest::store16_from_float;

constexpr int kTileM = 64, kTileN = 64, kTileK = 32, kThreads = 128, kMaxRadix = 2, kMaxSplits = 16;
constexpr int kLdAB = kTileK + 8;  // a shared row of A or B: 40 halves (80 bytes, 16-byte aligned)
constexpr int kLdC = kTileN + 4;
constexpr int kTileElems = kTileM * kTileN;

struct CombineConvShape {
    int n, hw, radix, c, cout;
    __host__ __device__ long long m() const { return (long long)n * hw; }
    __host__ __device__ int k_steps() const { return c / kTileK; }
    __host__ __device__ int tiles_m() const { return (int)((m() + kTileM - 1) / kTileM); }
    __host__ __device__ int tiles_n() const { return cout / kTileN; }
    __host__ __device__ int tiles() const { return tiles_m() * tiles_n(); }
};

struct StagedTiles {
    __half a[2][kTileM][kLdAB];  // a: rows m, the K step's channels
    __half b[2][kTileN][kLdAB];  // W: rows o, the K step's channels (wmma col_major B)
};
union SharedTiles {
    StagedTiles in;
    float c[kTileM][kLdC];
};

__device__ __forceinline__ void copy16_async(void* smem, const void* gmem) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void copy_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void copy_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }

// grid (tiles_m, tiles_n, splits). u (N, HW, R*C), attn (N, R*C) float, w (Cout, C), bias (Cout) float,
// z and y (N, HW, Cout); partial (splits, tiles, 64*64) float and arrivals (tiles) int where splits > 1.
__global__ void __launch_bounds__(kThreads)
combine_conv1x1_v1(const __half* __restrict__ u, const float* __restrict__ attn, const __half* __restrict__ w,
                   const float* __restrict__ bias, const __half* __restrict__ z, __half* __restrict__ y,
                   CombineConvShape s, int splits, bool relu, float* __restrict__ partial,
                   int* __restrict__ arrivals) {
    using namespace nvcuda;
    __shared__ __align__(128) SharedTiles sh;
    __shared__ int last_block;
    const int t = threadIdx.x, split = blockIdx.z, rc = s.radix * s.c;
    const long long m0 = (long long)blockIdx.x * kTileM;
    const int n0 = blockIdx.y * kTileN;
    const int step_begin = (int)((long long)s.k_steps() * split / splits);
    const int step_end = (int)((long long)s.k_steps() * (split + 1) / splits);

    // A thread forms a's pieces v = t and t + 128: row v / 4 (t / 4 and t / 4 + 32), channels (t % 4) * 8
    // .. + 8 of the step; its rows' U and gate rows are found once, here.
    const int piece = (t % 4) * 8;
    const __half* u_row[2];
    const float* attn_row[2];
    bool valid[2];
    for (int i = 0; i < 2; i++) {
        const long long m = m0 + t / 4 + 32 * i;
        valid[i] = m < s.m();
        u_row[i] = u + (valid[i] ? m : 0) * rc + piece;
        attn_row[i] = attn + (valid[i] ? m / s.hw : 0) * rc + piece;
    }
    uint4 held[2][kMaxRadix];  // the next step's U pieces: loaded before this step's MMAs, used after them
    auto fetch_u = [&](int step) {
        for (int i = 0; i < 2; i++)
            for (int r = 0; r < kMaxRadix; r++)
                held[i][r] = valid[i] && r < s.radix ? __ldg((const uint4*)(u_row[i] + r * s.c + step * kTileK))
                                                     : make_uint4(0, 0, 0, 0);
    };
    auto store_a = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            float sum[8] = {}, uf[8], g[8];
            for (int r = 0; r < kMaxRadix; r++) {
                if (r >= s.radix) break;
                halves8_to_float(held[i][r], uf);
                const float* gp = attn_row[i] + r * s.c + step * kTileK;
                floats4_to_float(__ldg((const float4*)gp), g);
                floats4_to_float(__ldg((const float4*)(gp + 4)), g + 4);
                for (int j = 0; j < 8; j++) sum[j] += g[j] * uf[j];
            }
            store16_from_float(&sh.in.a[stage][t / 4 + 32 * i][piece], sum);
        }
    };
    auto load_w = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            const int v = t + i * kThreads, row = v / 4, p = (v % 4) * 8;
            copy16_async(&sh.in.b[stage][row][p], w + (long long)(n0 + row) * s.c + step * kTileK + p);
        }
    };

    const int warp = t / 32, wm = warp / 2, wn = warp % 2;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
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
        for (int kk = 0; kk < kTileK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &sh.in.a[cur][wm * 32 + i * 16][kk], kLdAB);
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &sh.in.b[cur][wn * 32 + j * 16][kk], kLdAB);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        if (next) store_a(cur ^ 1, step + 1);  // the other stage: last read before the previous barrier
        __syncthreads();
    }
    copy_wait_all();
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sh.c[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], kLdC, wmma::mem_row_major);
    __syncthreads();

    if (splits > 1) {
        const int tile = blockIdx.y * s.tiles_m() + blockIdx.x;
        float* mine = partial + ((long long)split * s.tiles() + tile) * kTileElems;
        for (int v = t; v < kTileElems / 4; v += kThreads) {
            const int row = v / (kTileN / 4), col = (v % (kTileN / 4)) * 4;
            *(float4*)&mine[row * kTileN + col] = *(const float4*)&sh.c[row][col];
        }
        __threadfence();
        __syncthreads();
        if (t == 0) last_block = atomicAdd(&arrivals[tile], 1) == splits - 1;
        __syncthreads();
        if (!last_block) return;
        __threadfence();
        for (int v = t; v < kTileElems / 4; v += kThreads) {
            const int row = v / (kTileN / 4), col = (v % (kTileN / 4)) * 4;
            float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int q = 0; q < splits; q++) {  // split order
                const float4 p = __ldcg((const float4*)&partial[((long long)q * s.tiles() + tile) * kTileElems +
                                                               row * kTileN + col]);
                sum.x += p.x, sum.y += p.y, sum.z += p.z, sum.w += p.w;
            }
            *(float4*)&sh.c[row][col] = sum;
        }
        if (t == 0) arrivals[tile] = 0;
        __syncthreads();
    }

    // y: eight channels a thread at a time, bias, residual and ReLU applied.
    for (int v = t; v < kTileElems / 8; v += kThreads) {
        const int row = v / (kTileN / 8), col = (v % (kTileN / 8)) * 8;
        const long long m = m0 + row;
        if (m >= s.m()) continue;
        float out[8], res[8] = {};
        if (z) halves8_to_float(__ldg((const uint4*)(z + m * s.cout + n0 + col)), res);
        for (int j = 0; j < 8; j++) {
            const float val = sh.c[row][col + j] + (bias ? bias[n0 + col + j] : 0.0f) + res[j];
            out[j] = relu ? fmaxf(val, 0.0f) : val;
        }
        store16_from_float(y + m * s.cout + n0 + col, out);
    }
}

// The split count: the largest power of two up to 16 whose blocks stay within one wave of `sms` and leave
// each split at least 4 K steps (K is C / 32: 2 to 16 steps on ResNeSt50's shapes).
int v1_splits(const CombineConvShape& s, int sms) {
    int splits = 1;
    while (splits < kMaxSplits && (long long)s.tiles() * splits * 2 <= sms && s.k_steps() / (splits * 2) >= 4)
        splits *= 2;
    return splits;
}

void launch_v1(const __half* u, const float* attn, const __half* w, const float* bias, const __half* z, __half* y,
               const CombineConvShape& s, int splits, bool relu, float* partial, int* arrivals, cudaStream_t stream) {
    if (s.radix < 1 || s.radix > kMaxRadix || s.c % kTileK || s.cout % kTileN || splits < 1 || splits > s.k_steps()) {
        std::fprintf(stderr, "combine_conv1x1_v1: shape or split count outside the kernel\n");
        std::exit(1);
    }
    combine_conv1x1_v1<<<dim3(s.tiles_m(), s.tiles_n(), splits), kThreads, 0, stream>>>(u, attn, w, bias, z, y, s,
                                                                                        splits, relu, partial,
                                                                                        arrivals);
}

struct Shape {
    const char* name;
    int h, w, radix, c, cout;
};

}  // namespace

int main() {
    const Shape shapes[] = {{"layer1 56x56 R2 64->256", 56, 56, 2, 64, 256},
                            {"layer2 28x28 R2 128->512", 28, 28, 2, 128, 512},
                            {"layer3 14x14 R2 256->1024", 14, 14, 2, 256, 1024},
                            {"layer4 7x7 R2 512->2048", 7, 7, 2, 512, 2048},
                            {"fast layer1 56x56 R1 64->256", 56, 56, 1, 64, 256},
                            {"fast layer4 7x7 R1 512->2048", 7, 7, 1, 512, 2048}};
    cudaStream_t stream;
    LAB_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "cublasLtCreate failed\n");
        return 1;
    }
    int sms = 0;
    LAB_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const size_t ws_bytes = 128ull << 20;  // the runtime's fp16 workspace; the split partials
    void* ws;
    LAB_CHECK(cudaMalloc(&ws, ws_bytes));
    resnest::ConvAlgoCache cache("");
    std::mt19937 rng(std::random_device{}());
    bool all_ok = true;
    std::printf("%-29s %5s  %-9s %9s %9s  %s\n", "shape", "batch", "way", "ms", "TFLOP/s", "sampled rel err");
    for (int batch : {1, 8, 32})
        for (const Shape& sh : shapes) {
            const CombineConvShape s{batch, sh.h * sh.w, sh.radix, sh.c, sh.cout};
            const int rc = s.radix * s.c;
            const std::vector<float> u = lab::random_half_values((size_t)(s.m() * rc), -1.0f, 1.0f);
            const std::vector<float> attn = lab::random_half_values((size_t)batch * rc, 0.0f, 1.0f);
            const float scale = 1.0f / std::sqrt((float)s.c);
            const std::vector<float> w = lab::random_half_values((size_t)s.cout * s.c, -scale, scale);
            const std::vector<float> bias = lab::random_half_values((size_t)s.cout, -0.5f, 0.5f);
            const std::vector<float> z = lab::random_half_values((size_t)(s.m() * s.cout), -1.0f, 1.0f);
            __half *du = lab::upload_half(u), *dw = lab::upload_half(w), *dz = lab::upload_half(z);
            __half* dbias_h = lab::upload_half(bias);
            float *dattn = lab::upload_float(attn), *dbias = lab::upload_float(bias);
            __half *da, *dy;
            const size_t ny = (size_t)(s.m() * s.cout);
            LAB_CHECK(cudaMalloc(&da, (size_t)(s.m() * s.c) * 2));
            LAB_CHECK(cudaMalloc(&dy, ny * 2));
            int* arrivals;
            LAB_CHECK(cudaMalloc(&arrivals, s.tiles() * sizeof(int)));
            LAB_CHECK(cudaMemset(arrivals, 0, s.tiles() * sizeof(int)));

            // The sampled reference in double (lab_reference.h's, unit-tested against the CPU oracle), a
            // rounded to half as both ways hold it.
            const std::vector<double> a_ref = lab::split_attention_combine_ref(u, attn, batch, s.hw, s.radix, s.c);
            std::vector<float> a_half(a_ref.size());
            for (size_t i = 0; i < a_ref.size(); i++) a_half[i] = __half2float(__float2half((float)a_ref[i]));
            std::vector<size_t> rows(512);
            std::vector<int> chans(512);
            std::vector<double> ref(512);
            for (size_t i = 0; i < ref.size(); i++) {
                rows[i] = (size_t)(rng() % (unsigned long long)s.m()), chans[i] = (int)(rng() % s.cout);
                ref[i] = std::max(0.0, lab::conv1x1_ref(a_half, w, s.c, rows[i], chans[i]) + bias[chans[i]] +
                                           z[rows[i] * s.cout + chans[i]]);
            }
            const double flops = 2.0 * s.m() * s.cout * s.c + 2.0 * s.m() * rc;
            float best_apart = INFINITY, best_v1 = INFINITY;
            auto check_and_time = [&](const char* way, auto launch, float* best) {
                LAB_CHECK(cudaMemsetAsync(dy, 0xFF, ny * 2, stream));
                launch();
                LAB_CHECK(cudaGetLastError());
                LAB_CHECK(cudaStreamSynchronize(stream));
                const std::vector<float> got = lab::download_half(dy, ny);
                double diff = 0.0, big = 0.0;
                for (size_t i = 0; i < ref.size(); i++) {
                    const double v = got[rows[i] * s.cout + chans[i]];
                    diff = std::isfinite(v) ? std::max(diff, std::fabs(v - ref[i])) : INFINITY;
                    big = std::max(big, std::fabs(ref[i]));
                }
                const double err = diff / big;
                const float ms = lab::time_graph_ms(launch, stream, 20);
                const bool ok = err <= 1e-2;
                all_ok &= ok;
                *best = std::min(*best, ms);
                std::printf("%-29s %5d  %-9s %9.4f %9.1f  %.2e %s\n", sh.name, batch, way, ms, flops / (ms * 1e9), err,
                            ok ? "ok" : "WRONG");
            };

            // The runtime's way: the combine kernel, then conv3 on cuBLASLt (bias, residual, ReLU fused).
            {
                resnest::ConvProblem p;
                p.attrs.in_channels = s.c, p.attrs.out_channels = s.cout, p.attrs.kernel_h = p.attrs.kernel_w = 1;
                p.attrs.bias = true;
                p.batch = batch, p.in_h = p.out_h = sh.h, p.in_w = p.out_w = sh.w, p.relu = true, p.has_z = true;
                p.precision = resnest::Precision::fp16;
                resnest::ConvBuffers b{da, dw, dbias_h, dbias, dz, dy, ws, ws_bytes};
                resnest::GemmConvLaunch gemm;
                std::string why;
                bool from_cache = false;
                const resnest::RadixRows<__half> rows_u = resnest::radix_rows_interleaved<__half>(du, s.radix, s.c);
                try {
                    if (!gemm.describe(p, b, "apart", &why, false, false) ||
                        !gemm.choose_algorithm(lt, b, stream, cache, std::string(sh.name) + std::to_string(batch),
                                               &from_cache)) {
                        std::printf("%-29s %5d  apart     (does not run: %s)\n", sh.name, batch, why.c_str());
                    } else {
                        check_and_time("apart", [&] {
                            resnest::split_attention_weighted_sum<__half>(rows_u, dattn, da, batch, s.hw, s.radix, s.c,
                                                                          stream);
                            gemm.launch(lt, b, stream);
                        }, &best_apart);
                    }
                } catch (const std::exception& e) {
                    std::printf("%-29s %5d  apart     WRONG: %s\n", sh.name, batch, e.what());
                    all_ok = false;
                }
            }
            // v1 at every split from 1 up, while the blocks stay within four waves and each split has a step.
            const int planned = v1_splits(s, sms);
            for (int splits = 1; splits <= kMaxSplits && splits <= s.k_steps(); splits *= 2) {
                if (splits > 1 && (long long)s.tiles() * splits > 4ll * sms) break;
                if ((size_t)splits * s.tiles() * kTileElems * sizeof(float) > ws_bytes) break;
                const std::string way = "v1 s" + std::to_string(splits) + (splits == planned ? "*" : "");
                check_and_time(way.c_str(), [&] {
                    launch_v1(du, dattn, dw, dbias, dz, dy, s, splits, true, (float*)ws, arrivals, stream);
                }, &best_v1);
            }
            std::printf("%-29s %5d  best v1 / apart = %.4f / %.4f = %.2f\n", sh.name, batch, best_v1, best_apart,
                        best_v1 / best_apart);
            for (void* ptr : {(void*)du, (void*)dw, (void*)dz, (void*)dbias_h, (void*)dattn, (void*)dbias, (void*)da,
                              (void*)dy, (void*)arrivals})
                cudaFree(ptr);
        }
    cudaFree(ws);
    cublasLtDestroy(lt);
    cudaStreamDestroy(stream);
    std::printf("%s\n", all_ok ? "all ways correct" : "SOME WAYS WRONG");
    return all_ok ? 0 : 1;
}

// ---- results ---------------------------------------------------------------------------------------------
// Not yet measured.
