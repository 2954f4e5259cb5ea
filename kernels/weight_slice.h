// weight_slice.h: weights a kernel asks L2 for before it waits on the kernel before it (kernel_common.cuh):
// - WeightSlice: the weights one block of a tiled kernel reads, as equal runs of a row-major matrix
//   (prefetch_l2_rows; the host tests, tests/unit/test_weight_prefetch.cpp, check them against the block's
//   own loads);
// - L2Prefetch: the filters of the library calls after a kernel (cuDNN, cuBLASLt, which cannot ask for their
//   own), which the kernel's whole grid asks for on their behalf (prefetch_l2_across_grid).
// Plain C++.
#pragma once

namespace resnest {

// rows runs of row_elems elements, the first at element `first`, each `pitch` elements after the last.
struct WeightSlice {
    long long first;
    long long pitch;
    int rows;
    long long row_elems;
};

// Up to kL2PrefetchRanges runs of bytes; ptr null from the first unused one on. A kernel parameter.
constexpr int kL2PrefetchRanges = 3;
struct L2Prefetch {
    const void* ptr[kL2PrefetchRanges] = {};
    long long bytes[kL2PrefetchRanges] = {};
};

}  // namespace resnest
