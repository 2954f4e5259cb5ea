// test_fixtures.cpp: CPU engine logits against the frameworks' (timm, PaddleClas) for every fixture in
// tests/fixtures/fixtures.json: max |delta| / max |ref| <= 1e-4 and the same top-5 order per image.
// Tiny fixtures are committed in full; the full models' weights and inputs are regenerated from their
// seeds into the build folder by CTest's setup step (tests/fixtures/regenerate_full.py).
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <numeric>

#include <nlohmann/json.hpp>

#include "npy.h"
#include "resnest/engine.h"
#include "test_helpers.h"

using namespace resnest;

namespace {

std::vector<int> top_k(const float* v, int n, int k) {
    std::vector<int> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return v[a] > v[b]; });
    idx.resize(k);
    return idx;
}

void check_fixture(const nlohmann::json& fx) {
    const std::string name = fx["name"];
    std::string weights, input;
    if (fx["kind"].get<std::string>() == "tiny") {
        weights = test::source_path(fx["weights"]);
        input = test::source_path(fx["input"]);
    } else {
        weights = test::binary_path("fixtures/" + name + ".safetensors");
        input = test::binary_path("fixtures/" + name + ".input.npy");
        INFO("the full-model weights are made by CTest's setup step: "
             "python3 tests/fixtures/regenerate_full.py <build>/fixtures");
        REQUIRE(std::filesystem::exists(weights));
    }
    NpyArray x = npy_read(input);
    NpyArray expected = npy_read(test::source_path(fx["expected"]));
    const int batch = (int)x.shape[0];
    const int classes = (int)expected.shape[1];
    REQUIRE(expected.shape[0] == batch);

    EngineOptions opt;
    opt.max_batch = batch;
    auto engine = Engine::load(test::source_path(fx["graph"]), weights, opt);
    REQUIRE(engine->summary().num_outputs == classes);
    std::vector<float> y((size_t)batch * classes, NAN);  // poisoned
    engine->create_context()->run(x.data.data(), batch, y.data());

    double err = test::max_rel_error(y.data(), expected.data.data(), y.size());
    INFO(name << " (" << fx["reference"].get<std::string>() << "): max |delta| / max |ref| = " << err);
    WARN(name << ": max |delta| / max |ref| = " << err);
    REQUIRE(!std::isnan(err));
    CHECK(err <= 1e-4);
    for (int b = 0; b < batch; b++) {
        INFO("image " << b);
        CHECK(top_k(y.data() + (size_t)b * classes, classes, 5) ==
              top_k(expected.data.data() + (size_t)b * classes, classes, 5));
    }
}

nlohmann::json manifest() {
    return nlohmann::json::parse(test::read_text(test::source_path("tests/fixtures/fixtures.json")));
}

}  // namespace

TEST_CASE("tiny ResNeSt variants match timm and PaddleClas", "[fixtures]") {
    int count = 0;
    const nlohmann::json all = manifest();
    for (const auto& fx : all["fixtures"]) {
        if (fx["kind"].get<std::string>() != "tiny") continue;
        SECTION(fx["name"].get<std::string>()) { check_fixture(fx); }
        count++;
    }
    CHECK(count >= 6);
}

TEST_CASE("full ResNeSt50 and ResNeSt50_fast_1s1x64d (224, 256, 200) match timm and PaddleClas", "[fixtures-full]") {
    int count = 0;
    const nlohmann::json all = manifest();
    for (const auto& fx : all["fixtures"]) {
        if (fx["kind"].get<std::string>() != "full") continue;
        SECTION(fx["name"].get<std::string>()) { check_fixture(fx); }
        count++;
    }
    CHECK(count == 6);
}
