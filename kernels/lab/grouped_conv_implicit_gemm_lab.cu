// grouped_conv_implicit_gemm_lab.cu: lab for the split-attention 3x3 convolution (ResNeSt50's conv2:
// groups = radix = 2; the fast model's: groups 1) as ONE implicit-GEMM kernel, fp16 NHWC, float
// accumulation, bias and ReLU in its epilogue:
//   y (N, H, W, Cout) = relu( conv3x3(x (N, H, W, Cin), w (Cout, 3, 3, Cin/G)) + bias ),  stride 1, pad 1
// The question it answers: at batch 1 the runtime runs these 16 convolutions as an im2col gather plus a
// cuBLASLt matmul (16.5-23 us each in the 6ebbad4 profile, 0.31 ms of the forward pass), two kernels and a
// round trip of the im2col matrix through memory where one kernel could read x straight into shared memory.
// The index arithmetic (kernels/lab/implicit_conv3x3_geometry.h) is host-tested against the CPU reference.
//
//   cmake --build build --target lab_grouped_conv_implicit_gemm   # built on demand
//   build/kernels/lab/lab_grouped_conv_implicit_gemm              # on a GPU machine
//
// Ways, each timed as a CUDA graph replay of 20 launches (lab::time_graph_ms), the runtime's with the
// algorithm its timed choice would take (GemmConvLaunch::choose_algorithm, split-K forms included):
//   lt-dense   the runtime's im2col + cuBLASLt over the dense filter (runtime/cuda/cuda_gemm_conv.h)
//   lt-group   the runtime's group-major im2col + a strided batch of one cuBLASLt matmul per group
//   v1 sS      grouped_conv3x3_implicit_gemm_v1 with the K steps split S ways: a block of 128 threads
//              (4 warps of 32x32, wmma 16x16x16 half -> float) per 64x64 tile of (M, Cout/G) and split;
//              A and B in 16-byte cp.async pieces, two stages; the last block of a tile to finish adds the
//              splits' float partial sums in split order (deterministic) and writes y. The planned S
//              (implicit_conv3x3_splits: one wave of 132 SMs, at least 8 K steps a split) is marked "*".
// Correctness: 512 sampled outputs of every way against the double-precision CPU reference
// (lab::grouped_conv3x3_ref, unit-tested against the CPU oracle; bias and ReLU applied in double), relative
// to the largest |reference|, within 1e-2; outputs poisoned before each way's first run.
// Prediction (not yet measured): at batch 1, v1 at its planned split beats the faster lt way on every
// ResNeSt50 shape, by 4-10 us (one launch instead of two, no im2col matrix): layer 1 under 9 us, layer 4
// under 8 us. At batch 8 within 20 % of lt; at batch 32 lt wins on layers 1-2 (wmma's mma.sync at 64x64
// tiles reaches perhaps a third of what cuBLASLt's Hopper kernels do once the GPU is full).
//
// Numbers and the verdict are recorded at the bottom of this file once measured on a GPU.
#include <cublasLt.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "conv_algo_cache.h"
#include "cuda/cuda_gemm_conv.h"
#include "implicit_conv3x3_geometry.h"
#include "lab_reference.h"
#include "lab_util.cuh"

