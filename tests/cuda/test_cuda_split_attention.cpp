// test_cuda_split_attention.cpp: split attention's kernels against the CPU oracle (runtime/cpu) on fresh random
// data at every attention shape of the committed models plus ragged ones, in fp32 and fp16: the radix sum +
// pool (both kernels, every chunk count), the gate (one block per image, rows over many blocks, two cuBLASLt
// matmuls with their cached algorithms restored), the weighted sum with and without the avd pool, and U read
// as one interleaved tensor or as R tensors apart (aligned or not).
// Outputs are poisoned (NaN) with guard regions around them; a guard write or an unwritten element fails.
#include <catch2/catch.hpp>

#include <cublasLt.h>

#include <algorithm>
#include <memory>
#include <set>

#include "cpu/cpu_ops.h"
#include "cuda/cuda_gate_gemm.h"
#include "cuda_test_helpers.h"
#include "graph.h"
#include "pool2d_nhwc.cuh"
#include "split_attention_combine.cuh"
#include "split_attention_gate.cuh"
#include "split_attention_gate_rows.cuh"
#include "split_attention_pool.cuh"
#include "split_attention_pool_row_lanes.cuh"
#include "split_attention_rows.cuh"

using namespace cuda_test;
using resnest::Precision;

namespace {

struct AttnCase {
    resnest::SplitAttentionAttrs a;
    int h, w;
};

std::vector<AttnCase> attention_cases() {
    std::vector<AttnCase> cases;
    std::set<std::string> seen;
    for (const resnest::Graph* g : model_graphs())
        for (const resnest::Node& n : g->nodes) {
            if (n.op != resnest::OpType::split_attention) continue;
            const auto& x = g->tensors[n.inputs[0]].shape;
            std::string key = std::to_string(n.attn.radix) + "/" + std::to_string(n.attn.channels) + resnest::shape_str(x);
            if (seen.insert(key).second) cases.push_back({n.attn, (int)x[1], (int)x[2]});
        }
    auto ragged = [&](int R, int K, int C, int inter, int h, int w) {
        resnest::SplitAttentionAttrs a;
        a.radix = R, a.cardinality = K, a.channels = C, a.inter_channels = inter;
        cases.push_back({a, h, w});
    };
    ragged(4, 2, 24, 16, 5, 3);   // radix 4, cardinality 2
    ragged(1, 1, 40, 32, 7, 7);   // sigmoid gate
    ragged(1, 2, 20, 8, 3, 9);    // sigmoid with the cardinality transpose
    ragged(2, 4, 36, 12, 1, 1);   // one pixel
    ragged(3, 1, 50, 30, 6, 5);   // odd radix
    return cases;
}

// One split-attention case's random U and fc weights for n images, and the CPU oracle's output.
struct AttnData {
    std::vector<float> u;                 // (N, R*C, HW), rounded to the storage type
    std::vector<float> w1f, b1f, w2, b2;  // fc1 with the BN folded in (as fold_batch_norm writes it), fc2
    std::vector<float> ref;               // (N, C, HW): the whole op on the CPU, BN unfolded
};
AttnData attention_data(const AttnCase& c, int n, Precision p, uint64_t salt) {
    const resnest::SplitAttentionAttrs& a = c.a;
    const int R = a.radix, K = a.cardinality, C = a.channels, inter = a.inter_channels;
    const int hw = c.h * c.w, gk = C / K, ik = inter / K;
    AttnData d;
    d.u = round_to_storage(random_floats((size_t)n * R * C * hw, -2, 2, salt), p);
    std::vector<float> w1 = random_floats((size_t)inter * gk, -0.3f, 0.3f, salt + 1);
    std::vector<float> b1 = random_floats(inter, -0.5f, 0.5f, salt + 2);
    std::vector<float> scale = random_floats(inter, 0.5f, 1.5f, salt + 3);
    std::vector<float> shift = random_floats(inter, -0.5f, 0.5f, salt + 4);
    d.w2 = random_floats((size_t)R * C * ik, -0.5f, 0.5f, salt + 5);
    d.b2 = random_floats((size_t)R * C, -0.5f, 0.5f, salt + 6);
    d.w1f.resize(w1.size()), d.b1f.resize(inter);
    for (int j = 0; j < inter; j++) {
        for (int i = 0; i < gk; i++) d.w1f[(size_t)j * gk + i] = (float)((double)w1[(size_t)j * gk + i] * scale[j]);
        d.b1f[j] = (float)((double)b1[j] * scale[j] + shift[j]);
    }
    resnest::SplitAttentionWeights cw{w1.data(), b1.data(), scale.data(), shift.data(), d.w2.data(), d.b2.data()};
    d.ref.resize((size_t)n * C * hw);
    for (int b = 0; b < n; b++)
        resnest::split_attention(a, cw, d.u.data() + (size_t)b * R * C * hw, hw, d.ref.data() + (size_t)b * C * hw);
    return d;
}

}  // namespace

