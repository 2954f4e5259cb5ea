// test_combine_conv_plan.cpp: the host arithmetic of the combine + 1x1 convolution kernel
// (kernels/split_attention_combine_conv1x1_plan.h), checked on the CPU: its split plan and shape limits, the
// avd pool's windows and divisors, and its grid emulated with its own offsets against lab/lab_reference.h's
// weighted sum, average pool and 1x1 convolution.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dtype.h"
#include "kernel_plan_checks.h"
#include "lab/lab_reference.h"
#include "split_attention_combine_conv1x1_plan.h"
#include "test_helpers.h"

using namespace resnest;

TEST_CASE("the combine + 1x1 convolution kernel's split plan: contiguous ranges, one wave, at least 4 K steps a "
          "split", "[kernel-plan]") {
    using Shape = CombineConv1x1Shape;
    // ResNeSt50's conv3 at batch 1 on 132 SMs: layer 4 (49 positions, C 512: 16 K steps, 1 x 32 tiles) splits
    // in 4 (128 blocks of 4 steps; 8 would be 256 blocks), layer 1 (3136 positions: 49 x 4 tiles, 2 K steps)
    // not at all.
    CHECK(split_attention_combine_conv1x1_splits({1, 49, 2, 512, 2048}, 132) == 4);
    CHECK(split_attention_combine_conv1x1_splits({1, 3136, 2, 64, 256}, 132) == 1);
    for (int batch : {1, 3, 8, 32, 128})
        for (Shape s : {Shape{batch, 3136, 2, 64, 256}, Shape{batch, 784, 2, 128, 512}, Shape{batch, 196, 2, 256, 1024},
                        Shape{batch, 49, 2, 512, 2048}, Shape{batch, 37, 1, 32, 64}}) {
            INFO("batch " << batch << " hw " << s.hw << " C " << s.c);
            REQUIRE(s.fits());
            const int splits = split_attention_combine_conv1x1_splits(s, 132);
            CHECK((splits == 1 || (long long)s.tiles() * splits <= 132));
            CHECK((splits == 1 || s.k_steps() / splits >= 4));
            test::check_split_ranges(s, splits);
            CHECK(s.tiles_m() * 64 >= s.m());
            CHECK((s.tiles_m() - 1) * 64 < s.m());
        }
    CHECK_FALSE((Shape{1, 49, 3, 512, 2048}.fits()));  // radix 3
    CHECK_FALSE((Shape{1, 49, 2, 48, 2048}.fits()));   // C not whole K steps
    CHECK_FALSE((Shape{1, 49, 2, 64, 96}.fits()));     // Cout not whole N tiles
}

namespace {

// ResNeSt50's avd pool (3x3, stride 2, pad 1) over U's in_h x in_w grid, by PyTorch's and Paddle's divisor
// rules, as a CombineConv1x1Shape's pool and as lab_reference.h's PoolGeometry.
CombineAvgPool avd_pool(int in_h, int in_w, bool include_pad) {
    return {3, 2, 1, include_pad, in_h, in_w, (in_w + 1) / 2};
}
lab::PoolGeometry pool_geometry(const CombineConv1x1Shape& s) {
    const CombineAvgPool& p = s.pool;
    return {p.in_h, p.in_w, p.k, p.stride, p.pad, p.include_pad, s.hw / p.out_w, p.out_w};
}

}  // namespace

