// lab_reference.h: the double-precision CPU references the kernel labs (kernels/lab/*_lab.cu) check every
// version against, in the kernels' own layouts (NHWC; U's channels radix-major: split r holds r*C..r*C+C-1).
// Plain C++. tests/unit/test_lab_references.cpp checks each against the runtime's CPU oracle (runtime/cpu),
// so a lab's verdict rests on checked arithmetic.
#pragma once
#include <algorithm>
#include <cmath>
#include <vector>

namespace lab {

// u (N, HW, R*C) -> (N, C): gap[n, c] = mean_p sum_r u[n, p, r*C + c].
inline std::vector<double> split_attention_pool_ref(const std::vector<float>& u, int n, int hw, int radix, int c) {
    std::vector<double> gap((size_t)n * c, 0.0);
    for (int b = 0; b < n; b++)
        for (int p = 0; p < hw; p++)
            for (int r = 0; r < radix; r++)
                for (int ch = 0; ch < c; ch++)
                    gap[(size_t)b * c + ch] += u[(((size_t)b * hw + p) * radix + r) * c + ch];
    for (double& v : gap) v /= hw;
    return gap;
}

// The gate: gap (N, C) -> attn (N, R*C), radix-major. fc1 (inter, C/K) with BN folded in, b1 (inter);
// fc2 (R*C, inter/K) with rows cardinal-major (k*(R*gk) + r*gk + c'), b2 (R*C).
// attn[n, r*C + k*gk + c'] = softmax over r of z[k*(R*gk) + r*gk + c'] (sigmoid when R = 1).
inline std::vector<double> split_attention_gate_ref(const std::vector<double>& gap, const std::vector<float>& w1,
                                                    const std::vector<float>& b1, const std::vector<float>& w2,
                                                    const std::vector<float>& b2, int n, int radix, int card, int c,
                                                    int inter) {
    const int gk = c / card, ik = inter / card, rc = radix * c;
    std::vector<double> attn((size_t)n * rc);
    std::vector<double> hidden(inter), z(rc);
    for (int b = 0; b < n; b++) {
        const double* pooled = gap.data() + (size_t)b * c;
        for (int j = 0; j < inter; j++) {
            double s = b1[j];
            for (int i = 0; i < gk; i++) s += (double)w1[(size_t)j * gk + i] * pooled[(j / ik) * gk + i];
            hidden[j] = std::max(s, 0.0);
        }
        for (int j = 0; j < rc; j++) {
            double s = b2[j];
            for (int i = 0; i < ik; i++) s += (double)w2[(size_t)j * ik + i] * hidden[(j / (radix * gk)) * ik + i];
            z[j] = s;
        }
        double* out = attn.data() + (size_t)b * rc;
        for (int k = 0; k < card; k++)
            for (int cp = 0; cp < gk; cp++) {
                const int t = k * gk + cp;
                if (radix == 1) {
                    out[t] = 1.0 / (1.0 + std::exp(-z[t]));
                    continue;
                }
                double m = -INFINITY, total = 0.0;
                for (int r = 0; r < radix; r++) m = std::max(m, z[k * radix * gk + r * gk + cp]);
                for (int r = 0; r < radix; r++) total += std::exp(z[k * radix * gk + r * gk + cp] - m);
                for (int r = 0; r < radix; r++) out[r * c + t] = std::exp(z[k * radix * gk + r * gk + cp] - m) / total;
            }
    }
    return attn;
}

// Window of output cell (oy, ox) and PyTorch's divisor: the window clipped to the padded input
// (count_include_pad) or the valid cells only.
struct PoolGeometry {
    int h, w, k, stride, pad;
    bool include_pad;
    int oh, ow;
};
inline void pool_window(const PoolGeometry& g, int oy, int ox, int* y0, int* y1, int* x0, int* x1, int* divisor) {
    const int ys = oy * g.stride - g.pad, xs = ox * g.stride - g.pad;
    *y0 = std::max(ys, 0), *y1 = std::min(ys + g.k, g.h), *x0 = std::max(xs, 0), *x1 = std::min(xs + g.k, g.w);
    *divisor = g.include_pad ? (std::min(ys + g.k, g.h + g.pad) - ys) * (std::min(xs + g.k, g.w + g.pad) - xs)
                             : (*y1 - *y0) * (*x1 - *x0);
}

// x (N, H, W, C) -> (N, OH, OW, C): max (padded cells never win) or average. T: float or double input.
template <typename T>
std::vector<double> pool2d_nhwc_ref(const std::vector<T>& x, int n, int c, const PoolGeometry& g, bool is_max) {
    std::vector<double> y((size_t)n * g.oh * g.ow * c);
    for (int b = 0; b < n; b++)
        for (int oy = 0; oy < g.oh; oy++)
            for (int ox = 0; ox < g.ow; ox++) {
                int y0, y1, x0, x1, divisor;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1, &divisor);
                for (int ch = 0; ch < c; ch++) {
                    double acc = is_max ? -INFINITY : 0.0;
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) {
                            double v = x[(((size_t)b * g.h + iy) * g.w + ix) * c + ch];
                            acc = is_max ? std::max(acc, v) : acc + v;
                        }
                    y[(((size_t)b * g.oh + oy) * g.ow + ox) * c + ch] = is_max ? acc : acc / divisor;
                }
            }
    return y;
}

