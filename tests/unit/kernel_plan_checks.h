// kernel_plan_checks.h: checks shared by the unit tests of the split-K kernels' host plans
// (test_kernel_plans.cpp, test_combine_conv_plan.cpp).
#pragma once
#include <catch2/catch.hpp>

namespace test {

// A split-K kernel's `splits` ranges of K steps (Shape::split_range) are contiguous, non-empty, in order,
// and cover every step once.
template <typename Shape>
void check_split_ranges(const Shape& s, int splits) {
    int expect_begin = 0;
    for (int q = 0; q < splits; q++) {
        int b = 0, e = 0;
        s.split_range(q, splits, &b, &e);
        CHECK(b == expect_begin);
        CHECK(e > b);
        expect_begin = e;
    }
    CHECK(expect_begin == s.k_steps());
}

}  // namespace test
