// weight_slice.h: the weights one block of a tiled kernel reads, as equal runs of a row-major matrix: what
// the block asks L2 for before it waits on the kernel before it (kernel_common.cuh, prefetch_l2_rows), and
// what the host tests (tests/unit/test_weight_prefetch.cpp) check against the block's own loads. Plain C++.
#pragma once

namespace resnest {

// rows runs of row_elems elements, the first at element `first`, each `pitch` elements after the last.
struct WeightSlice {
    long long first;
    long long pitch;
    int rows;
    long long row_elems;
};

}  // namespace resnest
