// bench_stats.h: latency statistics for `resnest bench`: min, percentiles (linear interpolation between
// closest ranks, numpy's default), mean, and the throughput and arithmetic rate they imply.
#pragma once
#include <cstdint>
#include <vector>

namespace resnest {

struct LatencyStats {
    int count = 0;
    double min_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, mean_ms = 0, max_ms = 0;
};

// q in [0, 1]; samples need not be sorted. Throws resnest::Error on an empty list.
double percentile(std::vector<double> samples, double q);
LatencyStats summarize_latencies(const std::vector<double>& samples_ms);

// Images per second at a per-batch latency.
double images_per_second(int batch, double latency_ms);
// Achieved TFLOP/s: 2 FLOPs per multiply-accumulate.
double achieved_tflops(int64_t macs_per_image, int batch, double latency_ms);

}  // namespace resnest
