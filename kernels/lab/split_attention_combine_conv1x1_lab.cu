// split_attention_combine_conv1x1_lab.cu: lab for split attention's last step, the weighted radix sum (and
// the avd pool after it, in the first block of ResNeSt50's layers 2-4), folded into the 1x1 convolution that
// reads it (conv3 of each ResNeSt bottleneck), fp16 NHWC, float accumulation:
//   a (N, HW, C)    = half( sum_r attn[n, r*C + c] * U[n, p, r*C + c] )   (half: what the runtime stores)
//                     avd: half( sum_r attn * mean of U_r over the 3x3 / 2 window of p ), U twice the size
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
//   apart      the runtime's: split_attention_weighted_sum (_avg_pool; for the downsample rows avg_pool2d_nhwc;
//              for the conv1 rows nothing) into a, then conv3 (the downsample convolution, conv1) as one
//              cuBLASLt matmul with bias, residual and ReLU fused (GemmConvLaunch, the algorithm its timed
//              choice would take, split-K forms included)
//   v1 sS      the production launcher (kernels/split_attention_combine_conv1x1.cu), one kernel: a block
//              of 128 threads (4 warps of 32x32, wmma 16x16x16 half -> float) per 64x64 tile of
//              (N*HW, Cout) and K split. Each K step of 32 channels, a thread forms 2 x 8 values of
//              a from R 16-byte loads of U and the gates (read-only, cached: the 64 rows of a tile share an
//              image's), rounds them to half and stores them to shared memory; the loads for the next step
//              are issued before this step's MMAs and used after them (registers, two stages); W's tile
//              comes by 16-byte cp.async, two stages. The K split as kernels/conv3x3_implicit_gemm.cu's
//              (the last block of a tile adds the float partials in split order), then bias, the residual
//              and ReLU on the way out. Radix 1 or 2 (ResNeSt50: 2; the fast model: 1). With the avd pool
//              (the kernel's second instantiation, 128 registers; the first 98) a window's 9 x R loads are made as a is
//              formed, not held across the MMAs. The split plan
//              (split_attention_combine_conv1x1_splits: one wave, at least 4 K steps a split) is marked "*".
// Correctness: 512 sampled outputs of every way against a double-precision reference (a rounded to half,
// as both ways store or stage it), relative to the largest |reference|, within 1e-2; outputs poisoned before
// each way's first run.
// Prediction (not yet measured): at batch 1 v1 at its planned split beats apart on every ResNeSt50 shape by
// 3-6 us (one launch and one round trip of a fewer; the MMAs are a few percent of either), so the 13 blocks
// would save 40-80 us of the batch-1 forward pass; at batch 8 within 15 % either way; at batch 32 apart wins
// on layers 1-2 (cuBLASLt's Hopper kernels against 64x64 wmma tiles once the GPU is full). The avd blocks:
// v1 ahead by 3-6 us at batch 1 as well (the pooled a's loads hit L2: U is 0.4-1.6 MB), behind at 32. The
// downsample rows (the same kernel with no gates: the pool, then the block's shortcut convolution): ahead by
// 2-5 us at batch 1, behind from batch 8 on layer 2 (its 4 cells a value, read 4 times from L2). The conv1
// rows (neither gates nor pool: the runtime's wmma 1x1 way, "apart" being cuBLASLt alone): ahead by 1-3 us
// at batch 1 on layers 3-4 (cuBLASLt's kernel is launch- and latency-bound there), even on layers 1-2,
// behind from batch 8.
//
// Numbers and the verdict are recorded at the bottom of this file once measured on a GPU.
#include <cublasLt.h>

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
#include "lab_reference.h"
#include "lab_matmul_setup.cuh"
#include "lab_util.cuh"
#include "pool2d_nhwc.cuh"
#include "split_attention_combine.cuh"
#include "split_attention_combine_conv1x1.cuh"

namespace {

struct Shape {
    const char* name;
    int h, w, radix, c, cout;  // h, w: U's
    // The average pool before the convolution (valid cells only, as the committed models' Paddle graphs):
    // 0 none, 3 the avd pool after attention (3x3 / 2, pad 1), 2 the downsample path's (2x2 / 2, no gates);
    // -1 neither pool nor gates: the plain 1x1 convolution (the runtime's wmma 1x1 way against cuBLASLt).
    int pool_k;
};

}  // namespace

