// test_cuda_host.cpp: the CUDA backend's host-side descriptions, run on any machine where the backend is
// built, GPU or not: cuDNN's tensor, filter and convolution descriptors for every convolution of the committed
// models (cuDNN must compute the output shape the graph says), cuBLASLt's matmul and matrix layouts for every
// 1x1 convolution and im2col matrix, cuDNN's operation graph (conv -> bias -> residual -> ReLU) for every
// convolution in each precision, and the choice between the ways. None of these calls needs a device.
#include <catch2/catch.hpp>

#ifdef RESNEST_HAVE_CUDA

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include "conv_algo_cache.h"
#include "conv_as_gemm.h"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_conv_choice.h"
#include "cuda/cuda_gate_gemm.h"
#include "cuda/cuda_gemm_conv.h"
#include "cuda/cuda_engine.h"
#include "cuda/cuda_graph_conv.h"
#include "graph.h"
#include "passes.h"
#include "planner.h"
#include "split_attention_gate_rows.cuh"
#include "test_helpers.h"

using namespace resnest;

namespace {

const char* kModels[] = {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json", "models/resnest50d_torch.json",
                         "models/resnest50_fast_1s1x64d_torch.json"};

// Every convolution of the four graphs as a problem at `batch`, fused the way the passes fuse it.
std::vector<std::pair<std::string, ConvProblem>> model_convs(int batch, Precision p) {
    std::vector<std::pair<std::string, ConvProblem>> out;
    for (const char* m : kModels) {
        Graph g = graph_load(test::source_path(m));
        if (p != Precision::fp32) {  // the stem reads the input padded to 8 / 4 channels, as the engine does it
            HostWeights w;
            for (int k : g.tensors[g.input].consumers) {
                const Conv2dAttrs& a = g.nodes[k].conv;
                w.tensors[g.nodes[k].weights.at("weight")] =
                    std::vector<float>((size_t)a.out_channels * a.in_channels * a.kernel_h * a.kernel_w, 1.0f);
            }
            REQUIRE(pad_input_channels(g, w, p == Precision::fp16 ? 8 : 4, nullptr) == (p == Precision::fp16 ? 8 : 4));
        }
        for (const Node& n : g.nodes) {
            if (n.op != OpType::conv2d) continue;
            ConvProblem c = conv_problem(g, n, batch, p);
            out.push_back({std::string(m) + ": " + n.name, c});
        }
    }
    return out;
}

// Fake device pointers with a given alignment: describe() reads addresses, never dereferences them.
ConvBuffers fake_buffers(uintptr_t align, bool z) {
    auto at = [&](uintptr_t k) { return (void*)(0x10000000 * k + align); };
    return {at(1), at(2), at(3), nullptr, z ? at(4) : nullptr, at(5), at(6), 64ull << 20};
}

}  // namespace

TEST_CASE("cuDNN descriptors for every model convolution agree with the graph's output shapes", "[cuda-host]") {
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
        for (int batch : {1, 7, 128})
            for (const auto& [name, prob] : model_convs(batch, p)) {
                INFO(name << " batch " << batch << " " << precision_name(p));
                ConvLaunch conv;
                CHECK_NOTHROW(conv.describe(prob, name));
            }
}

TEST_CASE("cuDNN takes every model convolution at the CUDA backend's batch limit and refuses one past it",
          "[cuda-host][limits]") {
    // cuDNN itself is the oracle for the limit cuda_batch_limit() derives from its tensor-size rule.
    for (const char* m : kModels) {
        const BatchLimit limit = cuda_batch_limit(graph_load(test::source_path(m)));
        REQUIRE(limit.batch < 65536);
        for (Precision p : {Precision::fp32, Precision::fp16}) {
            INFO(m << " " << precision_name(p) << ", limit " << limit.batch);
            int refused = 0;
            for (int batch : {limit.batch, limit.batch + 1})
                for (const auto& [name, prob] : model_convs(batch, p)) {
                    if (name.rfind(m, 0) != 0) continue;  // this model's convolutions only
                    INFO(name << " batch " << batch);
                    ConvLaunch conv;
                    if (batch == limit.batch) {
                        CHECK_NOTHROW(conv.describe(prob, name));
                    } else {
                        try {
                            conv.describe(prob, name);
                        } catch (const Error& e) {
                            CHECK_THAT(e.what(), Catch::Contains("CUDNN_STATUS_NOT_SUPPORTED"));
                            refused++;
                        }
                    }
                }
            CHECK(refused > 0);
        }
    }
}