namespace {

using namespace nvcuda;

constexpr int kThreads = 128;
constexpr int kLdAB = lab::kTileK + 8;  // a shared row of A or B: 40 halves (80 bytes, 16-byte aligned)
constexpr int kLdC = lab::kTileN + 4;   // a shared row of the float tile
constexpr int kTileElems = lab::kTileM * lab::kTileN;

struct StagedTiles {
    __half a[2][lab::kTileM][kLdAB];  // A: rows m, K step's columns
    __half b[2][lab::kTileN][kLdAB];  // B transposed: rows o, K step's columns (wmma col_major)
};
union SharedTiles {  // the float tile reuses the staging buffers once the K loop is done
    StagedTiles in;
    float c[lab::kTileM][kLdC];
};

// 16 bytes global -> shared without a register round trip; zeros when !valid (the source is not read).
__device__ __forceinline__ void copy16_async(void* smem, const void* gmem, bool valid) {
    const unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void copy_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void copy_wait_all_but_newest() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void copy_wait_all() { asm volatile("cp.async.wait_all;\n" ::); }

// grid (tiles_m, tiles_n, groups * splits). partial: (splits, tiles, 64*64) float; arrivals: (tiles) int,
// zero before the first launch and left zero by every launch.
__global__ void __launch_bounds__(kThreads)
grouped_conv3x3_implicit_gemm_v1(const __half* __restrict__ x, const __half* __restrict__ w,
                                 const float* __restrict__ bias, __half* __restrict__ y, lab::ImplicitConv3x3 s,
                                 int splits, bool relu, float* __restrict__ partial, int* __restrict__ arrivals) {
    __shared__ __align__(128) SharedTiles sh;
    __shared__ int last_block;
    const int t = threadIdx.x, g = blockIdx.z / splits, split = blockIdx.z % splits;
    const long long m0 = (long long)blockIdx.x * lab::kTileM;
    const int n0 = blockIdx.y * lab::kTileN;
    int step_begin, step_end;
    s.split_range(split, splits, &step_begin, &step_end);

    // A thread moves pieces v = t and t + 128 of each tile: row v / 4 (t / 4 and t / 4 + 32), halves
    // (v % 4) * 8 .. + 8 of the step; its two rows' window origins are found once, here.
    const lab::ImplicitConv3x3::RowOrigin origin[2] = {s.row_origin(m0 + t / 4), s.row_origin(m0 + t / 4 + 32)};
    auto load_stage = [&](int stage, int step) {
        for (int i = 0; i < 2; i++) {
            const int v = t + i * kThreads, row = v / 4, piece = (v % 4) * 8, col = step * lab::kTileK + piece;
            const long long a = s.a_offset(origin[i], g, col);
            copy16_async(&sh.in.a[stage][row][piece], a < 0 ? x : x + a, a >= 0);
            copy16_async(&sh.in.b[stage][row][piece], w + s.b_offset(g, col, n0 + row), true);
        }
    };

    const int warp = t / 32, wm = warp / 2, wn = warp % 2;  // the warp's 32x32 corner of the tile
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
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
        for (int kk = 0; kk < lab::kTileK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(fa[i], &sh.in.a[cur][wm * 32 + i * 16][kk], kLdAB);
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(fb[j], &sh.in.b[cur][wn * 32 + j * 16][kk], kLdAB);
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
        }
        __syncthreads();  // the stage is read before the next iteration loads over it
    }
    copy_wait_all();
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(&sh.c[wm * 32 + i * 16][wn * 32 + j * 16], acc[i][j], kLdC, wmma::mem_row_major);
    __syncthreads();

    if (splits > 1) {
        const int tiles = s.groups * s.tiles_n() * s.tiles_m();
        const int tile = (g * s.tiles_n() + blockIdx.y) * s.tiles_m() + blockIdx.x;
        float* mine = partial + ((long long)split * tiles + tile) * kTileElems;
        for (int v = t; v < kTileElems / 4; v += kThreads) {
            const int row = v / (lab::kTileN / 4), col = (v % (lab::kTileN / 4)) * 4;
            *(float4*)&mine[row * lab::kTileN + col] = *(const float4*)&sh.c[row][col];
        }
        __threadfence();  // the partial is visible before the arrival is counted
        __syncthreads();
        if (t == 0) last_block = atomicAdd(&arrivals[tile], 1) == splits - 1;
        __syncthreads();
        if (!last_block) return;
        __threadfence();
        for (int v = t; v < kTileElems / 4; v += kThreads) {
            const int row = v / (lab::kTileN / 4), col = (v % (lab::kTileN / 4)) * 4;
            float4 sum = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            for (int q = 0; q < splits; q++) {  // split order, whichever block came last
                const float4 p = __ldcg((const float4*)&partial[((long long)q * tiles + tile) * kTileElems +
                                                                row * lab::kTileN + col]);
                sum.x += p.x, sum.y += p.y, sum.z += p.z, sum.w += p.w;
            }
            *(float4*)&sh.c[row][col] = sum;
        }
        if (t == 0) arrivals[tile] = 0;  // every split has arrived: ready for the next launch
        __syncthreads();
    }

    // y: eight channels (16 bytes) a thread at a time, bias and ReLU applied.
    for (int v = t; v < kTileElems / 8; v += kThreads) {
        const int row = v / (lab::kTileN / 8), col = (v % (lab::kTileN / 8)) * 8;
        const long long m = m0 + row;
        if (m >= s.m()) continue;
        __align__(16) __half out[8];
        for (int j = 0; j < 8; j++) {
            const float val = sh.c[row][col + j] + bias[g * s.cout_g() + n0 + col + j];
            out[j] = __float2half_rn(relu ? fmaxf(val, 0.0f) : val);
        }
        *(uint4*)&y[s.y_offset(g, m, n0 + col)] = *(const uint4*)out;
    }
}

struct Shape {
    const char* name;
    int h, w, cin, cout, groups;
};

}  // namespace