// The weighted radix sum: u (N, HW, R*C), attn (N, R*C) -> (N, HW, C).
inline std::vector<double> split_attention_combine_ref(const std::vector<float>& u, const std::vector<float>& attn,
                                                       int n, int hw, int radix, int c) {
    std::vector<double> y((size_t)n * hw * c, 0.0);
    for (int b = 0; b < n; b++)
        for (int p = 0; p < hw; p++)
            for (int r = 0; r < radix; r++)
                for (int ch = 0; ch < c; ch++)
                    y[((size_t)b * hw + p) * c + ch] += (double)attn[((size_t)b * radix + r) * c + ch] *
                                                        u[(((size_t)b * hw + p) * radix + r) * c + ch];
    return y;
}

// The weighted radix sum followed by average pooling (g.h, g.w: U's size) -> (N, OH, OW, C).
inline std::vector<double> split_attention_combine_avg_pool_ref(const std::vector<float>& u,
                                                                const std::vector<float>& attn, int n, int radix, int c,
                                                                const PoolGeometry& g) {
    return pool2d_nhwc_ref(split_attention_combine_ref(u, attn, n, g.h * g.w, radix, c), n, c, g, false);
}

// The classifier: x (N, in), w (out, in), bias (out) or empty -> y (N, out) = x w^T + bias.
inline std::vector<double> linear_ref(const std::vector<float>& x, const std::vector<float>& w,
                                      const std::vector<float>& bias, int n, int in, int out) {
    std::vector<double> y((size_t)n * out);
    for (int b = 0; b < n; b++)
        for (int o = 0; o < out; o++) {
            double s = bias.empty() ? 0.0 : bias[o];
            for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[(size_t)b * in + i];
            y[(size_t)b * out + o] = s;
        }
    return y;
}

// One output of a 3x3, stride-1, pad-1 convolution with `groups` groups, in double: x (N, H, W, Cin) NHWC,
// w (Cout, 3, 3, Cin/groups); output channel o of image n at (oy, ox).
inline double grouped_conv3x3_ref(const std::vector<float>& x, const std::vector<float>& w, int h, int wd, int cin,
                                  int cout, int groups, int n, int oy, int ox, int o) {
    const int cin_g = cin / groups, g = o / (cout / groups);
    double acc = 0.0;
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const int iy = oy - 1 + ky, ix = ox - 1 + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
            const float* xp = &x[(((size_t)n * h + iy) * wd + ix) * cin + (size_t)g * cin_g];
            const float* wp = &w[(((size_t)o * 3 + ky) * 3 + kx) * cin_g];
            for (int c = 0; c < cin_g; c++) acc += (double)xp[c] * wp[c];
        }
    return acc;
}

// One output of a 1x1 convolution (stride 1, no padding, no groups): x (pixels, cin) NHWC flattened over
// (N, H, W), w (cout, cin). Returns y[pixel][o] in double.
inline double conv1x1_ref(const std::vector<float>& x, const std::vector<float>& w, int cin, size_t pixel, int o) {
    const float* xp = &x[pixel * cin];
    const float* wp = &w[(size_t)o * cin];
    double acc = 0.0;
    for (int c = 0; c < cin; c++) acc += (double)xp[c] * wp[c];
    return acc;
}

// max |got - ref| / max |ref|; infinity when got holds a NaN or an infinity, or the sizes differ.
inline double max_rel_error(const std::vector<float>& got, const std::vector<double>& ref) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < got.size() && i < ref.size(); i++) {
        if (!std::isfinite(got[i])) return INFINITY;
        num = std::max(num, std::fabs(got[i] - ref[i]));
        den = std::max(den, std::fabs(ref[i]));
    }
    if (got.size() != ref.size()) return INFINITY;
    return den > 0.0 ? num / den : num;
}

}  // namespace lab