TEST_CASE("a CUDA engine past the batch limit is refused before anything is allocated, naming the tensor",
          "[cuda-host][limits]") {
    // The refusal comes before the device is touched, so it is the same here without a GPU.
    const std::string model = test::source_path("models/resnest50_fast_1s1x64d.json");
    const int limit = cuda_max_batch(model);
    EngineOptions o;
    o.backend = Backend::cuda;
    o.precision = Precision::fp16;
    o.max_batch = limit + 1;
    CHECK_THROWS_WITH(Engine::load_seeded(model, 1, o),
                      Catch::Contains("batch " + std::to_string(limit + 1) + " is more than the CUDA backend runs") &&
                          Catch::Contains("its tensor 'act1' [64, 112, 112] would hold " +
                                         std::to_string((int64_t)(limit + 1) * 64 * 112 * 112) + " elements") &&
                          Catch::Contains("2^31 - 1") &&
                          Catch::Contains("use a batch of at most " + std::to_string(limit)));
    // An input size at which one image is past cuDNN's limit (8 x 17000 x 17000 once padded): no batch fits.
    test::TempDir dir;
    std::ofstream(dir.file("big.json"))
        << R"({"format": "resnest-graph", "version": 1, "input": {"name": "x", "shape": [-1, 3, 17000, 17000]},
              "outputs": ["p"], "nodes": [{"name": "r", "op": "relu", "inputs": ["x"], "outputs": ["r"]},
              {"name": "g", "op": "global_avg_pool", "inputs": ["r"], "outputs": ["g"]},
              {"name": "p", "op": "softmax", "inputs": ["g"], "outputs": ["p"]}]})";
    REQUIRE(cuda_max_batch(dir.file("big.json")) == 0);
    o.max_batch = 1;
    CHECK_THROWS_WITH(Engine::load_seeded(dir.file("big.json"), 1, o),
                      Catch::Contains("big.json: its tensor 'x' [8, 17000, 17000] holds 2312000000 elements per "
                                      "image") &&
                          Catch::Contains("cannot run this input size; use --backend cpu or a smaller input"));
}

TEST_CASE("cuDNN descriptors refuse a shape the graph got wrong, naming the node", "[cuda-host]") {
    ConvProblem p = model_convs(2, Precision::fp16).front().second;
    p.out_h += 1;
    ConvLaunch conv;
    CHECK_THROWS_WITH(conv.describe(p, "conv1.0"),
                      Catch::Contains("node 'conv1.0': cuDNN computes output") && Catch::Contains("but the graph says"));
}

TEST_CASE("cuBLASLt describes every 1x1 model convolution as one matmul in tf32 and fp16", "[cuda-host][gemm]") {
    int described = 0, fp32_refused = 0;
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
        for (const auto& [name, prob] : model_convs(3, p)) {
            if (!conv_runs_as_gemm(prob.attrs)) continue;
            INFO(name << " " << precision_name(p));
            GemmConvLaunch gemm;
            std::string why;
            bool ok = gemm.describe(prob, fake_buffers(64, prob.has_z), name, &why);
            INFO(why);
            if (p == Precision::fp32 && !ok) {
                fp32_refused++;
                CHECK_THAT(why, Catch::Contains("cuBLASLt has no matmul with this compute type"));
                continue;
            }
            CHECK(ok);
            described += ok;
        }
    CHECK(described >= 2 * 4 * 30);  // tf32 and fp16, four graphs, over 30 1x1 convolutions each
    if (fp32_refused) WARN(fp32_refused << " fp32 1x1 convolutions: no pedantic fp32 matmul; they stay on cuDNN");
}