int main() {
    const Shape shapes[] = {{"layer1 56x56 64->128 g2", 56, 56, 64, 128, 2},
                            {"layer2 28x28 128->256 g2", 28, 28, 128, 256, 2},
                            {"layer3 14x14 256->512 g2", 14, 14, 256, 512, 2},
                            {"layer4 7x7 512->1024 g2", 7, 7, 512, 1024, 2},
                            {"fast layer1 56x56 64->64", 56, 56, 64, 64, 1},
                            {"fast layer4 7x7 512->512", 7, 7, 512, 512, 1}};
    cudaStream_t stream;
    LAB_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    cublasLtHandle_t lt;
    if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
        std::fprintf(stderr, "cublasLtCreate failed\n");
        return 1;
    }
    int sms = 0;
    LAB_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const size_t ws_bytes = 512ull << 20;  // the im2col matrix and the split partials
    void* ws;
    LAB_CHECK(cudaMalloc(&ws, ws_bytes));
    resnest::ConvAlgoCache cache("");
    std::mt19937 rng(std::random_device{}());
    bool all_ok = true;
    std::printf("%-26s %5s  %-9s %9s %9s  %s\n", "shape", "batch", "way", "ms", "TFLOP/s", "sampled rel err");
    for (int batch : {1, 8, 32})
        for (const Shape& sh : shapes) {
            const lab::ImplicitConv3x3 s{batch, sh.h, sh.w, sh.cin, sh.cout, sh.groups};
            if (!s.fits()) {
                std::printf("%-26s %5d  shape outside v1's tiles\n", sh.name, batch);
                continue;
            }
            const int cin_g = s.cin_g(), cout_g = s.cout_g();
            const std::vector<float> x = lab::random_half_values((size_t)(s.m() * s.cin), -1.0f, 1.0f);
            const float scale = 1.0f / std::sqrt(9.0f * cin_g);
            const std::vector<float> w = lab::random_half_values((size_t)s.cout * s.k(), -scale, scale);
            const std::vector<float> bias = lab::random_half_values((size_t)s.cout, -0.5f, 0.5f);
            std::vector<float> dense((size_t)s.cout * 9 * s.cin, 0.0f);  // (Cout, 3, 3, Cin), zeros off-group
            for (int o = 0; o < s.cout; o++)
                for (int k = 0; k < 9; k++)
                    for (int c = 0; c < cin_g; c++)
                        dense[((size_t)o * 9 + k) * s.cin + (size_t)(o / cout_g) * cin_g + c] =
                            w[((size_t)o * 9 + k) * cin_g + c];
            __half *dx = lab::upload_half(x), *dw = lab::upload_half(w), *dw_dense = lab::upload_half(dense);
            __half* dbias_h = lab::upload_half(bias);
            float* dbias = lab::upload_float(bias);
            __half* dy;
            const size_t ny = (size_t)(s.m() * s.cout);
            LAB_CHECK(cudaMalloc(&dy, ny * 2));
            const int tiles = s.groups * s.tiles_n() * s.tiles_m();
            int* arrivals;
            LAB_CHECK(cudaMalloc(&arrivals, tiles * sizeof(int)));
            LAB_CHECK(cudaMemset(arrivals, 0, tiles * sizeof(int)));

            // The sampled reference: relu(conv + bias) in double.
            std::vector<size_t> rows(512);
            std::vector<int> chans(512);
            std::vector<double> ref(512);
            for (size_t i = 0; i < ref.size(); i++) {
                rows[i] = (size_t)(rng() % (unsigned long long)s.m()), chans[i] = (int)(rng() % s.cout);
                const int n = (int)(rows[i] / (sh.h * sh.w)), oy = (int)(rows[i] / sh.w % sh.h), ox = (int)(rows[i] % sh.w);
                ref[i] = std::max(0.0, lab::grouped_conv3x3_ref(x, w, sh.h, sh.w, sh.cin, sh.cout, sh.groups, n, oy, ox,
                                                                chans[i]) + bias[chans[i]]);
            }
            // Poison y, run the way once, compare the samples, then time it.
            const double flops = 2.0 * s.m() * s.cout * s.k();
            float best_lt = INFINITY, best_v1 = INFINITY;
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
                std::printf("%-26s %5d  %-9s %9.4f %9.1f  %.2e %s\n", sh.name, batch, way, ms, flops / (ms * 1e9), err,
                            ok ? "ok" : "WRONG");
            };

            // The runtime's two im2col + cuBLASLt ways (bias and ReLU in cuBLASLt's epilogue).
            resnest::ConvProblem p;
            p.attrs.in_channels = s.cin, p.attrs.out_channels = s.cout, p.attrs.kernel_h = p.attrs.kernel_w = 3;
            p.attrs.pad_h = p.attrs.pad_w = 1, p.attrs.groups = s.groups, p.attrs.bias = true;
            p.batch = batch, p.in_h = p.out_h = sh.h, p.in_w = p.out_w = sh.w, p.relu = true;
            p.precision = resnest::Precision::fp16;
            for (bool group_major : {false, true}) {
                if (group_major && s.groups == 1) continue;
                resnest::ConvBuffers b{dx, group_major ? dw : dw_dense, dbias_h, dbias, nullptr, dy, ws, ws_bytes};
                resnest::GemmConvLaunch gemm;
                std::string why;
                bool from_cache = false;
                const char* way = group_major ? "lt-group" : "lt-dense";
                try {  // the runtime's classes throw resnest::Error: a way that fails is reported, not fatal
                    if (!gemm.describe(p, b, way, &why, true, group_major) ||
                        !gemm.choose_algorithm(lt, b, stream, cache, std::string(sh.name) + way + std::to_string(batch),
                                               &from_cache)) {
                        std::printf("%-26s %5d  %-9s (does not run: %s)\n", sh.name, batch, way, why.c_str());
                        continue;
                    }
                    check_and_time(way, [&] { gemm.launch(lt, b, stream); }, &best_lt);
                } catch (const std::exception& e) {
                    std::printf("%-26s %5d  %-9s WRONG: %s\n", sh.name, batch, way, e.what());
                    all_ok = false;
                }
            }
            // v1 at every split from 1 up, while the blocks stay within four waves and each split has a step.
            const int planned = lab::implicit_conv3x3_splits(s, sms);
            for (int splits = 1; splits <= 16 && splits <= s.k_steps(); splits *= 2) {
                if (splits > 1 && (long long)tiles * splits > 4ll * sms) break;
                if ((size_t)splits * tiles * kTileElems * sizeof(float) > ws_bytes) break;
                const dim3 grid(s.tiles_m(), s.tiles_n(), s.groups * splits);
                const std::string way = "v1 s" + std::to_string(splits) + (splits == planned ? "*" : "");
                check_and_time(way.c_str(), [&] {
                    grouped_conv3x3_implicit_gemm_v1<<<grid, kThreads, 0, stream>>>(dx, dw, dbias, dy, s, splits, true,
                                                                                   (float*)ws, arrivals);
                }, &best_v1);
            }
            std::printf("%-26s %5d  best v1 / best lt = %.4f / %.4f = %.2f\n", sh.name, batch, best_v1, best_lt,
                        best_v1 / best_lt);
            for (void* ptr : {(void*)dx, (void*)dw, (void*)dw_dense, (void*)dbias_h, (void*)dbias, (void*)dy, (void*)arrivals})
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
