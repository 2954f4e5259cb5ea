// bench_stats.h: latency statistics for `resnest bench`: min, percentiles (linear interpolation between
// closest ranks, numpy's default), mean, and the throughput and arithmetic rate they imply.
#pragma once
#include <cstdint>
#include <string>
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

namespace resnest {

// Datasheet peaks of the cards the project is measured on (dense, no sparsity), matched by name:
// H100 SXM and H200: fp32 66.9, tf32 494.7, fp16 989.4 TFLOP/s; H100 SXM 3.35 TB/s, H200 4.8 TB/s.
// 0 for a card or precision not in the table. precision: "fp32", "tf32" or "fp16".
double card_peak_tflops(const std::string& card, const std::string& precision);
double card_peak_bandwidth_tbs(const std::string& card);

// The least time a run can take: its FLOPs at the peak rate or its bytes at the peak bandwidth, whichever
// is longer, ms; 0 when either peak is unknown.
double roofline_floor_ms(double flops, double bytes, double peak_tflops, double peak_tbs);

}  // namespace resnest