TEST_CASE("the combine + 1x1 convolution kernel's avd pool: its windows and divisors are the reference's, and it "
          "refuses pools it cannot run", "[kernel-plan]") {
    for (bool include_pad : {true, false})
        for (int in : {56, 28, 14, 7, 5}) {
            const int out = (in + 1) / 2;
            const CombineConv1x1Shape s{2, out * out, 2, 64, 256, avd_pool(in, in, include_pad)};
            REQUIRE(s.fits());
            CHECK(s.u_positions() == in * in);
            for (long long m = 0; m < s.m(); m++) {
                int y0, y1, x0, x1, divisor, ry0, ry1, rx0, rx1, rdivisor;
                s.window(m, &y0, &y1, &x0, &x1, &divisor);
                const int cell = (int)(m % s.hw);
                lab::pool_window(pool_geometry(s), cell / out, cell % out, &ry0, &ry1, &rx0, &rx1, &rdivisor);
                INFO("in " << in << " m " << m);
                CHECK((y0 == ry0 && y1 == ry1 && x0 == rx0 && x1 == rx1 && divisor == rdivisor));
            }
            CHECK(s.u_row(1, 0, 0) == in * in);  // image 1's first row of U
        }
    CombineConv1x1Shape s{1, 16, 2, 64, 256, avd_pool(8, 8, true)};
    REQUIRE(s.fits());
    s.hw = 20;  // five rows of 4 cells: the last window starts at row 4 * 2 - 1 = 7 of U's 8
    CHECK(s.fits());
    s.hw = 24;  // six rows: the last starts at 5 * 2 - 1 = 9, past U's 8 rows
    CHECK_FALSE(s.fits());
    s = {1, 15, 2, 64, 256, avd_pool(8, 8, true)};  // 15 cells are not whole rows of 4
    CHECK_FALSE(s.fits());
    s = {1, 16, 2, 64, 256, avd_pool(8, 8, true)};
    s.pool.pad = 3;  // padding as wide as the window: a window over padding only
    CHECK_FALSE(s.fits());
    s.pool.pad = 1, s.pool.k = -1;  // the runtime's mark for a non-square window
    CHECK_FALSE(s.fits());
}