TEST_CASE("split attention (pool, gate, weighted sum, and with the avd pool) matches the CPU", "[cuda][ops]") {
    INFO("seed " << run_seed());
    cublasLtHandle_t lt = nullptr;
    REQUIRE(cublasLtCreate(&lt) == CUBLAS_STATUS_SUCCESS);
    int matmul_gates = 0, matmul_refused = 0, matmul_restored = 0, row_lane_pools = 0;
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (const AttnCase& c : attention_cases())
            for (int n : {1, 3, 11}) {
            const resnest::SplitAttentionAttrs& a = c.a;
            const int R = a.radix, K = a.cardinality, C = a.channels, inter = a.inter_channels;
            const int hw = c.h * c.w;
            const AttnData d = attention_data(c, n, p, (uint64_t)R * 1000003 + C * 101 + hw);
            const std::vector<float>&u = d.u, &w1f = d.w1f, &b1f = d.b1f, &w2 = d.w2, &b2 = d.b2, &ref = d.ref;

            GuardedBuffer du(u.size(), esize_of(p)), dy(ref.size(), esize_of(p));
            GuardedBuffer dattn((size_t)n * R * C, 4);
            GuardedBuffer dw1(w1f.size(), 4), db1(inter, 4), dw2(w2.size(), 4), db2(b2.size(), 4);
            du.upload(nchw_to_nhwc(u, n, R * C, hw));
            dw1.upload(w1f), db1.upload(b1f), dw2.upload(w2), db2.upload(b2);
            // U as one (N, HW, R*C) tensor, its radix splits interleaved (the layout the runtime has today).
            const auto u_half = resnest::radix_rows_interleaved((const __half*)du.data(), R, C);
            const auto u_float = resnest::radix_rows_interleaved((const float*)du.data(), R, C);
            const int planned = p == Precision::fp16 ? resnest::split_attention_pool_chunks_for<__half>(n, hw, C)
                                                     : resnest::split_attention_pool_chunks_for<float>(n, hw, C);
            // The pooled means in double: gap[b, c] = mean_p sum_r u[b, r*C + c, p] (u is (N, R*C, HW) here).
            std::vector<double> gap_ref((size_t)n * C, 0.0);
            for (int b = 0; b < n; b++)
                for (int r = 0; r < R; r++)
                    for (int ch = 0; ch < C; ch++) {
                        const float* plane = u.data() + (((size_t)b * R + r) * C + ch) * hw;
                        for (int q = 0; q < hw; q++) gap_ref[(size_t)b * C + ch] += plane[q];
                    }
            // The pool at the chunk count the backend plans (its gates feed the weighted sum below), with no
            // chunks, and with the most (empty chunks when HW is small): the chunk sums must add up to the
            // means, and the gates must not depend on the chunking beyond rounding.
            std::string why;
            std::vector<float> planned_gates;
            const int row_lanes_planned = resnest::split_attention_pool_row_lanes_chunks(n, hw);
            for (int chunks : {planned, row_lanes_planned, 1, resnest::kPoolMaxChunks}) {
                GuardedBuffer dgap((size_t)n * chunks * C, 4);
                resnest::SplitAttentionGateShape gs{n, R, K, C, inter, hw, chunks};
                check(cudaMemset(dattn.data(), kPoison, (size_t)n * R * C * 4), "poison");
                if (p == Precision::fp16)
                    resnest::split_attention_radix_sum_pool<__half>(u_half, (float*)dgap.data(), n, hw, R, C, chunks,
                                                                    0);
                else
                    resnest::split_attention_radix_sum_pool<float>(u_float, (float*)dgap.data(), n, hw, R, C, chunks,
                                                                   0);
                // The gate as a programmatic dependent launch straight after the pool: it must wait for it.
                resnest::split_attention_gate_block_per_image((const float*)dgap.data(), (const float*)dw1.data(),
                                                              (const float*)db1.data(), (const float*)dw2.data(),
                                                              (const float*)db2.data(), (float*)dattn.data(), gs,
                                                              resnest::KernelStream(0, true));
                check(cudaDeviceSynchronize(), "split attention pool + gate");
                INFO(pname(p) << " R=" << R << " C=" << C << " " << c.h << "x" << c.w << " batch " << n
                              << ": pool chunks " << chunks << " (planned " << planned << ")");
                std::vector<float> sums, gates;
                REQUIRE(dgap.download(sums, &why));
                REQUIRE(dattn.download(gates, &why));
                std::vector<float> means((size_t)n * C, 0.0f), want((size_t)n * C);
                for (int b = 0; b < n; b++)
                    for (int ch = 0; ch < C; ch++) {
                        double t = 0.0;
                        for (int k = 0; k < chunks; k++) t += sums[((size_t)b * chunks + k) * C + ch];
                        means[(size_t)b * C + ch] = (float)(t / hw);
                        want[(size_t)b * C + ch] = (float)(gap_ref[(size_t)b * C + ch] / hw);
                    }
                CHECK(max_rel_error(means, want) <= 1e-5);
                // The row-lanes pool (16-byte loads across the R*C row; RESNEST_ATTENTION_POOL=row-lanes) where
                // the shape fits, into a poisoned buffer at the same chunk count, as a dependent launch (as the
                // backend makes it): the same chunk sums up to the order of the additions.
                const bool row_lanes_fit = p == Precision::fp16
                                               ? resnest::split_attention_pool_row_lanes_fits_for<__half>(R, C)
                                               : resnest::split_attention_pool_row_lanes_fits_for<float>(R, C);
                if (row_lanes_fit) {
                    GuardedBuffer dgap_rows((size_t)n * chunks * C, 4);
                    check(cudaMemset(dgap_rows.data(), kPoison, (size_t)n * chunks * C * 4), "poison");
                    if (p == Precision::fp16)
                        resnest::split_attention_radix_sum_pool_row_lanes<__half>(
                            u_half, (float*)dgap_rows.data(), n, hw, R, C, chunks, resnest::KernelStream(0, true));
                    else
                        resnest::split_attention_radix_sum_pool_row_lanes<float>(
                            u_float, (float*)dgap_rows.data(), n, hw, R, C, chunks, resnest::KernelStream(0, true));
                    check(cudaDeviceSynchronize(), "split attention pool, row lanes");
                    std::vector<float> row_sums;
                    REQUIRE(dgap_rows.download(row_sums, &why));
                    INFO("the row-lanes pool against the channel-lanes one");
                    CHECK(max_rel_error(row_sums, sums) <= 1e-5);
                    row_lane_pools++;
                }
                if (chunks == planned)
                    planned_gates = gates;
                else
                    CHECK(max_rel_error(gates, planned_gates) <= 1e-5);
                // The small-batch gate (fc rows spread over blocks, two kernels, tiles of 8 images: batch 11
                // has a partial tile) from the same chunk sums, launched dependent on the pool as well.
                GuardedBuffer dhidden((size_t)n * inter, 4), dattn_rows((size_t)n * R * C, 4);
                check(cudaMemset(dhidden.data(), kPoison, (size_t)n * inter * 4), "poison");
                check(cudaMemset(dattn_rows.data(), kPoison, (size_t)n * R * C * 4), "poison");
                resnest::split_attention_gate_rows((const float*)dgap.data(), (const float*)dw1.data(),
                                                   (const float*)db1.data(), (const float*)dw2.data(),
                                                   (const float*)db2.data(), (float*)dhidden.data(),
                                                   (float*)dattn_rows.data(), gs, resnest::KernelStream(0, true));
                check(cudaDeviceSynchronize(), "split attention gate in rows");
                std::vector<float> rows_gates;
                REQUIRE(dattn_rows.download(rows_gates, &why));
                INFO("the small-batch gate (split_attention_gate_rows) against one block per image");
                CHECK(max_rel_error(rows_gates, gates) <= 1e-5);
                // The gate as two cuBLASLt matmuls + the radix softmax kernel (cardinality 1, one chunk).
                if (K == 1 && chunks == 1) {
                    GuardedBuffer dattn_mm((size_t)n * R * C, 4);
                    // One launch of a described and chosen gate into poisoned buffers; its gates.
                    auto matmul_gates_of = [&](const resnest::GateGemmLaunch& g, const char* what) {
                        check(cudaMemset(dhidden.data(), kPoison, (size_t)n * inter * 4), "poison");
                        check(cudaMemset(dattn_mm.data(), kPoison, (size_t)n * R * C * 4), "poison");
                        g.launch(lt, resnest::KernelStream(0, true));
                        check(cudaDeviceSynchronize(), what);
                        std::vector<float> out;
                        REQUIRE(dattn_mm.download(out, &why));
                        return out;
                    };
                    resnest::GateGemmLaunch mm;
                    const resnest::GateGemmBuffers mb{(const float*)dgap.data(), (const float*)dw1.data(),
                                                      (const float*)db1.data(), (const float*)dw2.data(),
                                                      (const float*)db2.data(), (float*)dhidden.data(),
                                                      (float*)dattn_mm.data()};
                    REQUIRE(mm.describe(gs, mb, "test gate", &why));
                    INFO(why);
                    if (!mm.choose_algorithms(lt, &why)) {  // the runtime then keeps the gate kernels, as here
                        std::printf("cuda split attention: no cuBLASLt algorithm for the gate as matmuls at C %d, "
                                    "inter %d, batch %d: %s\n", C, inter, n, why.c_str());
                        matmul_refused++;
                        continue;
                    }
                    std::vector<float> mm_gates = matmul_gates_of(mm, "split attention gate as matmuls");
                    INFO("the gate as matmuls (cuda_gate_gemm.h) against one block per image");
                    CHECK(max_rel_error(mm_gates, gates) <= 1e-5);
                    matmul_gates++;
                    // Its algorithms as the cache keeps them, restored by a second launch described the same
                    // way (a cached start): cuBLASLt must take them back, and the gates must not change.
                    const std::string hex = mm.algorithms_hex();
                    // Both algorithms' bytes, then their 4-byte hash (bytes_to_checked_hex), two digits a byte.
                    CHECK(hex.size() == 2 * (2 * sizeof(cublasLtMatmulAlgo_t) + 4));
                    resnest::GateGemmLaunch again;
                    REQUIRE(again.describe(gs, mb, "test gate, restored", &why));
                    CHECK_FALSE(again.restore_algorithms(lt, hex.substr(0, hex.size() / 2)));
                    const bool taken_back = again.restore_algorithms(lt, hex);
                    CHECK(taken_back);  // counted below too: every checked case must restore
                    if (!taken_back) continue;
                    CHECK(again.algorithms_hex() == hex);
                    mm_gates = matmul_gates_of(again, "split attention gate as matmuls, restored algorithms");
                    INFO("the gate as matmuls with the algorithms restored from their hex");
                    CHECK(max_rel_error(mm_gates, gates) <= 1e-5);
                    matmul_restored++;
                }
            }
            check(cudaMemcpy(dattn.data(), planned_gates.data(), planned_gates.size() * 4, cudaMemcpyHostToDevice),
                  "gates");
            if (p == Precision::fp16)
                resnest::split_attention_weighted_sum<__half>(u_half, (const float*)dattn.data(), (__half*)dy.data(),
                                                              n, hw, R, C, 0);
            else
                resnest::split_attention_weighted_sum<float>(u_float, (const float*)dattn.data(), (float*)dy.data(), n,
                                                             hw, R, C, 0);
            check(cudaDeviceSynchronize(), "split attention");
            INFO(pname(p) << " split attention R=" << R << " K=" << K << " C=" << C << " inter=" << inter << " "
                          << c.h << "x" << c.w << " batch " << n);
            std::vector<float> got;
            REQUIRE(dy.download(got, &why));
            CHECK(max_rel_error(nhwc_to_nchw(got, n, C, hw), ref) <= op_tolerance(p));

            // The same gates one float past a 16-byte boundary (an offset view): the kernel must not load them
            // as float4s (a misaligned-address fault), and the sums are the same.
            {
                GuardedBuffer shifted_gates(planned_gates.size(), 4, /*skew=*/4);
                shifted_gates.upload(planned_gates);
                GuardedBuffer dy2((size_t)n * hw * C, esize_of(p));
                if (p == Precision::fp16)
                    resnest::split_attention_weighted_sum<__half>(u_half, (const float*)shifted_gates.data(),
                                                                  (__half*)dy2.data(), n, hw, R, C, 0);
                else
                    resnest::split_attention_weighted_sum<float>(u_float, (const float*)shifted_gates.data(),
                                                                 (float*)dy2.data(), n, hw, R, C, 0);
                check(cudaDeviceSynchronize(), "split attention, gates misaligned");
                INFO("the gates one float past a 16-byte boundary");
                REQUIRE(dy2.download(got, &why));
                CHECK(max_rel_error(nhwc_to_nchw(got, n, C, hw), ref) <= op_tolerance(p));
            }

            // The same weighted sum with the avd pool (3x3, stride 2, pad 1) fused, both divisor rules.
            for (bool include : {true, false}) {
                resnest::Pool2dAttrs pa;
                pa.kernel_h = pa.kernel_w = 3, pa.stride_h = pa.stride_w = 2, pa.pad_h = pa.pad_w = 1;
                pa.count_include_pad = include;
                int oh = (c.h + 2 - 3) / 2 + 1, ow = (c.w + 2 - 3) / 2 + 1;
                std::vector<float> pref((size_t)n * C * oh * ow);
                for (int b = 0; b < n; b++)
                    resnest::avg_pool2d(pa, ref.data() + (size_t)b * C * hw, C, c.h, c.w,
                                        pref.data() + (size_t)b * C * oh * ow, oh, ow);
                GuardedBuffer dp(pref.size(), esize_of(p));
                resnest::Pool2dShape s{n, c.h, c.w, C, oh, ow, 3, 3, 2, 2, 1, 1, include};
                if (p == Precision::fp16)
                    resnest::split_attention_weighted_sum_avg_pool<__half>(u_half, (const float*)dattn.data(),
                                                                           (__half*)dp.data(), R, s, 0);
                else
                    resnest::split_attention_weighted_sum_avg_pool<float>(u_float, (const float*)dattn.data(),
                                                                          (float*)dp.data(), R, s, 0);
                check(cudaDeviceSynchronize(), "split attention + avd pool");
                INFO("with the avd pool, count_include_pad " << include);
                REQUIRE(dp.download(got, &why));
                CHECK(max_rel_error(nhwc_to_nchw(got, n, C, oh * ow), pref) <= op_tolerance(p));
            }
        }
    cublasLtDestroy(lt);
    std::printf("cuda split attention: the gate as matmuls checked in %d cases (%d with the algorithms restored "
                "from the cache's hex), refused by cuBLASLt in %d\n",
                matmul_gates, matmul_restored, matmul_refused);
    CHECK(matmul_restored == matmul_gates);
    std::printf("cuda split attention: the row-lanes pool checked in %d cases\n", row_lane_pools);
    // fp32 and fp16 x batches 1, 3, 11 x 4 chunk counts x at least ResNeSt50's four widths.
    CHECK(row_lane_pools >= 2 * 3 * 4 * 4);
    CHECK(matmul_gates >= 2 * 3 * 4);  // fp32, fp16 x batches 1, 3, 11 x at least ResNeSt50's four widths
}

