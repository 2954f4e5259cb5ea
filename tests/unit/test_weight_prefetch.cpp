// test_weight_prefetch.cpp: the weights a block of our tiled GEMM kernels asks L2 for before it waits on the
// kernel before it (kernels/weight_slice.h: ImplicitConv3x3Shape::b_slice, CombineConv1x1Shape::w_slice),
// checked on the CPU against the block's own loads: the same elements, no more, none missed, inside the
// filter, and in runs the sm_90 bulk prefetch takes whole (16-byte aligned, whole 16 bytes, given the
// 16-byte aligned filter the launchers require).
#include <catch2/catch.hpp>

#include <set>
#include <vector>

#include "conv3x3_implicit_gemm_geometry.h"
#include "split_attention_combine_conv1x1_plan.h"

using namespace resnest;

namespace {

std::set<long long> slice_elements(const WeightSlice& s) {
    std::set<long long> out;
    for (int r = 0; r < s.rows; r++)
        for (long long e = 0; e < s.row_elems; e++) out.insert(s.first + r * s.pitch + e);
    return out;
}

// A block's filter loads over K steps [begin, end), as both kernels' K loops make them: per step of 32,
// thread pieces v = 0..255 copy 8 halves at offset(row v / 4 of the N tile, column step * 32 + (v % 4) * 8).
// They must be exactly the slice's elements, inside the filter's `filter` elements, and the slice in runs of
// whole 16 bytes at 16-byte offsets (for 2-byte elements), which the sm_90 bulk prefetch takes.
template <typename Offset>
void check_slice_is_the_loads(const WeightSlice& slice, int begin, int end, long long filter, Offset offset) {
    std::set<long long> loaded;
    for (int step = begin; step < end; step++)
        for (int v = 0; v < 256; v++)
            for (int j = 0; j < 8; j++) loaded.insert(offset(v / 4, step * 32 + (v % 4) * 8) + j);
    const std::set<long long> asked = slice_elements(slice);
    CHECK(asked == loaded);
    CHECK(*asked.begin() >= 0);
    CHECK(*asked.rbegin() < filter);
    CHECK(slice.first * 2 % 16 == 0);
    CHECK(slice.pitch * 2 % 16 == 0);
    CHECK(slice.row_elems * 2 % 16 == 0);
    CHECK(slice.row_elems > 0);
}

}  // namespace

TEST_CASE("the implicit-GEMM convolution's blocks ask L2 for exactly the filter their K steps load",
          "[kernel-plan]") {
    // The loads are the kernel's load_stage: per K step, thread t's pieces v = t and t + 128 copy 8 halves of
    // B at b_offset(g, step * 32 + (v % 4) * 8, n0 + v / 4).
    static_assert(kImplicitTileK == 32 && kImplicitTileN == 64, "check_slice_is_the_loads's tile");
    using Shape3x3 = ImplicitConv3x3Shape;
    for (Shape3x3 s : {Shape3x3{1, 7, 7, 512, 1024, 2}, Shape3x3{2, 5, 7, 64, 128, 2}, Shape3x3{1, 3, 3, 96, 64, 1},
                       Shape3x3{1, 4, 4, 64, 192, 1}}) {
        REQUIRE(s.fits());
        const long long filter = (long long)s.cout * s.k();
        for (int splits : {1, 2, 3, 4}) {
            if (splits > s.k_steps()) continue;
            for (int g = 0; g < s.groups; g++)
                for (int tn = 0; tn < s.tiles_n(); tn++)
                    for (int q = 0; q < splits; q++) {
                        INFO("cin " << s.cin << " cout " << s.cout << " groups " << s.groups << ", group " << g
                                    << " N tile " << tn << ", split " << q << " of " << splits);
                        int b = 0, e = 0;
                        s.split_range(q, splits, &b, &e);
                        check_slice_is_the_loads(s.b_slice(g, tn, b, e), b, e, filter, [&](int row, int col) {
                            return s.b_offset(g, col, tn * kImplicitTileN + row);
                        });
                    }
        }
    }
}

TEST_CASE("the combine + 1x1 convolution kernel's blocks ask L2 for exactly the rows of W their K steps load",
          "[kernel-plan]") {
    // The loads are the kernel's load_w: per K step, thread t's pieces v = t and t + 128 copy 8 halves of W at
    // w_offset(n0 + v / 4, step * 32 + (v % 4) * 8). The slice does not depend on the pool or the gates.
    static_assert(kCombineTileK == 32 && kCombineTileN == 64, "check_slice_is_the_loads's tile");
    using Shape = CombineConv1x1Shape;
    for (Shape s : {Shape{1, 49, 2, 512, 2048}, Shape{2, 37, 1, 96, 128}, Shape{1, 9, 2, 32, 64}}) {
        REQUIRE(s.fits());
        const long long filter = (long long)s.cout * s.c;
        for (int splits = 1; splits <= s.k_steps() && splits <= 5; splits++)
            for (int tn = 0; tn < s.tiles_n(); tn++)
                for (int q = 0; q < splits; q++) {
                    INFO("C " << s.c << " Cout " << s.cout << ", N tile " << tn << ", split " << q << " of " << splits);
                    int b = 0, e = 0;
                    s.split_range(q, splits, &b, &e);
                    check_slice_is_the_loads(s.w_slice(tn, b, e), b, e, filter,
                                             [&](int row, int col) { return s.w_offset(tn * kCombineTileN + row, col); });
                }
    }
}
