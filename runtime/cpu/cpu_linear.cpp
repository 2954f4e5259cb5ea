// cpu_linear.cpp: the fully connected classifier on the CPU, one image, double accumulation.
#include "cpu/cpu_ops.h"

namespace resnest {

void linear(const LinearAttrs& a, const float* x, const float* w, const float* bias, float* y) {
    for (int o = 0; o < a.out_features; o++) {
        double sum = bias ? bias[o] : 0.0;
        const float* row = w + (int64_t)o * a.in_features;
        for (int i = 0; i < a.in_features; i++) sum += (double)row[i] * x[i];
        y[o] = (float)sum;
    }
}

}  // namespace resnest