// ---- split attention with U's radix splits apart ---------------------------------------------------------------

namespace {

// How U reaches the split-attention kernels (split_attention_rows.cuh): one tensor (N, HW, R*C) with the radix
// splits interleaved in each position's row; R tensors (N, HW, C), each in a cudaMalloc'd buffer of its own; or
// those R tensors each starting one element past a 16-byte boundary (the vector loads must fall back).
enum class ULayout { interleaved, apart, apart_misaligned };

const char* layout_name(ULayout l) {
    switch (l) {
        case ULayout::interleaved: return "interleaved";
        case ULayout::apart: return "apart";
        case ULayout::apart_misaligned: return "apart, misaligned";
    }
    return "?";
}

// U on the device in one layout, from the oracle's u (N, R*C, HW); every buffer has poisoned guard regions.
class DeviceU {
  public:
    DeviceU(const std::vector<float>& u, int n, int radix, int c, int hw, Precision p, ULayout layout)
        : layout_(layout), radix_(radix), c_(c) {
        const size_t esize = esize_of(p);
        if (layout == ULayout::interleaved) {
            buffers_.push_back(std::make_unique<GuardedBuffer>(u.size(), esize));
            buffers_[0]->upload(nchw_to_nhwc(u, n, radix * c, hw));
            splits_.push_back(buffers_[0]->data());
            return;
        }
        const size_t skip = layout == ULayout::apart_misaligned ? 1 : 0;  // elements before the split's first
        for (int r = 0; r < radix; r++) {
            std::vector<float> part((size_t)n * c * hw);  // split r: (N, C, HW)
            for (int b = 0; b < n; b++)
                std::copy_n(u.begin() + ((size_t)b * radix + r) * c * hw, (size_t)c * hw,
                            part.begin() + (size_t)b * c * hw);
            std::vector<float> body(skip, NAN);  // the skipped element: no kernel may read it
            const std::vector<float> nhwc = nchw_to_nhwc(part, n, c, hw);  // (N, HW, C)
            body.insert(body.end(), nhwc.begin(), nhwc.end());
            buffers_.push_back(std::make_unique<GuardedBuffer>(body.size(), esize));
            buffers_.back()->upload(body);
            splits_.push_back((unsigned char*)buffers_.back()->data() + skip * esize);
        }
    }

