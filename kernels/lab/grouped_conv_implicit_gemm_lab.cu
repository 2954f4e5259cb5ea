// grouped_conv_implicit_gemm_lab.cu: lab for the split-attention 3x3 convolution (ResNeSt50's conv2:
// groups = radix = 2; the fast model's: groups 1) as ONE implicit-GEMM kernel, fp16 NHWC, float
// accumulation, bias and ReLU in its epilogue:
//   y (N, H, W, Cout) = relu( conv3x3(x (N, H, W, Cin), w (Cout, 3, 3, Cin/G)) + bias ),  stride 1, pad 1
// The question it answers: at batch 1 the runtime runs these 16 convolutions as an im2col gather plus a
// cuBLASLt matmul (16.5-23 us each in the 6ebbad4 profile, 0.31 ms of the forward pass), two kernels and a
// round trip of the im2col matrix through memory where one kernel could read x straight into shared memory.
// The kernel is kernels/conv3x3_implicit_gemm.cu (its index arithmetic, conv3x3_implicit_gemm_geometry.h,
// host-tested against a direct convolution); the runtime times it as a convolution way only when asked
// (RESNEST_IMPLICIT_GEMM), until this lab has measured it.
//
//   cmake --build build --target lab_grouped_conv_implicit_gemm   # built on demand
//   build/kernels/lab/lab_grouped_conv_implicit_gemm              # on a GPU machine
//
// Ways, each timed as a CUDA graph replay of 20 launches (lab::time_graph_ms), the runtime's with the
// algorithm its timed choice would take (GemmConvLaunch::choose_algorithm, split-K forms included):
//   lt-dense   the runtime's im2col + cuBLASLt over the dense filter (runtime/cuda/cuda_gemm_conv.h)
//   lt-group   the runtime's group-major im2col + a strided batch of one cuBLASLt matmul per group
//   v1 sS      the production launcher (conv3x3_implicit_gemm) with the K steps split S ways: a block of
//              128 threads (4 warps of 32x32, wmma 16x16x16 half -> float) per 64x64 tile of (M, Cout/G) and split;
//              A and B in 16-byte cp.async pieces, two stages; the last block of a tile to finish adds the
//              splits' float partial sums in split order (deterministic) and writes y. The planned S
//              (conv3x3_implicit_gemm_splits: one wave of the card's SMs, at least 8 K steps a split) is
//              marked "*".
//   v1+pool    v1 at its planned split with split attention's pool in its epilogue (rows tiled image by
//              image; each tile's column sums of y as written into the (N, chunks, C) partials the gate
//              adds, C = Cout / R with R = 2, or 1 where a split would not be whole 64-channel tiles),
//              against
//   v1,pool    v1 at its planned split, then the runtime's pool kernel (split_attention_radix_sum_pool,
//              its planned chunks): what the runtime runs without the fusion. The partials of both, summed
//              over their chunks, must agree within 1e-4 of the largest.
// Correctness: 512 sampled outputs of every way against the double-precision CPU reference
// (lab::grouped_conv3x3_ref, unit-tested against the CPU oracle; bias and ReLU applied in double), relative
// to the largest |reference|, within 1e-2; outputs poisoned before each way's first run.
// Prediction (not yet measured): at batch 1, v1 at its planned split beats the faster lt way on every
// ResNeSt50 shape, by 4-10 us (one launch instead of two, no im2col matrix): layer 1 under 9 us, layer 4
// under 8 us. At batch 8 within 20 % of lt; at batch 32 lt wins on layers 1-2 (wmma's mma.sync at 64x64
// tiles reaches perhaps a third of what cuBLASLt's Hopper kernels do once the GPU is full). v1+pool beats
// v1,pool by 2-4 us at batch 1 (a launch and one read of U; the epilogue's column sums cost well under a
// microsecond), and v1+pool at batch 1 costs v1 within 5 %.
//
// Numbers and the verdict are recorded at the bottom of this file once measured on a GPU.
#include <cublasLt.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <random>
#include <string>
#include <vector>

