// channel_affine.cuh: the per-channel elementwise op of an NHWC (or (N, C)) tensor that every unfused
// batch norm, ReLU, residual add and bias epilogue reduces to:
//   y[i] = act(x[i] * scale[c] + shift[c] + z[i]),  c = i mod C
// scale, shift and z may each be null (1, 0, 0); act is ReLU or identity. y may alias x or z.
#pragma once
#include <cuda_runtime.h>

#include "kernel_stream.h"

namespace resnest {

template <typename T>
void channel_affine_activation(const T* x, const float* scale, const float* shift, const T* z, T* y, long long count,
                               int channels, bool relu, KernelStream stream);

}  // namespace resnest