    template <typename T>
    resnest::RadixRows<T> rows() const {
        if (layout_ == ULayout::interleaved) return resnest::radix_rows_interleaved((const T*)splits_[0], radix_, c_);
        std::vector<const T*> splits;
        for (const void* s : splits_) splits.push_back((const T*)s);
        return resnest::radix_rows_apart(splits.data(), radix_, c_);
    }

  private:
    ULayout layout_;
    int radix_, c_;
    std::vector<std::unique_ptr<GuardedBuffer>> buffers_;  // one (interleaved) or R (apart)
    std::vector<const void*> splits_;                       // split r's first element (interleaved: U's)
};

// The gate's weights on the device: fc1 with the BN folded in, fc2.
struct GateWeights {
    const float *w1, *b1, *w2, *b2;
};

// What one layout of U gave: the channel-lanes pool's chunk sums (N, chunks, C), the row-lanes pool's
// (N, row_chunks, C) where it ran, the gates (N, R*C), the weighted sum (N, HW, C) and the weighted sum with
// the avd pool (N, OH, OW, C), count_include_pad false [0] and true [1].
struct SplitAttentionRun {
    std::vector<float> sums, row_sums, gates, y, y_avd[2];
};

// Downloads b into v as floats; fails the test, saying why, where a guard byte changed.
void download_or_fail(const GuardedBuffer& b, std::vector<float>& v) {
    std::string why;
    const bool ok = b.download(v, &why);
    INFO(why);
    REQUIRE(ok);
}

// Pool (at the planned chunk count), gate and weighted sums of one layout of U into poisoned buffers, each
// launch after the first as a dependent launch (as the backend makes them); the row-lanes pool too when
// `row_lanes`, at its planned chunk count. The weighted sums' outputs start `y_skew` elements past their
// buffers' 256-byte boundary.
template <typename T>
SplitAttentionRun run_split_attention(const DeviceU& du, const resnest::SplitAttentionAttrs& a, int h, int w, int n,
                                      const GateWeights& gw, bool row_lanes, size_t y_skew = 0) {
    const resnest::RadixRows<T> u = du.rows<T>();
    const int R = a.radix, C = a.channels, hw = h * w;
    const int chunks = resnest::split_attention_pool_chunks_for<T>(n, hw, C);
    const resnest::KernelStream dependent(0, true);
    GuardedBuffer dgap((size_t)n * chunks * C, 4), dattn((size_t)n * R * C, 4);
    GuardedBuffer dy((size_t)n * hw * C, sizeof(T), y_skew * sizeof(T));
    resnest::split_attention_radix_sum_pool<T>(u, (float*)dgap.data(), n, hw, R, C, chunks, 0);
    const resnest::SplitAttentionGateShape gs{n, R, a.cardinality, C, a.inter_channels, hw, chunks};
    resnest::split_attention_gate_block_per_image((const float*)dgap.data(), gw.w1, gw.b1, gw.w2, gw.b2,
                                                  (float*)dattn.data(), gs, dependent);
    resnest::split_attention_weighted_sum<T>(u, (const float*)dattn.data(), (T*)dy.data(), n, hw, R, C, dependent);
    SplitAttentionRun run;
    for (bool include : {false, true}) {
        const int oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1;
        GuardedBuffer dp((size_t)n * oh * ow * C, sizeof(T), y_skew * sizeof(T));
        const resnest::Pool2dShape s{n, h, w, C, oh, ow, 3, 3, 2, 2, 1, 1, include};
        resnest::split_attention_weighted_sum_avg_pool<T>(u, (const float*)dattn.data(), (T*)dp.data(), R, s,
                                                          dependent);
        check(cudaDeviceSynchronize(), "split attention + avd pool");
        download_or_fail(dp, run.y_avd[include]);
    }
    if (row_lanes) {
        const int row_chunks = resnest::split_attention_pool_row_lanes_chunks(n, hw);
        GuardedBuffer drows((size_t)n * row_chunks * C, 4);
        resnest::split_attention_radix_sum_pool_row_lanes<T>(u, (float*)drows.data(), n, hw, R, C, row_chunks,
                                                             dependent);
        check(cudaDeviceSynchronize(), "split attention pool, row lanes");
        download_or_fail(drows, run.row_sums);
    }
    check(cudaDeviceSynchronize(), "split attention");
    download_or_fail(dgap, run.sums);
    download_or_fail(dattn, run.gates);
    download_or_fail(dy, run.y);
    return run;
}

// The pooled means (N, C) from chunk sums (N, chunks, C), the chunks added in double.
std::vector<float> chunk_means(const std::vector<float>& sums, int n, int chunks, int c, int hw) {
    std::vector<float> means((size_t)n * c);
    for (int b = 0; b < n; b++)
        for (int ch = 0; ch < c; ch++) {
            double t = 0.0;
            for (int k = 0; k < chunks; k++) t += sums[((size_t)b * chunks + k) * c + ch];
            means[(size_t)b * c + ch] = (float)(t / hw);
        }
    return means;
}

}  // namespace

