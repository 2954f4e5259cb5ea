// cpu_elementwise.cpp: inference batch norm (per-channel affine), ReLU, residual add and softmax on the CPU.
#include <algorithm>
#include <cmath>

#include "cpu/cpu_ops.h"

namespace resnest {

void batch_norm_affine(const float* x, const float* scale, const float* shift, int64_t channels, int64_t hw,
                       float* y) {
    for (int64_t c = 0; c < channels; c++) {
        float s = scale[c], b = shift[c];
        for (int64_t p = 0; p < hw; p++) y[c * hw + p] = x[c * hw + p] * s + b;
    }
}

void relu_inplace(float* x, int64_t count) {
    // x > 0 ? x : 0 keeps NaN as NaN (std::max(0, NaN) would hide it).
    for (int64_t i = 0; i < count; i++) x[i] = x[i] > 0.f ? x[i] : (x[i] != x[i] ? x[i] : 0.f);
}

void add_tensors(const float* a, const float* b, float* y, int64_t count) {
    for (int64_t i = 0; i < count; i++) y[i] = a[i] + b[i];
}

void softmax_vector(const float* x, int64_t count, float* y) {
    double m = -INFINITY;
    for (int64_t i = 0; i < count; i++) m = std::max(m, (double)x[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < count; i++) sum += std::exp((double)x[i] - m);
    for (int64_t i = 0; i < count; i++) y[i] = (float)(std::exp((double)x[i] - m) / sum);
}

}  // namespace resnest
