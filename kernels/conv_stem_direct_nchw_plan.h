// conv_stem_direct_nchw_plan.h: the problem of kernels/conv_stem_direct_nchw.cu (the stem's first
// convolution computed directly from the network's NCHW float input, so the layout conversion before it does
// not run) and how its threads divide the output. Plain C++ where not compiled by nvcc, so it is
// unit-tested on any machine (tests/unit/test_stem_conv_plan.cpp).
#pragma once
#include <cstddef>

#ifdef __CUDACC__
#define RESNEST_STEM_HOST_DEVICE __host__ __device__
#else
#define RESNEST_STEM_HOST_DEVICE
#endif

namespace resnest {

constexpr int kStemChannelsPerThread = 8;     // output channels a thread computes (one 16-byte half store)
constexpr int kStemMaxInputChannels = 8;      // the network's input: RGB, at most padded to 8
constexpr size_t kStemMaxFilterBytes = 48 * 1024;  // the filter as float in shared memory

// x (N, C, H, W) float -> y (N, OH, OW, Cout) = relu?(conv(x, w) + bias): a square k x k window, stride,
// padding, one group. w (Cout, k, k, Cp) as the graph stores it in NHWC filter order, Cp >= C the input's
// padded channel count (pad_input_channels; its channels past C are zero and not read).
struct StemConvShape {
    int n, c, h, w;
    int cin_padded, cout, k, stride, pad, oh, ow;

    RESNEST_STEM_HOST_DEVICE long long x_offset(long long image, int ch, int iy, int ix) const {
        return ((image * c + ch) * h + iy) * w + ix;
    }
    RESNEST_STEM_HOST_DEVICE long long w_offset(int o, int ky, int kx, int ch) const {
        return ((long long)(o * k + ky) * k + kx) * cin_padded + ch;
    }
    // The filter as the kernel holds it in shared memory: (Cout, k, k, C) float, the real channels only.
    RESNEST_STEM_HOST_DEVICE int filter_index(int o, int ky, int kx, int ch) const {
        return ((o * k + ky) * k + kx) * c + ch;
    }
    RESNEST_STEM_HOST_DEVICE long long y_offset(long long image, int oy, int ox, int o) const {
        return ((image * oh + oy) * ow + ox) * cout + o;
    }
    // Thread t computes channels [*o0, *o0 + 8) of one output cell; consecutive threads take a cell's
    // channel groups, then the next cell.
    RESNEST_STEM_HOST_DEVICE long long threads() const {
        return (long long)n * oh * ow * (cout / kStemChannelsPerThread);
    }
    RESNEST_STEM_HOST_DEVICE void thread_cell(long long t, long long* image, int* oy, int* ox, int* o0) const {
        const int groups = cout / kStemChannelsPerThread;
        *o0 = (int)(t % groups) * kStemChannelsPerThread;
        long long cell = t / groups;
        *ox = (int)(cell % ow);
        cell /= ow;
        *oy = (int)(cell % oh);
        *image = cell / oh;
    }
    size_t filter_bytes() const { return (size_t)cout * k * k * c * sizeof(float); }
    // The kernel's requirements: 1..8 real input channels within the padded ones, whole 8-channel groups
    // out, a window of at most 7 that every output cell overlaps, the filter within shared memory.
    bool fits() const {
        return n >= 1 && c >= 1 && c <= kStemMaxInputChannels && cin_padded >= c && h >= 1 && w >= 1 &&
               cout >= kStemChannelsPerThread && cout % kStemChannelsPerThread == 0 && k >= 1 && k <= 7 &&
               stride >= 1 && pad >= 0 && pad < k && oh >= 1 && ow >= 1 && (oh - 1) * stride - pad < h &&
               (ow - 1) * stride - pad < w && filter_bytes() <= kStemMaxFilterBytes;
    }
};

}  // namespace resnest