TEST_CASE("split attention reads U alike as one interleaved tensor or as R tensors apart", "[cuda][ops]") {
    INFO("seed " << run_seed());
    int apart_row_lane_pools = 0, misaligned_refusals = 0, cases = 0;
    for (Precision p : {Precision::fp32, Precision::fp16})
        for (const AttnCase& c : attention_cases())  // every model shape, plus radix 4, radix 1 and ragged ones
            for (int n : {1, 3}) {
                const resnest::SplitAttentionAttrs& a = c.a;
                const int R = a.radix, K = a.cardinality, C = a.channels, inter = a.inter_channels;
                const int hw = c.h * c.w;
                const AttnData d = attention_data(c, n, p, (uint64_t)R * 1000003 + C * 101 + hw + 77);
                const std::vector<float>&u = d.u, &w1f = d.w1f, &b1f = d.b1f, &w2 = d.w2, &b2 = d.b2, &ref = d.ref;
                // The CPU oracle's whole op (N, C, HW), then the avd pool of it, both divisor rules.
                const int oh = (c.h + 2 - 3) / 2 + 1, ow = (c.w + 2 - 3) / 2 + 1;
                std::vector<float> pref[2];
                for (bool include : {false, true}) {
                    resnest::Pool2dAttrs pa;
                    pa.kernel_h = pa.kernel_w = 3, pa.stride_h = pa.stride_w = 2, pa.pad_h = pa.pad_w = 1;
                    pa.count_include_pad = include;
                    pref[include].resize((size_t)n * C * oh * ow);
                    for (int b = 0; b < n; b++)
                        resnest::avg_pool2d(pa, ref.data() + (size_t)b * C * hw, C, c.h, c.w,
                                            pref[include].data() + (size_t)b * C * oh * ow, oh, ow);
                }
                // The pooled means in double: mean_p sum_r u[b, r*C + c, p].
                std::vector<float> want((size_t)n * C);
                for (int b = 0; b < n; b++)
                    for (int ch = 0; ch < C; ch++) {
                        double t = 0.0;
                        for (int r = 0; r < R; r++) {
                            const float* plane = u.data() + (((size_t)b * R + r) * C + ch) * hw;
                            for (int q = 0; q < hw; q++) t += plane[q];
                        }
                        want[(size_t)b * C + ch] = (float)(t / hw);
                    }
                GuardedBuffer dw1(w1f.size(), 4), db1(inter, 4), dw2(w2.size(), 4), db2(b2.size(), 4);
                dw1.upload(w1f), db1.upload(b1f), dw2.upload(w2), db2.upload(b2);
                const GateWeights gw{(const float*)dw1.data(), (const float*)db1.data(), (const float*)dw2.data(),
                                     (const float*)db2.data()};
                const bool half = p == Precision::fp16;
                const int chunks = half ? resnest::split_attention_pool_chunks_for<__half>(n, hw, C)
                                        : resnest::split_attention_pool_chunks_for<float>(n, hw, C);
                const int row_chunks = resnest::split_attention_pool_row_lanes_chunks(n, hw);
                auto row_lanes_fit = [&](bool apart) {
                    return half ? resnest::split_attention_pool_row_lanes_fits_for<__half>(R, C, apart)
                                : resnest::split_attention_pool_row_lanes_fits_for<float>(R, C, apart);
                };
                SplitAttentionRun interleaved;
                for (ULayout layout : {ULayout::interleaved, ULayout::apart, ULayout::apart_misaligned}) {
                    INFO(pname(p) << " split attention R=" << R << " K=" << K << " C=" << C << " inter=" << inter
                                  << " " << c.h << "x" << c.w << " batch " << n << ", U " << layout_name(layout));
                    const DeviceU du(u, n, R, C, hw, p, layout);
                    // The row-lanes pool wherever it takes the layout (16-byte aligned splits only).
                    const bool row_lanes = layout != ULayout::apart_misaligned &&
                                           row_lanes_fit(layout != ULayout::interleaved);
                    const SplitAttentionRun run = half ? run_split_attention<__half>(du, a, c.h, c.w, n, gw, row_lanes)
                                                       : run_split_attention<float>(du, a, c.h, c.w, n, gw, row_lanes);
                    CHECK(max_rel_error(chunk_means(run.sums, n, chunks, C, hw), want) <= 1e-5);
                    if (row_lanes) {
                        INFO("the row-lanes pool");
                        CHECK(max_rel_error(chunk_means(run.row_sums, n, row_chunks, C, hw), want) <= 1e-5);
                    }
                    CHECK(max_rel_error(nhwc_to_nchw(run.y, n, C, hw), ref) <= op_tolerance(p));
                    for (bool include : {false, true}) {
                        INFO("with the avd pool, count_include_pad " << include);
                        CHECK(max_rel_error(nhwc_to_nchw(run.y_avd[include], n, C, oh * ow), pref[include]) <=
                              op_tolerance(p));
                    }
                    if (layout == ULayout::interleaved) {
                        interleaved = run;
                        // The weighted sums again into outputs one element off their 16-byte boundary (U
                        // aligned): the one-element kernels, against the oracle.
                        INFO("outputs off their 16-byte boundary");
                        const SplitAttentionRun off =
                            half ? run_split_attention<__half>(du, a, c.h, c.w, n, gw, false, 1)
                                 : run_split_attention<float>(du, a, c.h, c.w, n, gw, false, 1);
                        CHECK(max_rel_error(nhwc_to_nchw(off.y, n, C, hw), ref) <= op_tolerance(p));
                        for (bool include : {false, true})
                            CHECK(max_rel_error(nhwc_to_nchw(off.y_avd[include], n, C, oh * ow), pref[include]) <=
                                  op_tolerance(p));
                    } else if (layout == ULayout::apart) {
                        // Aligned splits apart take the same kernels as one interleaved tensor and add in the same
                        // order: every result is the interleaved one, bit for bit.
                        INFO("apart against interleaved, bit for bit");
                        CHECK(run.sums == interleaved.sums);
                        CHECK(run.gates == interleaved.gates);
                        CHECK(run.y == interleaved.y);
                        CHECK(run.y_avd[0] == interleaved.y_avd[0]);
                        CHECK(run.y_avd[1] == interleaved.y_avd[1]);
                        if (row_lanes) CHECK(run.row_sums == interleaved.row_sums);  // it fits interleaved too
                        apart_row_lane_pools += row_lanes;
                    } else if (row_lanes_fit(true)) {
                        // Splits off their 16-byte boundary: the row-lanes pool refuses them, naming itself.
                        GuardedBuffer dgap((size_t)n * row_chunks * C, 4);
                        auto launch = [&] {
                            if (half)
                                resnest::split_attention_radix_sum_pool_row_lanes<__half>(
                                    du.rows<__half>(), (float*)dgap.data(), n, hw, R, C, row_chunks, 0);
                            else
                                resnest::split_attention_radix_sum_pool_row_lanes<float>(
                                    du.rows<float>(), (float*)dgap.data(), n, hw, R, C, row_chunks, 0);
                        };
                        CHECK_THROWS_WITH(launch(), Catch::Contains("split_attention_radix_sum_pool_row_lanes") &&
                                                        Catch::Contains("16-byte aligned"));
                        misaligned_refusals++;
                    }
                }
                cases++;
            }
    std::printf("cuda split attention, U apart: %d cases in three layouts (and outputs off 16 bytes), the "
                "row-lanes pool apart in %d, refusing misaligned splits in %d\n",
                cases, apart_row_lane_pools, misaligned_refusals);
    // fp32 and fp16 x batches 1, 3 x at least ResNeSt50's four widths (C 64..512, all whole 16-byte lanes).
    CHECK(apart_row_lane_pools >= 2 * 2 * 4);
    CHECK(misaligned_refusals == apart_row_lane_pools);
}