TEST_CASE("the combine + 1x1 convolution kernel's blocks, emulated on the host, write every output once and equal "
          "the weighted sum then the convolution", "[kernel-plan]") {
    // The kernel's grid walked on the CPU with its own offsets: block (tile_m, tile_n, split) forms a from u
    // and the gates (u_offset, attn_offset; with the avd pool, the mean over window() of u_row's cells;
    // rounded to half), multiplies its K steps with w (w_offset) into the slot partial_offset(split,
    // tile_index(...)); each tile's slots are then added in split order, and bias, the residual and ReLU
    // applied at y_offset. Against lab_reference.h's weighted sum (and average pool; rounded to half the same
    // way) and 1x1 convolution, all checked against the CPU oracle ([lab-reference]).
    // u in eighths and the gates in quarters (fresh, never zero): every weighted sum is exact in float and in
    // half, so rounding a cannot differ between the emulation and the reference; only the addresses can.
    // Pooled, a is a multiple of 1/(32 * divisor), divisor <= 9: either a half exactly or further than float's
    // error from every rounding boundary of half, so the same holds.
    using Shape = CombineConv1x1Shape;
    auto round_half = [](double v) { return half_to_float(float_to_half((float)v)); };
    auto in_steps = [](std::vector<float> v, float step) {
        for (float& x : v) x = std::round(x / step) == 0.0f ? step : std::round(x / step) * step;
        return v;
    };
    for (Shape s : {Shape{2, 37, 2, 64, 128}, Shape{1, 70, 1, 96, 64}, Shape{3, 20, 2, 32, 192},
                    Shape{2, 16, 2, 64, 128, avd_pool(8, 8, true)}, Shape{1, 9, 1, 32, 64, avd_pool(5, 5, false)},
                    Shape{2, 25, 2, 32, 64, avd_pool(9, 10, false)},
                    Shape{1, 9, 2, 64, 64, {2, 2, 0, false, 5, 5, 3}}}) {
        REQUIRE(s.fits());
        const int rc = s.radix * s.c;
        const std::vector<float> u =
            in_steps(test::random_floats((size_t)s.n * s.u_positions() * rc, -1.0f, 1.0f), 0.125f);
        const std::vector<float> attn = in_steps(test::random_floats((size_t)s.n * rc, 0.0f, 1.0f), 0.25f);
        const std::vector<float> w = test::random_floats((size_t)s.cout * s.c, -0.5f, 0.5f);
        const std::vector<float> bias = test::random_floats((size_t)s.cout, -0.5f, 0.5f);
        const std::vector<float> z = test::random_floats((size_t)(s.m() * s.cout), -1.0f, 1.0f);
        const std::vector<double> a_ref =
            s.pooled() ? lab::split_attention_combine_avg_pool_ref(u, attn, s.n, s.radix, s.c, pool_geometry(s))
                       : lab::split_attention_combine_ref(u, attn, s.n, s.hw, s.radix, s.c);
        // Radix split r of a's element (m, k) as the kernel forms it, before its gate.
        auto u_at = [&](long long m, int r, int k) {
            if (!s.pooled()) return u[(size_t)s.u_offset(m, r, k)];
            int y0, y1, x0, x1, divisor;
            s.window(m, &y0, &y1, &x0, &x1, &divisor);
            float sum = 0.0f;
            for (int iy = y0; iy < y1; iy++)
                for (int ix = x0; ix < x1; ix++) sum += u[(size_t)s.u_offset(s.u_row(m / s.hw, iy, ix), r, k)];
            return sum * (1.0f / (float)divisor);
        };
        std::vector<float> a_half(a_ref.size());
        for (size_t i = 0; i < a_ref.size(); i++) a_half[i] = round_half(a_ref[i]);
        std::vector<double> ref((size_t)(s.m() * s.cout));
        for (long long m = 0; m < s.m(); m++)
            for (int o = 0; o < s.cout; o++)
                ref[(size_t)(m * s.cout + o)] =
                    std::max(0.0, lab::conv1x1_ref(a_half, w, s.c, (size_t)m, o) + bias[(size_t)o] +
                                      z[(size_t)(m * s.cout + o)]);
        for (int splits = 1; splits <= s.k_steps(); splits++) {
            INFO("hw " << s.hw << " radix " << s.radix << " C " << s.c << " Cout " << s.cout << " pool k"
                       << s.pool.k << " in " << s.pool.in_h << "x" << s.pool.in_w << ", " << splits << " splits");
            const int tile_elems = kCombineTileM * kCombineTileN;
            std::vector<float> partial((size_t)s.partial_offset(splits, 0), std::nanf(""));
            std::vector<int> slot_writes((size_t)splits * s.tiles(), 0);
            for (int tn = 0; tn < s.tiles_n(); tn++)
                for (int tm = 0; tm < s.tiles_m(); tm++)
                    for (int q = 0; q < splits; q++) {
                        const long long slot = s.partial_offset(q, s.tile_index(tm, tn));
                        REQUIRE(slot % tile_elems == 0);
                        slot_writes[(size_t)(slot / tile_elems)]++;
                        int b = 0, e = 0;
                        s.split_range(q, splits, &b, &e);
                        for (int row = 0; row < kCombineTileM; row++) {
                            const long long m = (long long)tm * kCombineTileM + row;
                            for (int col = 0; col < kCombineTileN; col++) {
                                float acc = 0.0f;
                                for (int k = b * kCombineTileK; k < e * kCombineTileK && m < s.m(); k++) {
                                    float a = 0.0f;
                                    for (int r = 0; r < s.radix; r++)
                                        a += attn[(size_t)s.attn_offset(m / s.hw, r, k)] * u_at(m, r, k);
                                    acc += round_half(a) * w[(size_t)s.w_offset(tn * kCombineTileN + col, k)];
                                }
                                partial[(size_t)(slot + row * kCombineTileN + col)] = acc;
                            }
                        }
                    }
            CHECK(std::count(slot_writes.begin(), slot_writes.end(), 1) == (long)slot_writes.size());
            std::vector<float> y((size_t)(s.m() * s.cout), std::nanf(""));
            std::vector<int> writes(y.size(), 0);
            for (int tn = 0; tn < s.tiles_n(); tn++)
                for (int tm = 0; tm < s.tiles_m(); tm++)
                    for (int row = 0; row < kCombineTileM; row++) {
                        const long long m = (long long)tm * kCombineTileM + row;
                        if (m >= s.m()) continue;
                        for (int col = 0; col < kCombineTileN; col++) {
                            float sum = 0.0f;
                            for (int q = 0; q < splits; q++)
                                sum += partial[(size_t)(s.partial_offset(q, s.tile_index(tm, tn)) +
                                                        row * kCombineTileN + col)];
                            const int o = tn * kCombineTileN + col;
                            const long long at = s.y_offset(m, o);
                            y[(size_t)at] = std::max(sum + bias[(size_t)o] + z[(size_t)at], 0.0f);
                            writes[(size_t)at]++;
                        }
                    }
            CHECK(std::count(writes.begin(), writes.end(), 1) == (long)writes.size());
            CHECK(lab::max_rel_error(y, ref) < 1e-5);
        }
    }
}
