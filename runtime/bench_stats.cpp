// bench_stats.cpp: latency percentiles and rates for `resnest bench` (see bench_stats.h).
#include "bench_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "resnest/error.h"

namespace resnest {

double percentile(std::vector<double> samples, double q) {
    if (samples.empty()) throw Error("percentile of no samples");
    std::sort(samples.begin(), samples.end());
    double rank = q * (double)(samples.size() - 1);
    size_t lo = (size_t)std::floor(rank), hi = (size_t)std::ceil(rank);
    return samples[lo] + (samples[hi] - samples[lo]) * (rank - (double)lo);
}

LatencyStats summarize_latencies(const std::vector<double>& samples_ms) {
    if (samples_ms.empty()) throw Error("no latency samples to summarize");
    LatencyStats s;
    s.count = (int)samples_ms.size();
    s.min_ms = *std::min_element(samples_ms.begin(), samples_ms.end());
    s.max_ms = *std::max_element(samples_ms.begin(), samples_ms.end());
    s.p50_ms = percentile(samples_ms, 0.50);
    s.p90_ms = percentile(samples_ms, 0.90);
    s.p99_ms = percentile(samples_ms, 0.99);
    s.mean_ms = std::accumulate(samples_ms.begin(), samples_ms.end(), 0.0) / (double)s.count;
    return s;
}

double images_per_second(int batch, double latency_ms) { return batch / (latency_ms * 1e-3); }

double achieved_tflops(int64_t macs_per_image, int batch, double latency_ms) {
    return 2.0 * (double)macs_per_image * batch / (latency_ms * 1e-3) / 1e12;
}

}  // namespace resnest

namespace resnest {

double card_peak_tflops(const std::string& card, const std::string& precision) {
    bool hopper = card.find("H100") != std::string::npos || card.find("H200") != std::string::npos;
    if (!hopper) return 0.0;
    if (precision == "fp32") return 66.9;
    if (precision == "tf32") return 494.7;
    if (precision == "fp16") return 989.4;
    return 0.0;
}

double card_peak_bandwidth_tbs(const std::string& card) {
    if (card.find("H200") != std::string::npos) return 4.8;
    if (card.find("H100") != std::string::npos) return 3.35;
    return 0.0;
}

double roofline_floor_ms(double flops, double bytes, double peak_tflops, double peak_tbs) {
    if (peak_tflops <= 0.0 || peak_tbs <= 0.0) return 0.0;
    double compute_ms = flops / (peak_tflops * 1e12) * 1e3;
    double memory_ms = bytes / (peak_tbs * 1e12) * 1e3;
    return compute_ms > memory_ms ? compute_ms : memory_ms;
}

}  // namespace resnest