TEST_CASE("cuBLASLt describes every other model convolution as im2col + one matmul where the matrix fits",
          "[cuda-host][gemm]") {
    int described = 0, too_big = 0, per_group_described = 0;
    for (Precision p : {Precision::tf32, Precision::fp16})
        for (int batch : {1, 128})
            for (const auto& [name, prob] : model_convs(batch, p)) {
                if (conv_runs_as_gemm(prob.attrs)) continue;
                INFO(name << " batch " << batch << " " << precision_name(p));
                const Im2colShape s = im2col_shape(prob.attrs, batch, prob.in_h, prob.in_w, prob.out_h, prob.out_w);
                const size_t matrix = (size_t)(s.rows() * s.cols()) * (p == Precision::fp16 ? 2 : 4);
                GemmConvLaunch gemm;
                std::string why;
                const bool ok = gemm.describe(prob, fake_buffers(64, prob.has_z), name, &why, true);  // 64 MiB
                INFO(why);
                CHECK(ok == (matrix <= (64ull << 20)));
                CHECK(gemm.im2col() == true);
                if (ok) CHECK(gemm.workspace_needed() >= matrix);
                else CHECK_THAT(why, Catch::Contains("does not fit the 64 MiB workspace"));
                described += ok, too_big += !ok;
                // A grouped one also as a strided batch of one matmul per group, over the same-size matrix.
                if (prob.attrs.groups > 1) {
                    GemmConvLaunch per_group;
                    CHECK(per_group.describe(prob, fake_buffers(64, prob.has_z), name, &why, true, true) == ok);
                    if (ok) CHECK(per_group.batch() == prob.attrs.groups);
                    if (ok) CHECK(per_group.workspace_needed() == gemm.workspace_needed());
                    per_group_described += ok;
                }
            }
    CHECK(described >= 2 * 4 * 18);  // at batch 1 every 3x3 conv of the four graphs fits
    CHECK(too_big > 0);              // at batch 128 the large ones do not
    CHECK(per_group_described >= 2 * 16);  // ResNeSt50's 16 radix convolutions at batch 1, both precisions
    // Not for an ungrouped convolution, nor without im2col.
    for (const auto& [name, prob] : model_convs(1, Precision::fp16)) {
        if (prob.attrs.groups > 1) continue;
        GemmConvLaunch gemm;
        std::string why;
        CHECK_THROWS_WITH(gemm.describe(prob, fake_buffers(64, prob.has_z), name, &why, true, true),
                          Catch::Contains(name) && Catch::Contains("grouped convolution"));
        break;
    }
}

TEST_CASE("cuBLASLt's alignment is the least of every pointer the matmul reads or writes, the bias's too",
          "[cuda-host][gemm]") {
    const auto convs = model_convs(2, Precision::fp16);
    const auto it =
        std::find_if(convs.begin(), convs.end(), [](const auto& c) { return conv_runs_as_gemm(c.second.attrs); });
    REQUIRE(it != convs.end());
    const std::string name = it->first;
    ConvProblem prob = it->second;
    prob.has_z = true;  // as a residual add fused into it makes it
    INFO(name);
    std::string why;
    // Each pointer in turn 2 bytes off the others' 256-byte alignment (the residual's too).
    const char* which[] = {"x", "w", "bias", "z", "y"};
    for (int k = 0; k < 5; k++) {
        ConvBuffers b = fake_buffers(256, true);
        const void** field[] = {&b.x, &b.w, &b.bias, &b.z, (const void**)&b.y};
        *field[k] = (const char*)*field[k] + 2;
        GemmConvLaunch gemm;
        INFO(which[k] << " 2 bytes off");
        REQUIRE(gemm.describe(prob, b, name, &why));
        CHECK(gemm.alignment() == 2);
    }
    GemmConvLaunch aligned;
    REQUIRE(aligned.describe(prob, fake_buffers(256, true), name, &why));
    CHECK(aligned.alignment() == 256);
}