TEST_CASE("the row-lanes pool refuses radix splits apart whose channels are not whole 16-byte lanes",
          "[cuda][ops]") {
    INFO("seed " << run_seed());
    for (Precision p : {Precision::fp32, Precision::fp16}) {
        // R = 2: C = 36 halves is 72 a row, 9 whole lanes interleaved, but 4.5 lanes a split apart; C = 6 floats
        // is 12 a row, 3 lanes interleaved, 1.5 a split apart.
        const bool half = p == Precision::fp16;
        const int R = 2, C = half ? 36 : 6, n = 2, hw = 20;
        INFO(pname(p) << " R=" << R << " C=" << C);
        CHECK((half ? resnest::split_attention_pool_row_lanes_fits_for<__half>(R, C)
                    : resnest::split_attention_pool_row_lanes_fits_for<float>(R, C)));
        CHECK_FALSE((half ? resnest::split_attention_pool_row_lanes_fits_for<__half>(R, C, true)
                          : resnest::split_attention_pool_row_lanes_fits_for<float>(R, C, true)));
        std::vector<float> u = round_to_storage(random_floats((size_t)n * R * C * hw, -2, 2, 4242), p);
        std::vector<float> want((size_t)n * C);  // mean_p sum_r u[b, r*C + c, p], in double
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < C; ch++) {
                double t = 0.0;
                for (int r = 0; r < R; r++)
                    for (int q = 0; q < hw; q++) t += u[(((size_t)b * R + r) * C + ch) * hw + q];
                want[(size_t)b * C + ch] = (float)(t / hw);
            }
        for (ULayout layout : {ULayout::interleaved, ULayout::apart}) {
            INFO("U " << layout_name(layout));
            const DeviceU du(u, n, R, C, hw, p, layout);
            GuardedBuffer dgap((size_t)n * C, 4);
            auto launch = [&] {
                if (half)
                    resnest::split_attention_radix_sum_pool_row_lanes<__half>(du.rows<__half>(), (float*)dgap.data(),
                                                                              n, hw, R, C, 1, 0);
                else
                    resnest::split_attention_radix_sum_pool_row_lanes<float>(du.rows<float>(), (float*)dgap.data(), n,
                                                                             hw, R, C, 1, 0);
            };
            std::vector<float> got;
            if (layout == ULayout::interleaved) {
                // One tensor: lanes may straddle two splits there, and the sums are right.
                launch();
                check(cudaDeviceSynchronize(), "split attention pool, row lanes");
                download_or_fail(dgap, got);
                CHECK(max_rel_error(chunk_means(got, n, 1, C, hw), want) <= 1e-5);
            } else {
                CHECK_THROWS_WITH(launch(), Catch::Contains("split_attention_radix_sum_pool_row_lanes") &&
                                                Catch::Contains("straddle"));
                check(cudaDeviceSynchronize(), "nothing launched");
                download_or_fail(dgap, got);
                CHECK(std::all_of(got.begin(), got.end(), [](float g) { return std::isnan(g); }));  // still poisoned
            }
        }
    }
}
