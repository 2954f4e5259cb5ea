// pool_window.cuh: which output cell a thread of a pooling kernel computes, the input window of that cell,
// clipped to the input, and the divisor of the average by PyTorch's rule: the window clipped to the padded input (count_include_pad) or the valid
// cells only. Shared by pool2d_nhwc.cu and the avd-pooled split attention combine. Device code only.
#pragma once
#include "pool2d_nhwc.cuh"

namespace resnest {

// Element i of y (N, OH, OW, C/V): a thread's output cell and its group of V channels.
struct PoolCell {
    long long n;
    int oy, ox;
    int c;  // first channel of the group
};

__device__ __forceinline__ PoolCell pool_cell(long long i, const Pool2dShape& s, int v) {
    const int groups = s.channels / v;
    PoolCell cell;
    cell.c = (int)(i % groups) * v;
    long long rest = i / groups;
    cell.ox = (int)(rest % s.out_w);
    rest /= s.out_w;
    cell.oy = (int)(rest % s.out_h);
    cell.n = rest / s.out_h;
    return cell;
}

struct PoolWindow {
    int y0, y1, x0, x1;  // input rows [y0, y1) and columns [x0, x1)
    int divisor;         // for the average
};

__device__ __forceinline__ PoolWindow pool_window(const Pool2dShape& s, int oy, int ox) {
    const int ys = oy * s.stride_h - s.pad_h, xs = ox * s.stride_w - s.pad_w;
    PoolWindow w;
    w.y0 = max(ys, 0), w.y1 = min(ys + s.kernel_h, s.in_h);
    w.x0 = max(xs, 0), w.x1 = min(xs + s.kernel_w, s.in_w);
    w.divisor = s.count_include_pad
                    ? (min(ys + s.kernel_h, s.in_h + s.pad_h) - ys) * (min(xs + s.kernel_w, s.in_w + s.pad_w) - xs)
                    : (w.y1 - w.y0) * (w.x1 - w.x0);
    return w;
}

}  // namespace resnest