int main() {
    const Shape shapes[] = {{"layer1 56x56 R2 64->256", 56, 56, 2, 64, 256},
                            {"layer2 28x28 R2 128->512", 28, 28, 2, 128, 512},
                            {"layer3 14x14 R2 256->1024", 14, 14, 2, 256, 1024},
                            {"layer4 7x7 R2 512->2048", 7, 7, 2, 512, 2048},
                            {"fast layer1 56x56 R1 64->256", 56, 56, 1, 64, 256},
                            {"fast layer4 7x7 R1 512->2048", 7, 7, 1, 512, 2048},
                            {"layer2.0 avd 56x56 R2 128->512", 56, 56, 2, 128, 512, 3},
                            {"layer3.0 avd 28x28 R2 256->1024", 28, 28, 2, 256, 1024, 3},
                            {"layer4.0 avd 14x14 R2 512->2048", 14, 14, 2, 512, 2048, 3},
                            {"layer2.0 downsample 56x56 256->512", 56, 56, 1, 256, 512, 2},
                            {"layer3.0 downsample 28x28 512->1024", 28, 28, 1, 512, 1024, 2},
                            {"layer4.0 downsample 14x14 1024->2048", 14, 14, 1, 1024, 2048, 2},
                            {"layer1 conv1 56x56 256->64", 56, 56, 1, 256, 64, -1},
                            {"layer2 conv1 28x28 512->128", 28, 28, 1, 512, 128, -1},
                            {"layer3 conv1 14x14 1024->256", 14, 14, 1, 1024, 256, -1},
                            {"layer4 conv1 7x7 2048->512", 7, 7, 1, 2048, 512, -1}};
    const lab::MatmulLabSetup setup(128ull << 20);  // the runtime's fp16 workspace; the split partials
    cudaStream_t stream = setup.stream;
    cublasLtHandle_t lt = setup.lt;
    const int sms = setup.sms;
    void* ws = setup.ws;
    const size_t ws_bytes = setup.ws_bytes;
    resnest::ConvAlgoCache cache("");
    std::mt19937 rng(std::random_device{}());
    bool all_ok = true;
    std::printf("%-37s %5s  %-9s %9s %9s  %s\n", "shape", "batch", "way", "ms", "TFLOP/s", "sampled rel err");
    for (int batch : {1, 8, 32})
        for (const Shape& sh : shapes) {
            const bool pooled = sh.pool_k > 0, gated = sh.pool_k == 0 || sh.pool_k == 3;
            const int oh = pooled ? (sh.h + 1) / 2 : sh.h, ow = pooled ? (sh.w + 1) / 2 : sh.w;
            const int pad = sh.pool_k == 3 ? 1 : 0;
            resnest::CombineConv1x1Shape s{batch, oh * ow, sh.radix, sh.c, sh.cout};
            if (pooled) s.pool = {sh.pool_k, 2, pad, false, sh.h, sh.w, ow};
            const lab::PoolGeometry pool{sh.h, sh.w, sh.pool_k, 2, pad, false, oh, ow};
            const int rc = s.radix * s.c;
            const std::vector<float> u =
                lab::random_half_values((size_t)batch * s.u_positions() * rc, -1.0f, 1.0f);
            const std::vector<float> attn = gated ? lab::random_half_values((size_t)batch * rc, 0.0f, 1.0f)
                                                  : std::vector<float>((size_t)batch * rc, 1.0f);
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
            const std::vector<double> a_ref =
                pooled ? lab::split_attention_combine_avg_pool_ref(u, attn, batch, s.radix, s.c, pool)
                       : lab::split_attention_combine_ref(u, attn, batch, s.hw, s.radix, s.c);
            std::vector<float> a_half(a_ref.size());
            for (size_t i = 0; i < a_ref.size(); i++) a_half[i] = __half2float(__float2half((float)a_ref[i]));
            lab::SampledOutputs samples(s.m(), s.cout, rng);
            for (size_t i = 0; i < samples.ref.size(); i++) {
                const size_t row = samples.row[i];
                const int o = samples.chan[i];
                samples.ref[i] =
                    std::max(0.0, lab::conv1x1_ref(a_half, w, s.c, row, o) + bias[o] + z[row * s.cout + o]);
            }
            const double flops = 2.0 * s.m() * s.cout * s.c + 2.0 * batch * s.u_positions() * rc;
            float best_apart = INFINITY, best_v1 = INFINITY;
            auto check_and_time = [&](const char* way, auto launch, float* best) {
                all_ok &=
                    lab::check_and_time_half(samples, launch, dy, ny, stream, flops, 37, sh.name, batch, way, best);
            };

            // The runtime's way: the combine kernel, then conv3 on cuBLASLt (bias, residual, ReLU fused).
            {
                resnest::ConvProblem p;
                p.attrs.in_channels = s.c, p.attrs.out_channels = s.cout, p.attrs.kernel_h = p.attrs.kernel_w = 1;
                p.attrs.bias = true;
                p.batch = batch, p.in_h = p.out_h = oh, p.in_w = p.out_w = ow, p.relu = true, p.has_z = true;
                p.precision = resnest::Precision::fp16;
                resnest::ConvBuffers b{pooled || gated ? da : du, dw, dbias_h, dbias, dz, dy, ws, ws_bytes};
                resnest::GemmConvLaunch gemm;
                std::string why;
                bool from_cache = false;
                const resnest::RadixRows<__half> rows_u = resnest::radix_rows_interleaved<__half>(du, s.radix, s.c);
                try {
                    if (!gemm.describe(p, b, "apart", &why, false, false) ||
                        !gemm.choose_algorithm(lt, b, stream, cache, std::string(sh.name) + std::to_string(batch),
                                               &from_cache)) {
                        std::printf("%-37s %5d  apart     (does not run: %s)\n", sh.name, batch, why.c_str());
                    } else {
                        const int k = sh.pool_k;
                        const resnest::Pool2dShape ps{batch, sh.h, sh.w, s.c, oh, ow, k, k, 2, 2, pad, pad, false};
                        check_and_time(pooled || gated ? "apart" : "cuBLASLt", [&] {
                            if (!gated && pooled)
                                resnest::avg_pool2d_nhwc<__half>(du, da, ps, stream);
                            else if (pooled)
                                resnest::split_attention_weighted_sum_avg_pool<__half>(rows_u, dattn, da, s.radix, ps,
                                                                                       stream);
                            else if (gated)
                                resnest::split_attention_weighted_sum<__half>(rows_u, dattn, da, batch, s.hw, s.radix,
                                                                              s.c, stream);
                            gemm.launch(lt, b, stream);
                        }, &best_apart);
                    }
                } catch (const std::exception& e) {
                    std::printf("%-37s %5d  apart     WRONG: %s\n", sh.name, batch, e.what());
                    all_ok = false;
                }
            }
            // v1 at every split from 1 up, while the blocks stay within four waves and each split has a step.
            const int planned = resnest::split_attention_combine_conv1x1_splits(s, sms);
            for (int splits = 1; splits <= resnest::kCombineMaxSplits && splits <= s.k_steps(); splits *= 2) {
                if (splits > 1 && (long long)s.tiles() * splits > 4ll * sms) break;
                if (resnest::split_attention_combine_conv1x1_partial_bytes(s, splits) > ws_bytes) break;
                const std::string way = "v1 s" + std::to_string(splits) + (splits == planned ? "*" : "");
                check_and_time(way.c_str(), [&] {
                    resnest::split_attention_combine_conv1x1(du, gated ? dattn : nullptr, dw, dbias, dz, dy, s, splits,
                                                             true, (float*)ws, arrivals, stream);
                }, &best_v1);
            }
            std::printf("%-37s %5d  best v1 / apart = %.4f / %.4f = %.2f\n", sh.name, batch, best_v1, best_apart,
                        best_v1 / best_apart);
            for (void* ptr : {(void*)du, (void*)dw, (void*)dz, (void*)dbias_h, (void*)dattn, (void*)dbias, (void*)da,
                              (void*)dy, (void*)arrivals})
                cudaFree(ptr);
        }
    std::printf("%s\n", all_ok ? "all ways correct" : "SOME WAYS WRONG");
    return all_ok ? 0 : 1;
}

// ---- results ---------------------------------------------------------------------------------------------
// Not yet measured.