TEST_CASE("a cached legacy cuDNN choice outside cuDNN's algorithm and math-type ranges is not taken",
          "[cuda-host]") {
    // The cache file parses any algo and math type below 1024 (the user may edit it); cuDNN defines 8
    // forward algorithms and math types 0..3.
    CHECK(legacy_choice_in_range({0, CUDNN_DEFAULT_MATH, 0, ""}));
    CHECK(legacy_choice_in_range({CUDNN_CONVOLUTION_FWD_ALGO_COUNT - 1, CUDNN_FMA_MATH, 1 << 20, ""}));
    CHECK(legacy_choice_in_range({1, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({-1, 0, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({CUDNN_CONVOLUTION_FWD_ALGO_COUNT, 0, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({1023, 0, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({1, CUDNN_FMA_MATH + 1, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({1, 1023, 0, ""}));
    CHECK_FALSE(legacy_choice_in_range({1, -1, 0, ""}));
}

TEST_CASE("cuDNN ways keep each precision's promise: no TF32 in fp32, no inputs converted to half in tf32, "
          "no reductions in half, deterministic",
          "[cuda-host]") {
    // Legacy math types: fp32 runs FMA only; tf32 anything but ALLOW_CONVERSION (float inputs to half).
    CHECK(legacy_math_allowed(Precision::fp32, CUDNN_FMA_MATH));
    for (int m : {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION})
        CHECK_FALSE(legacy_math_allowed(Precision::fp32, m));
    for (int m : {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH, CUDNN_FMA_MATH})
        CHECK(legacy_math_allowed(Precision::tf32, m));
    CHECK_FALSE(legacy_math_allowed(Precision::tf32, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));
    for (int m : {CUDNN_DEFAULT_MATH, CUDNN_TENSOR_OP_MATH, CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION, CUDNN_FMA_MATH})
        CHECK(legacy_math_allowed(Precision::fp16, m));

    // Graph engines, by their numerical notes: each note alone, then behind harmless ones.
    const Precision all[] = {Precision::fp32, Precision::tf32, Precision::fp16};
    for (Precision p : all) {
        INFO(precision_name(p));
        CHECK(cudnn_engine_notes_allowed(p, nullptr, 0));
        for (int i = 0; i < CUDNN_NUMERICAL_NOTE_TYPE_COUNT; i++) {
            const cudnnBackendNumericalNote_t note = (cudnnBackendNumericalNote_t)i;
            // Tensor-core float engines carry TENSOR_CORE and DOWN_CONVERT_INPUTS (to TF32): tf32 keeps them.
            const bool refused_everywhere = note == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC ||
                                            note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION;
            const bool refused = refused_everywhere ||
                                 (p == Precision::fp32 && (note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE ||
                                                           note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS));
            INFO("note " << i);
            CHECK(cudnn_engine_notes_allowed(p, &note, 1) == !refused);
            const cudnnBackendNumericalNote_t behind[3] = {CUDNN_NUMERICAL_NOTE_WINOGRAD,
                                                           CUDNN_NUMERICAL_NOTE_STRICT_NAN_PROP, note};
            CHECK(cudnn_engine_notes_allowed(p, behind, 3) == !refused);
        }
    }
}

TEST_CASE("the small-batch split-attention gate is chosen below half a wave, for large fc weights only",
          "[cuda-host]") {
    Graph g = graph_load(test::source_path("models/resnest50.json"));
    int rows_at_1 = 0, nodes = 0;
    for (const Node& n : g.nodes) {
        if (n.op != OpType::split_attention) continue;
        const SplitAttentionAttrs& a = n.attn;
        SplitAttentionGateShape s{1, a.radix, a.cardinality, a.channels, a.inter_channels};
        const bool large = n.name.rfind("layer3", 0) == 0 || n.name.rfind("layer4", 0) == 0;  // 393 KB, 1.5 MB
        INFO(n.name << ": fc weights " << split_attention_gate_fc_weight_bytes(s) << " bytes");
        CHECK(split_attention_gate_rows_preferred(s, 132) == large);
        s.n = 65;
        CHECK(split_attention_gate_rows_preferred(s, 132) == large);
        s.n = 66;  // 132 images fill the 132 SMs once: one block per image
        CHECK_FALSE(split_attention_gate_rows_preferred(s, 132));
        rows_at_1 += large, nodes++;
    }
    CHECK(nodes == 16);
    CHECK(rows_at_1 == 9);  // layer 3's six blocks and layer 4's three
    // fc weights: fc1 (inter, C/K) and fc2 (R*C, inter/K), float.
    CHECK(split_attention_gate_fc_weight_bytes({1, 2, 1, 512, 256}) == 4LL * (256 * 512 + 1024 * 256));
    CHECK(split_attention_gate_fc_weight_bytes({1, 4, 2, 24, 16}) == 4LL * (16 * 12 + 96 * 8));
}

TEST_CASE("the gate as matmuls describes every attention of both models, and refuses grouped fcs, chunked pools and cached "
          "algorithms that do not parse",
          "[cuda-host]") {
    // Distinct fake device addresses, 256-byte aligned: describe only builds descriptors.
    auto fake = [](uintptr_t k) { return (float*)(k << 20); };
    const GateGemmBuffers b{fake(1), fake(2), fake(3), fake(4), fake(5), fake(6), fake(7)};
    int described = 0;
    for (const char* m : {"models/resnest50.json", "models/resnest50_fast_1s1x64d.json"}) {
        Graph g = graph_load(test::source_path(m));
        for (const Node& n : g.nodes) {
            if (n.op != OpType::split_attention) continue;
            const SplitAttentionAttrs& a = n.attn;
            for (int batch : {1, 128}) {
                SplitAttentionGateShape s{batch, a.radix, a.cardinality, a.channels, a.inter_channels, 49, 1};
                GateGemmLaunch mm;
                std::string why;
                INFO(m << " " << n.name << " batch " << batch);
                CHECK(mm.describe(s, b, n.name, &why));
                described++;
                // Launched before cuBLASLt chose its algorithms: an error naming the node; nothing to cache.
                CHECK_THROWS_WITH(mm.launch(nullptr, nullptr), Catch::Contains("node '" + n.name + "'"));
                CHECK(mm.algorithms_hex().empty());
                // A cached entry whose algorithms do not parse (cut short, one digit too many, not hex) is not
                // taken, before cuBLASLt is asked (no handle here), and the form still cannot launch.
                // The good form: two algorithms' bytes and their hash, as algorithms_hex writes them.
                const unsigned char two_algos_bytes[2 * sizeof(cublasLtMatmulAlgo_t)] = {7, 1, 2};
                const std::string two_algos = bytes_to_checked_hex(two_algos_bytes, sizeof(two_algos_bytes));
                REQUIRE(two_algos.size() == 2 * (sizeof(two_algos_bytes) + 4));
                std::string one_digit_changed = two_algos;
                one_digit_changed[0] = '1';  // "07" -> "17": the hash no longer matches
                for (const std::string& bad : {std::string(), two_algos.substr(1), two_algos + "0",
                                               "zz" + two_algos.substr(2), two_algos.substr(0, two_algos.size() / 2),
                                               one_digit_changed})
                    CHECK_FALSE(mm.restore_algorithms(nullptr, bad));
                CHECK_THROWS_WITH(mm.launch(nullptr, nullptr), Catch::Contains("before an algorithm was chosen"));
            }
        }
    }
    CHECK(described == 2 * 2 * 16);
    GateGemmLaunch mm;
    std::string why;
    // Restored before it was described: an error naming the node.
    CHECK_THROWS_WITH(mm.restore_algorithms(nullptr, std::string(256, '0')),
                      Catch::Contains("before they were described"));
    CHECK_FALSE(mm.describe({8, 2, 2, 64, 32, 49, 1}, b, "grouped", &why));
    CHECK_THAT(why, Catch::Contains("cardinality 1"));
    CHECK_FALSE(mm.describe({8, 2, 1, 64, 32, 3136, 4}, b, "chunked", &why));
    CHECK_THAT(why, Catch::Contains("one chunk per image (planned: 4)"));
    CHECK_FALSE(mm.describe({8, 9, 1, 64, 32, 49, 1}, b, "wide", &why));
    CHECK_THAT(why, Catch::Contains("radix 9"));
}

TEST_CASE("cuDNN takes the operation graph conv -> bias (-> residual) (-> ReLU) of every model convolution, "
          "and of one group of every grouped one",
          "[cuda-host][cudnn-graph]") {
    int graphs = 0, per_group = 0;
    for (Precision p : {Precision::fp32, Precision::tf32, Precision::fp16})
        for (int batch : {1, 128})
            for (const auto& [name, prob] : model_convs(batch, p)) {
                INFO(name << " batch " << batch << " " << precision_name(p));
                GraphConvLaunch conv;
                std::string why;
                bool ok = conv.describe(prob, nullptr, name, &why);
                INFO(why);
                CHECK(ok);
                CHECK(conv.ops() == 2 + (prob.has_z ? 1 : 0) + (prob.relu ? 1 : 0));
                graphs += ok;
                if (prob.attrs.groups < 2) continue;
                // One group's dense convolution over strided channel slices: the same operations.
                GraphConvLaunch slice;
                bool sliced = slice.describe(prob, nullptr, name, &why, true);
                INFO(why);
                CHECK(sliced);
                CHECK(slice.ops() == conv.ops());
                CHECK(slice.runs() == prob.attrs.groups);
                per_group += sliced;
            }
    CHECK(graphs > 3 * 2 * 4 * 50);
    CHECK(per_group == 3 * 2 * 2 * 16);  // the 16 radix-2 convs of ResNeSt50 in both semantics (the fast model has radix 1)
    // An ungrouped convolution has no groups to run one at a time.
    ConvProblem dense = model_convs(1, Precision::fp16).front().second;
    GraphConvLaunch conv;
    std::string why;
    CHECK_FALSE(conv.describe(dense, nullptr, "conv1.0", &why, true));
    CHECK_THAT(why, Catch::Contains("per group needs groups"));
}

TEST_CASE("a cuDNN graph launched before a plan was chosen is an error naming the node", "[cuda-host][cudnn-graph]") {
    ConvProblem p = model_convs(1, Precision::fp16).front().second;
    GraphConvLaunch conv;
    std::string why;
    REQUIRE(conv.describe(p, nullptr, "conv1.0", &why));
    CHECK_THROWS_WITH(conv.launch(nullptr, fake_buffers(64, false), nullptr),
                      Catch::Contains("node 'conv1.0': the cuDNN graph was launched before a plan was chosen"));
}

TEST_CASE("the convolution choice keeps the fastest way, a cuDNN graph only by a clear margin", "[cuda-host]") {
    using I = ConvImpl;
    const std::vector<I> ways{I::cudnn, I::cublaslt, I::cudnn_graph, I::im2col_cublaslt_per_group};
    CHECK(fastest_conv_way(ways, {0.30f, 0.10f, 0.20f, 0.15f}) == 1);
    CHECK(fastest_conv_way(ways, {0.30f, 0.20f, 0.10f, 0.15f}) == 2);   // a clear win
    CHECK(fastest_conv_way(ways, {0.30f, 0.100f, 0.098f, 0.2f}) == 1);  // 2 % faster: not worth a plan a start
    CHECK(fastest_conv_way(ways, {0.30f, 0.100f, 0.096f, 0.2f}) == 2);  // 4 %: kept
    CHECK(fastest_conv_way({I::cudnn, I::cudnn_graph_per_group}, {0.100f, 0.099f}) == 0);
    CHECK(fastest_conv_way({I::cudnn, I::cublaslt}, {0.1f, 0.1f}) == 0);  // a tie: the earlier
    CHECK(fastest_conv_way({I::cudnn}, {0.5f}) == 0);
}

#endif  // RESNEST_HAVE_CUDA
