// test_bench_stats.cpp: benchmark statistics against values worked out by hand.
#include <catch2/catch.hpp>

#include "bench_stats.h"
#include "resnest/error.h"

using namespace resnest;

TEST_CASE("percentiles interpolate linearly between closest ranks", "[bench]") {
    // Sorted: 1 2 3 4 10. Rank q*(n-1): p50 -> 2 -> 3; p90 -> 3.6 -> 4 + 0.6*6 = 7.6; p99 -> 3.96 -> 9.76.
    std::vector<double> v = {4, 1, 10, 3, 2};
    CHECK(percentile(v, 0.5) == Approx(3.0));
    CHECK(percentile(v, 0.9) == Approx(7.6));
    CHECK(percentile(v, 0.99) == Approx(9.76));
    CHECK(percentile(v, 0.0) == 1.0);
    CHECK(percentile(v, 1.0) == 10.0);
    CHECK(percentile({7.5}, 0.99) == 7.5);
    REQUIRE_THROWS_AS(percentile({}, 0.5), Error);
}

TEST_CASE("latency summary, throughput and TFLOP/s", "[bench]") {
    LatencyStats s = summarize_latencies({2.0, 4.0, 6.0, 8.0});
    CHECK(s.count == 4);
    CHECK(s.min_ms == 2.0);
    CHECK(s.max_ms == 8.0);
    CHECK(s.mean_ms == Approx(5.0));
    CHECK(s.p50_ms == Approx(5.0));
    CHECK(s.p90_ms == Approx(7.4));
    // 8 images in 2 ms: 4000 img/s; ResNeSt50's 5.371e9 MACs per image at 4000 img/s: 42.97 TFLOP/s.
    CHECK(images_per_second(8, 2.0) == Approx(4000.0));
    CHECK(achieved_tflops(5371160576, 8, 2.0) == Approx(2.0 * 5371160576 * 4000 / 1e12));
}
