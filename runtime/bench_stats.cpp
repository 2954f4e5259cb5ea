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