#include "conv3x3_implicit_gemm.cuh"
#include "conv_algo_cache.h"
#include "cuda/cuda_gemm_conv.h"
#include "lab_reference.h"
#include "lab_matmul_setup.cuh"
#include "lab_util.cuh"
#include "split_attention_pool.cuh"

namespace {

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
    const lab::MatmulLabSetup setup(512ull << 20);  // the im2col matrix and the split partials
    cudaStream_t stream = setup.stream;
    cublasLtHandle_t lt = setup.lt;
    const int sms = setup.sms;
    void* ws = setup.ws;
    const size_t ws_bytes = setup.ws_bytes;
    resnest::ConvAlgoCache cache("");
    std::mt19937 rng(std::random_device{}());
    bool all_ok = true;
    std::printf("%-26s %5s  %-9s %9s %9s  %s\n", "shape", "batch", "way", "ms", "TFLOP/s", "sampled rel err");
    for (int batch : {1, 8, 32})
        for (const Shape& sh : shapes) {
            const resnest::ImplicitConv3x3Shape s{batch, sh.h, sh.w, sh.cin, sh.cout, sh.groups};
            if (!s.fits()) {
                std::printf("%-26s %5d  shape outside v1's tiles (channels a group: inputs by 32, outputs by 64)\n",
                            sh.name, batch);
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
            const int tiles = s.tiles();
            int* arrivals;
            LAB_CHECK(cudaMalloc(&arrivals, tiles * sizeof(int)));
            LAB_CHECK(cudaMemset(arrivals, 0, tiles * sizeof(int)));

            // The sampled reference: relu(conv + bias) in double.
            lab::SampledOutputs samples(s.m(), s.cout, rng);
            for (size_t i = 0; i < samples.ref.size(); i++) {
                const size_t row = samples.row[i];
                const int o = samples.chan[i], n = (int)(row / (sh.h * sh.w)), oy = (int)(row / sh.w % sh.h);
                const int ox = (int)(row % sh.w);
                const double c = lab::grouped_conv3x3_ref(x, w, sh.h, sh.w, sh.cin, sh.cout, sh.groups, n, oy, ox, o);
                samples.ref[i] = std::max(0.0, c + bias[o]);
            }
            // Poison y, run the way once, compare the samples, then time it.
            const double flops = 2.0 * s.m() * s.cout * s.k();
            float best_lt = INFINITY, best_v1 = INFINITY;
            auto check_and_time = [&](const char* way, auto launch, float* best) {
                all_ok &=
                    lab::check_and_time_half(samples, launch, dy, ny, stream, flops, 26, sh.name, batch, way, best);
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
            const int planned = resnest::conv3x3_implicit_gemm_splits(s, sms);
            for (int splits = 1; splits <= 16 && splits <= s.k_steps(); splits *= 2) {
                if (splits > 1 && (long long)tiles * splits > 4ll * sms) break;
                if (resnest::conv3x3_implicit_gemm_partial_bytes(s, splits) > ws_bytes) break;
                const std::string way = "v1 s" + std::to_string(splits) + (splits == planned ? "*" : "");
                check_and_time(way.c_str(), [&] {
                    resnest::conv3x3_implicit_gemm(dx, dw, dbias, dy, s, splits, true, (float*)ws, arrivals, nullptr,
                                                   stream);
                }, &best_v1);
            }
            std::printf("%-26s %5d  best v1 / best lt = %.4f / %.4f = %.2f\n", sh.name, batch, best_v1, best_lt,
                        best_v1 / best_lt);

            // The pool in the epilogue against v1 and the pool kernel after it, at the planned split.
            resnest::ImplicitConv3x3Shape pooled = s;
            pooled.pool_radix = 2;
            if (!pooled.pool_fits()) pooled.pool_radix = 1;
            const int radix = pooled.pool_radix, c = pooled.pool_channels();
            const int fused_splits = resnest::conv3x3_implicit_gemm_splits(pooled, sms);
            const int kernel_chunks = resnest::split_attention_pool_chunks_for<__half>(batch, sh.h * sh.w, c);
            const size_t fused_floats = (size_t)batch * pooled.pool_chunks() * c;
            const size_t kernel_floats = (size_t)batch * kernel_chunks * c;
            float *fused_pool, *kernel_pool;
            LAB_CHECK(cudaMalloc(&fused_pool, fused_floats * sizeof(float)));
            LAB_CHECK(cudaMalloc(&kernel_pool, kernel_floats * sizeof(float)));
            int* pooled_arrivals;
            LAB_CHECK(cudaMalloc(&pooled_arrivals, pooled.tiles() * sizeof(int)));
            LAB_CHECK(cudaMemset(pooled_arrivals, 0, pooled.tiles() * sizeof(int)));
            LAB_CHECK(cudaMemset(fused_pool, 0xFF, fused_floats * sizeof(float)));
            LAB_CHECK(cudaMemset(kernel_pool, 0xFF, kernel_floats * sizeof(float)));
            float fused_ms = INFINITY, apart_ms = INFINITY;
            check_and_time("v1+pool", [&] {
                resnest::conv3x3_implicit_gemm(dx, dw, dbias, dy, pooled, fused_splits, true, (float*)ws,
                                               pooled_arrivals, fused_pool, stream);
            }, &fused_ms);
            const resnest::RadixRows<__half> u = resnest::radix_rows_interleaved<__half>(dy, radix, c);
            check_and_time("v1,pool", [&] {
                resnest::conv3x3_implicit_gemm(dx, dw, dbias, dy, s, planned, true, (float*)ws, arrivals, nullptr,
                                               stream);
                resnest::split_attention_radix_sum_pool<__half>(u, kernel_pool, batch, sh.h * sh.w, radix, c,
                                                                kernel_chunks, stream);
            }, &apart_ms);
            // Both pools of the same y, summed over their chunks (float, in chunk order).
            auto chunk_sums = [&](const float* dev, size_t floats, int chunks) {
                std::vector<float> host(floats), sums((size_t)batch * c, 0.0f);
                LAB_CHECK(cudaMemcpy(host.data(), dev, floats * sizeof(float), cudaMemcpyDeviceToHost));
                for (int n = 0; n < batch; n++)
                    for (int k = 0; k < chunks; k++)
                        for (int ch = 0; ch < c; ch++)
                            sums[(size_t)n * c + ch] += host[((size_t)n * chunks + k) * c + ch];
                return sums;
            };
            const std::vector<float> fused = chunk_sums(fused_pool, fused_floats, pooled.pool_chunks());
            const std::vector<float> apart = chunk_sums(kernel_pool, kernel_floats, kernel_chunks);
            const double pools_err = lab::max_rel_error(fused, std::vector<double>(apart.begin(), apart.end()));
            const bool pools_agree = pools_err <= 1e-4;
            all_ok &= pools_agree;
            std::printf("%-26s %5d  v1+pool / v1,pool = %.4f / %.4f = %.2f (radix %d, %d and %d chunks; pools "
                        "%.1e apart %s)\n", sh.name, batch, fused_ms, apart_ms, fused_ms / apart_ms, radix,
                        pooled.pool_chunks(), kernel_chunks, pools_err, pools_agree ? "ok" : "WRONG");
            for (void* ptr : {(void*)fused_pool, (void*)kernel_pool, (void*)pooled_arrivals}) cudaFree(ptr);
            for (void* ptr : {(void*)dx, (void*)dw, (void*)dw_dense, (void*)dbias_h, (void*)dbias, (void*)dy,
                              (void*)arrivals})
                cudaFree(ptr);
        }
    std::printf("%s\n", all_ok ? "all ways correct" : "SOME WAYS WRONG");
    return all_ok ? 0 : 1;
}

// ---- results ---------------------------------------------------------------------------------------------
// Not yet measured.
