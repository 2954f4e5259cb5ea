// cpu_split_attention.cpp: the split-attention op on the CPU, written step by step after the shared spec §3.
//
// Channel orders (R = radix, K = cardinality, gk = channels / K):
//   U (input)       radix-major:      channel (r*K + k)*gk + c' (split r: channels [r*C, (r+1)*C), one
//                                     plane of C channels, in U or apart)
//   fc2 output z    cardinal-major:   channel k*(R*gk) + r*gk + c'
//   output          channel k*gk + c'
// The radix softmax runs over r for each (k, c'); with R = 1 the gate is sigmoid(z).
#include <cmath>
#include <vector>

#include "cpu/cpu_ops.h"

namespace resnest {

void split_attention(const SplitAttentionAttrs& a, const SplitAttentionWeights& w, const float* u, int64_t hw,
                     float* y) {
    std::vector<const float*> splits(a.radix);  // split r: U's channels [r*C, (r+1)*C)
    for (int r = 0; r < a.radix; r++) splits[r] = u + (int64_t)r * a.channels * hw;
    split_attention(a, w, splits.data(), hw, y);
}

void split_attention(const SplitAttentionAttrs& a, const SplitAttentionWeights& w, const float* const* splits,
                     int64_t hw, float* y) {
    const int R = a.radix, K = a.cardinality, C = a.channels, inter = a.inter_channels;
    const int gk = C / K, ik = inter / K;

    // 1-2. Sum the radix splits and average over space: s (C).
    std::vector<double> s(C, 0.0);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            const float* plane = splits[r] + (int64_t)c * hw;
            double sum = 0.0;
            for (int64_t p = 0; p < hw; p++) sum += plane[p];
            s[c] += sum;
        }
    for (int c = 0; c < C; c++) s[c] /= (double)hw;

    // 3. fc1 (grouped by K) -> BN -> ReLU: h (inter).
    std::vector<double> h(inter);
    for (int k = 0; k < K; k++)
        for (int o = 0; o < ik; o++) {
            int j = k * ik + o;
            double sum = w.fc1_bias ? w.fc1_bias[j] : 0.0;
            for (int c = 0; c < gk; c++) sum += (double)w.fc1_weight[(int64_t)j * gk + c] * s[k * gk + c];
            double v = sum * w.bn_scale[j] + w.bn_shift[j];
            h[j] = v > 0.0 ? v : 0.0;
        }

    // 4. fc2 (grouped by K): z (R*C), cardinal-major.
    std::vector<double> z((size_t)R * C);
    const int per_group = R * gk;
    for (int k = 0; k < K; k++)
        for (int o = 0; o < per_group; o++) {
            int j = k * per_group + o;
            double sum = w.fc2_bias[j];
            for (int i = 0; i < ik; i++) sum += (double)w.fc2_weight[(int64_t)j * ik + i] * h[k * ik + i];
            z[j] = sum;
        }

    // 5-6. Gate each split and sum: y[k*gk + c'] = sum_r attn(r, k, c') * U[(r*K + k)*gk + c'].
    std::vector<double> attn(R);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < gk; c++) {
            if (R == 1) {
                attn[0] = 1.0 / (1.0 + std::exp(-z[k * gk + c]));
            } else {
                double m = -INFINITY;
                for (int r = 0; r < R; r++) m = std::fmax(m, z[k * per_group + r * gk + c]);
                double total = 0.0;
                for (int r = 0; r < R; r++) total += (attn[r] = std::exp(z[k * per_group + r * gk + c] - m));
                for (int r = 0; r < R; r++) attn[r] /= total;
            }
            float* out = y + (int64_t)(k * gk + c) * hw;
            for (int64_t p = 0; p < hw; p++) {
                double sum = 0.0;
                for (int r = 0; r < R; r++) sum += attn[r] * splits[r][((int64_t)k * gk + c) * hw + p];
                out[p] = (float)sum;
            }
        }
}

}  // namespace resnest
