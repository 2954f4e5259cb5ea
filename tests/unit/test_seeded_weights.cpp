// test_seeded_weights.cpp: the engine's seeded weights are bit-identical to the files
// weights_tools/random_weights.py wrote for the committed tiny fixtures (same seed, every role), drawn a
// tensor a thread by parallel_for_each_index, which is checked here too (errors, several callers, nesting).
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <nlohmann/json.hpp>

#include "graph.h"
#include "parallel_for.h"
#include "resnest/engine.h"
#include "safetensors.h"
#include "seeded_weights.h"
#include "test_helpers.h"

using namespace resnest;

TEST_CASE("seeded weights equal random_weights.py's bytes for every tiny fixture", "[seeded]") {
    const nlohmann::json manifest =
        nlohmann::json::parse(test::read_text(test::source_path("tests/fixtures/fixtures.json")));
    int checked = 0;
    for (const auto& fx : manifest["fixtures"]) {
        if (fx["kind"].get<std::string>() != "tiny") continue;
        INFO(fx["name"].get<std::string>());
        Graph g = graph_load(test::source_path(fx["graph"].get<std::string>()));
        HostWeights mine = make_seeded_weights(g, fx["weight_seed"].get<uint64_t>());
        auto file = SafetensorsFile::open(test::source_path(fx["weights"].get<std::string>()));
        REQUIRE(mine.tensors.size() == file->tensors().size());
        for (const SafetensorsTensor& t : file->tensors()) {
            INFO(t.name);
            REQUIRE(t.dtype == DType::F32);
            const std::vector<float>& v = mine.tensors.at(t.name);
            REQUIRE(v.size() * sizeof(float) == t.nbytes);
            CHECK(std::memcmp(v.data(), t.data, t.nbytes) == 0);
        }
        checked++;
    }
    CHECK(checked >= 6);
}

TEST_CASE("another seed gives other weights", "[seeded]") {
    std::vector<float> a = seeded_uniform(1, "layer1.0.conv1.weight", 1000, -0.5, 0.5);
    std::vector<float> b = seeded_uniform(2, "layer1.0.conv1.weight", 1000, -0.5, 0.5);
    std::vector<float> c = seeded_uniform(1, "layer1.0.conv2.conv.weight", 1000, -0.5, 0.5);
    CHECK(a != b);
    CHECK(a != c);
    for (float v : a) REQUIRE((v >= -0.5f && v < 0.5f));
}

TEST_CASE("Engine::load_seeded runs like Engine::load on the generated file", "[seeded][engine]") {
    const std::string graph = test::source_path("tests/fixtures/tiny/tiny_r4_k2_torch.json");
    auto from_file = Engine::load(graph, test::source_path("tests/fixtures/tiny/tiny_r4_k2_torch.safetensors"));
    auto seeded = Engine::load_seeded(graph, 106);  // the fixture's weight_seed
    std::vector<float> x = test::random_floats(3 * 98 * 98, -2.f, 2.f);
    std::vector<float> y1(10, NAN), y2(10, NAN);
    from_file->create_context()->run(x.data(), 1, y1.data());
    seeded->create_context()->run(x.data(), 1, y2.data());
    CHECK(y1 == y2);
}

TEST_CASE("parallel_for_each_index runs every index once and rethrows the first error", "[seeded]") {
    for (int threads : {0, 1, 3, 64}) {
        std::vector<std::atomic<int>> hits(1000);
        parallel_for_each_index(1000, [&](int64_t i) { hits[i]++; }, threads);
        int wrong = 0;
        for (auto& h : hits) wrong += h.load() != 1;
        CHECK(wrong == 0);
    }
    parallel_for_each_index(0, [](int64_t) { throw std::runtime_error("never called"); });
    CHECK_THROWS_WITH(parallel_for_each_index(
                          100, [](int64_t i) { if (i == 37) throw std::runtime_error("item 37 failed"); }, 4),
                      "item 37 failed");
    // Several items fail: the lowest index's error, however the threads ran (the later item fails fast,
    // the earlier one only after a while).
    for (int rep = 0; rep < 20; rep++)
        CHECK_THROWS_WITH(parallel_for_each_index(
                              200,
                              [](int64_t i) {
                                  if (i == 3) {
                                      std::this_thread::sleep_for(std::chrono::milliseconds(2));
                                      throw std::runtime_error("item 3 failed");
                                  }
                                  if (i == 5 || i == 150) throw std::runtime_error("a later item failed");
                              },
                              4),
                          "item 3 failed");
}

TEST_CASE("parallel_for_each_index serves several callers at once and calls from inside an item", "[seeded]") {
    // Four threads each make calls whose items make nested calls, through the one shared pool; every
    // index runs once, and each call's own error comes back to its caller.
    std::atomic<int> wrong{0}, nested_items{0}, errors_right{0};
    std::vector<std::thread> callers;
    for (int c = 0; c < 4; c++)
        callers.emplace_back([&, c] {
            for (int rep = 0; rep < 50; rep++) {
                std::vector<std::atomic<int>> hits(300);
                parallel_for_each_index(300, [&](int64_t i) {
                    hits[i]++;
                    if (i % 100 == 0) parallel_for_each_index(10, [&](int64_t) { nested_items++; }, 3);
                }, c + 1);
                for (auto& h : hits) wrong += h.load() != 1;
                try {
                    parallel_for_each_index(50, [c](int64_t i) {
                        if (i == 7 + c || i == 30) throw std::runtime_error("item " + std::to_string(i));
                    }, 4);
                } catch (const std::runtime_error& e) {
                    errors_right += std::string(e.what()) == "item " + std::to_string(7 + c);
                }
            }
        });
    for (std::thread& t : callers) t.join();
    CHECK(wrong == 0);
    CHECK(nested_items == 4 * 50 * 3 * 10);
    CHECK(errors_right == 4 * 50);
}
