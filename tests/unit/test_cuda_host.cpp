// test_cuda_host.cpp: the CUDA backend's host-side set-up, run on any machine where the backend is built,
// GPU or not: cuDNN's tensor, filter and convolution descriptors for every convolution of the committed
// models (cuDNN must compute the output shape the graph says), and cuBLASLt's matmul and matrix layouts for
// every 1x1 convolution, and cuDNN's operation graph (conv -> bias -> residual -> ReLU) for every
// convolution, in each precision; CUDA's initialisation beside a load. None of these calls needs a device.
#include <catch2/catch.hpp>

#ifdef RESNEST_HAVE_CUDA

#include <dlfcn.h>

#include <algorithm>
#include <sstream>
#include <set>
#include <fstream>
#include <stdexcept>

#include "channel_affine.cuh"
#include "conv3x3_implicit_gemm.cuh"
#include "global_avg_pool.cuh"
#include "layout_convert.cuh"
#include "softmax_rows.cuh"
#include "split_attention_combine_conv1x1.cuh"
#include "conv_algo_cache.h"
#include "conv_as_gemm.h"
#include "split_attention_gate_rows.cuh"
#include "split_attention_pool.cuh"
#include "split_attention_pool_plan.h"
#include "split_attention_pool_row_lanes.cuh"
#include "split_attention_radix_softmax.cuh"
#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_conv.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_conv_choice.h"
#include "cuda/cuda_engine.h"
#include "cuda/cuda_gate_gemm.h"
#include "cuda/cuda_gemm_conv.h"
#include "cuda/cuda_graph_conv.h"
#include "cuda/cuda_l2_weights.h"
#include "graph.h"
#include "passes.h"
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

TEST_CASE("a launcher with nothing to compute (a zero count) launches nothing, and one with nonsense refuses it",
          "[cuda-host]") {
    // No device is needed, and none is touched: on a machine without a GPU a launch would fail.
    const KernelStream stream(nullptr);
    CHECK_NOTHROW(channel_affine_activation<float>(nullptr, nullptr, nullptr, nullptr, nullptr, 0, 64, true, stream));
    CHECK_NOTHROW(softmax_rows_block_per_row<__half>(nullptr, nullptr, 0, 1000, stream));
    CHECK_NOTHROW(global_avg_pool_nhwc<float>(nullptr, nullptr, 0, 49, 2048, stream));
    CHECK_NOTHROW(nchw_float_to_nhwc<__half>(nullptr, nullptr, 0, 3, 8, 224 * 224, stream));
    CHECK_NOTHROW(nhwc_to_nchw_float<float>(nullptr, nullptr, 0, 1000, 1, stream));
    // Arguments no kernel can make sense of are refused before any launch, naming the kernel.
    const float* none = nullptr;
    CHECK_THROWS_WITH(channel_affine_activation<float>(none, none, none, none, nullptr, 100, 0, true, stream),
                      Catch::Contains("channel_affine_activation") && Catch::Contains("not whole rows of 0 channels"));
    CHECK_THROWS_WITH(channel_affine_activation<float>(none, none, none, none, nullptr, 100, 64, false, stream),
                      Catch::Contains("100 elements are not whole rows of 64 channels"));
    CHECK_THROWS_WITH(nchw_float_to_nhwc<float>(nullptr, nullptr, 1, 3, 2, 49, stream),
                      Catch::Contains("nchw_float_to_nhwc") && Catch::Contains("3 channels cannot be padded to 2"));
}

TEST_CASE("the forward pass names the node a launcher's error came from, keeping the error's kind", "[cuda-host]") {
    auto rethrown = [](auto thrown) -> std::exception_ptr {
        try {
            try {
                throw thrown;
            } catch (const Error&) {
                rethrow_naming_node("layer1.0.conv2");
            }
        } catch (...) {
            return std::current_exception();
        }
        return nullptr;
    };
    auto check = [&](std::exception_ptr p, bool launch_error, bool capture_error, const std::string& text) {
        REQUIRE(p);
        try {
            std::rethrow_exception(p);
        } catch (const Error& e) {
            CHECK(std::string(e.what()) == text);
            CHECK((dynamic_cast<const KernelLaunchError*>(&e) != nullptr) == launch_error);
            CHECK((dynamic_cast<const GraphCaptureError*>(&e) != nullptr) == capture_error);
        }
    };
    check(rethrown(KernelLaunchError("split_attention_radix_softmax: launch failed")), true, false,
          "node 'layer1.0.conv2': split_attention_radix_softmax: launch failed");
    check(rethrown(GraphCaptureError("x: refused")), true, true, "node 'layer1.0.conv2': x: refused");
    check(rethrown(Error("pool2d_nhwc: chunks")), false, false, "node 'layer1.0.conv2': pool2d_nhwc: chunks");
    // Already named (a library call's error): as it was.
    check(rethrown(Error("node 'conv1.0': cuDNN error")), false, false, "node 'conv1.0': cuDNN error");
    check(rethrown(KernelLaunchError("node 'fc': x")), true, false, "node 'fc': x");
}

TEST_CASE("an error that ends a graph capture is rethrown as what its callers answer", "[cuda-host]") {
    // capture_stream's classification: the kind decides whether prepare() turns dependent launches off
    // (KernelLaunchError), the batch size runs without a graph (GraphCaptureError), or does so keeping them
    // (CallRefusedCaptureError: a library call's doing).
    enum Kind { plain, launch, capture, refused };
    auto classified = [](auto thrown, bool dependent_launch, std::string* what) -> Kind {
        try {
            try {
                throw thrown;
            } catch (...) {
                rethrow_capture_error(dependent_launch, "m.json");
            }
        } catch (const CallRefusedCaptureError& e) {
            *what = e.what();
            return refused;
        } catch (const GraphCaptureError& e) {
            *what = e.what();
            return capture;
        } catch (const KernelLaunchError& e) {
            *what = e.what();
            return launch;
        } catch (const Error& e) {
            *what = e.what();
            return plain;
        }
        return plain;
    };
    std::string what;
    // A launch error with dependent launches on: as it is, for prepare() to go on without them.
    CHECK(classified(KernelLaunchError("node 'fc': launch refused"), true, &what) == launch);
    CHECK(what == "node 'fc': launch refused");
    // With them off: the capture's, the batch size runs eagerly.
    CHECK(classified(KernelLaunchError("node 'fc': launch refused"), false, &what) == capture);
    CHECK(what == "m.json: a launch failed inside the CUDA graph capture (node 'fc': launch refused)");
    // A library call's error, either way: refused, dependent launches kept.
    for (bool dependent : {true, false}) {
        CHECK(classified(Error("node 'conv1.0': cudnnBackendExecute: not supported"), dependent, &what) == refused);
        CHECK(what == "m.json: a call refused the CUDA graph capture (node 'conv1.0': cudnnBackendExecute: not "
                      "supported)");
        // A capture error stays one (a refused one too), its message unchanged.
        CHECK(classified(GraphCaptureError("g: did not instantiate"), dependent, &what) == capture);
        CHECK(what == "g: did not instantiate");
        CHECK(classified(CallRefusedCaptureError("g: refused"), dependent, &what) == refused);
    }
    // Anything else passes through untouched.
    bool passed = false;
    try {
        try {
            throw std::runtime_error("not ours");
        } catch (...) {
            rethrow_capture_error(true, "m.json");
        }
    } catch (const Error&) {
    } catch (const std::runtime_error& e) {
        passed = std::string(e.what()) == "not ours";
    }
    CHECK(passed);
    // And naming the node keeps a refused capture refused.
    try {
        try {
            throw CallRefusedCaptureError("x: refused");
        } catch (const Error&) {
            rethrow_naming_node("layer2.0.conv1");
        }
    } catch (const CallRefusedCaptureError& e) {
        CHECK(std::string(e.what()) == "node 'layer2.0.conv1': x: refused");
    } catch (const Error&) {
        FAIL("rethrow_naming_node lost CallRefusedCaptureError's kind");
    }
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

TEST_CASE("CUDA's initialisation on a thread of its own returns, device or not, and leaves errors to the load",
          "[cuda-host]") {
    // (CTest runs this case in a process of its own, where nothing has loaded cuDNN's sub-libraries before.)
    for (const std::string& name : cudnn_sublibraries()) {
        INFO(name);
        void* before = dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
        if (before) WARN(name << " was loaded before this case: the check below proves nothing for it");
    }
    for (int device : {0, 63}) {
        CudaInitialization init(device);
        init.wait();
        init.wait();  // a second wait is a no-op
        CHECK(init.seconds() >= 0.0);
        // cuDNN's sub-libraries loaded on that thread, device or not, and each found again by its soname.
        CHECK(init.cudnn_preloaded() == (int)cudnn_sublibraries().size());
        CHECK(init.cudnn_seconds() >= 0.0);
        for (const std::string& name : cudnn_sublibraries()) {
            INFO(name);
            CHECK(dlopen(name.c_str(), RTLD_LAZY | RTLD_NOLOAD) != nullptr);
            // One file mapped for it (one inode), as cuDNN would have loaded it: not a second copy.
            std::ifstream maps("/proc/self/maps");
            std::set<std::string> inodes;
            const std::string base = name.substr(0, name.find(".so"));
            for (std::string line; std::getline(maps, line);) {
                std::istringstream fields(line);
                std::string range, perms, offset, dev, inode, path;
                fields >> range >> perms >> offset >> dev >> inode >> path;
                const size_t slash = path.rfind('/');
                if (path.compare(slash + 1, base.size() + 3, base + ".so") == 0) inodes.insert(dev + " " + inode);
            }
            CHECK(inodes.size() == 1);
        }
    }
    // A load started beside one names the missing device as before (no GPU here: device 0 is missing too).
    EngineOptions o;
    o.backend = Backend::cuda;
    o.device = 63;
    CHECK_THROWS_WITH(Engine::load_seeded(test::source_path("models/resnest50_fast_1s1x64d.json"), 1, o),
                      Catch::Contains("CUDA device 63 does not exist"));
}

TEST_CASE("RESNEST_ATTENTION_POOL picks the row-lanes pool, and another value is named in a warning", "[cuda-host]") {
    std::string warning;
    for (const char* v : {(const char*)nullptr, "", "channel-lanes"}) {
        INFO((v ? v : "(unset)"));
        CHECK_FALSE(attention_pool_row_lanes_from(v, &warning));
        CHECK(warning.empty());
    }
    CHECK(attention_pool_row_lanes_from("row-lanes", &warning));
    CHECK(warning.empty());
    CHECK_FALSE(attention_pool_row_lanes_from("rows", &warning));
    CHECK_THAT(warning, Catch::Contains("RESNEST_ATTENTION_POOL=rows") && Catch::Contains("row-lanes") &&
                            Catch::Contains("channel lanes"));
}

TEST_CASE("RESNEST_IMPLICIT_GEMM and RESNEST_L2_WEIGHTS are off, auto or on, and another value is named in a "
          "warning", "[cuda-host]") {
    struct Setting {
        const char* variable;
        std::string (*mode_from)(const char*, std::string*);
        const char* wrong;
    };
    for (const Setting& s : {Setting{"RESNEST_IMPLICIT_GEMM", implicit_gemm_mode_from, "yes"},
                             Setting{"RESNEST_L2_WEIGHTS", l2_weights_mode_from, "persist"}}) {
        INFO(s.variable);
        std::string warning = "stale";
        for (const char* v : {(const char*)nullptr, ""}) {
            CHECK(s.mode_from(v, &warning) == "off");
            CHECK(warning.empty());
        }
        for (const char* v : {"off", "auto", "on"}) {
            CHECK(s.mode_from(v, &warning) == v);
            CHECK(warning.empty());
        }
        CHECK(s.mode_from(s.wrong, &warning) == "off");
        CHECK_THAT(warning, Catch::Contains(std::string(s.variable) + "=" + s.wrong) &&
                                Catch::Contains("off, auto or on"));
    }
}

TEST_CASE("RESNEST_WEIGHT_PREFETCH is on unless off, and another value is named in a warning", "[cuda-host]") {
    std::string warning = "stale";
    for (const char* v : {(const char*)nullptr, "", "on"}) {
        CHECK(weight_prefetch_from(v, &warning));
        CHECK(warning.empty());
    }
    CHECK_FALSE(weight_prefetch_from("off", &warning));
    CHECK(warning.empty());
    CHECK(weight_prefetch_from("0", &warning));
    CHECK_THAT(warning, Catch::Contains("RESNEST_WEIGHT_PREFETCH=0") && Catch::Contains("neither on nor off"));
    // A launcher given a bare stream asks for its weights: the default every kernel test runs under.
    CHECK(KernelStream(nullptr, true).prefetch_weights);
    CHECK_FALSE(KernelStream(nullptr, true, false).prefetch_weights);
}

namespace {

// A device's persisting-L2 limit as the carve-out registry sees it: set clamps to the device's maximum; each
// call can be made to fail.
struct FakeCarveOutDevice {
    size_t limit = 5, max = 100;
    int resets = 0, gets = 0;
    int fail_get_number = 0;  // the n-th get fails (0: none)
    bool fail_set = false;
    resnest::CarveOutCalls calls() {
        resnest::CarveOutCalls c;
        c.get_limit = [this](size_t* v) {
            if (++gets == fail_get_number) return cudaErrorInvalidValue;
            *v = limit;
            return cudaSuccess;
        };
        c.set_limit = [this](size_t v) {
            if (fail_set) return cudaErrorInvalidValue;
            limit = std::min(v, max);
            return cudaSuccess;
        };
        c.reset_persisting_lines = [this] {
            resets++;
            return cudaSuccess;
        };
        return c;
    }
};

}  // namespace

TEST_CASE("the persisting-L2 carve-out is raised for the contexts holding a window and given back by the last",
          "[cuda-host]") {
    size_t granted = 0;
    SECTION("one holder: raised, then the lines reset and the limit found put back") {
        FakeCarveOutDevice d;
        CarveOutRegistry r;
        REQUIRE(r.acquire(0, 60, d.calls(), &granted) == cudaSuccess);
        CHECK(granted == 60);
        CHECK(d.limit == 60);
        CHECK(r.holders(0) == 1);
        r.release(0, d.calls());
        CHECK(d.limit == 5);
        CHECK(d.resets == 1);
        CHECK(r.holders(0) == 0);
        r.release(0, d.calls());  // released twice, or never acquired: nothing happens
        CHECK(d.resets == 1);
        CHECK(d.limit == 5);
    }
    SECTION("the device clamps: granted is what it has") {
        FakeCarveOutDevice d;
        d.max = 40;
        CarveOutRegistry r;
        REQUIRE(r.acquire(0, 60, d.calls(), &granted) == cudaSuccess);
        CHECK(granted == 40);
    }
    SECTION("two holders: never lowered; the first out leaves it, the last restores the first one's finding") {
        FakeCarveOutDevice d;
        CarveOutRegistry r;
        REQUIRE(r.acquire(0, 80, d.calls(), &granted) == cudaSuccess);
        REQUIRE(r.acquire(0, 60, d.calls(), &granted) == cudaSuccess);
        CHECK(granted == 80);  // a smaller want keeps the larger limit
        REQUIRE(r.acquire(0, 90, d.calls(), &granted) == cudaSuccess);
        CHECK(d.limit == 90);
        CHECK(r.holders(0) == 3);
        r.release(0, d.calls());
        r.release(0, d.calls());
        CHECK(d.limit == 90);
        CHECK(d.resets == 0);
        r.release(0, d.calls());
        CHECK(d.limit == 5);
        CHECK(d.resets == 1);
    }
    SECTION("devices apart") {
        FakeCarveOutDevice d0, d1;
        d1.limit = 7;
        CarveOutRegistry r;
        REQUIRE(r.acquire(0, 60, d0.calls(), &granted) == cudaSuccess);
        REQUIRE(r.acquire(1, 50, d1.calls(), &granted) == cudaSuccess);
        r.release(1, d1.calls());
        CHECK(d1.limit == 7);
        CHECK(d0.limit == 60);
        CHECK(r.holders(0) == 1);
    }
    SECTION("a failure registers nothing and leaves the limit as found") {
        FakeCarveOutDevice d;
        CarveOutRegistry r;
        d.fail_set = true;  // raising it fails
        CHECK(r.acquire(0, 60, d.calls(), &granted) == cudaErrorInvalidValue);
        CHECK(r.holders(0) == 0);
        CHECK(d.limit == 5);
        d.fail_set = false;
        d.gets = 0, d.fail_get_number = 2;  // raised, then reading it back fails: put back
        CHECK(r.acquire(0, 60, d.calls(), &granted) == cudaErrorInvalidValue);
        CHECK(r.holders(0) == 0);
        CHECK(d.limit == 5);
        d.gets = 0, d.fail_get_number = 1;  // the first read fails: nothing changed
        CHECK(r.acquire(0, 60, d.calls(), &granted) == cudaErrorInvalidValue);
        CHECK(d.limit == 5);
        CHECK(r.holders(0) == 0);
    }
    SECTION("a later first holder records the limit as it then is") {
        FakeCarveOutDevice d;
        CarveOutRegistry r;
        REQUIRE(r.acquire(0, 60, d.calls(), &granted) == cudaSuccess);
        r.release(0, d.calls());
        d.limit = 9;  // someone else's setting since
        REQUIRE(r.acquire(0, 60, d.calls(), &granted) == cudaSuccess);
        r.release(0, d.calls());
        CHECK(d.limit == 9);
    }
    CHECK(&process_carve_out_registry() == &process_carve_out_registry());
}

TEST_CASE("the weights' L2 window covers the weights up to the largest window, persisting what the carve-out holds",
          "[cuda-host]") {
    const size_t mib = 1 << 20;
    // More weights than the carve-out: all of them in the window, hits persisting in the carve-out's share.
    L2WeightWindow w = plan_l2_weight_window(99 * mib, 30 * mib, 128 * mib);
    CHECK(w.window_bytes == 99 * mib);
    CHECK(w.carve_out_bytes == 30 * mib);
    CHECK(w.hit_ratio == Approx(30.0 / 99.0).epsilon(1e-6));
    // Fewer: the carve-out is the weights, every hit persisting.
    w = plan_l2_weight_window(20 * mib, 30 * mib, 128 * mib);
    CHECK(w.window_bytes == 20 * mib);
    CHECK(w.carve_out_bytes == 20 * mib);
    CHECK(w.hit_ratio == 1.0f);
    // More than one window holds: the window's first bytes.
    w = plan_l2_weight_window(200 * mib, 30 * mib, 128 * mib);
    CHECK(w.window_bytes == 128 * mib);
    CHECK(w.carve_out_bytes == 30 * mib);
    CHECK(w.hit_ratio == Approx(30.0 / 128.0).epsilon(1e-6));
    // A device without persisting L2 or windows, or no weights: none.
    for (const L2WeightWindow& none :
         {plan_l2_weight_window(99 * mib, 0, 128 * mib), plan_l2_weight_window(99 * mib, 30 * mib, 0),
          plan_l2_weight_window(0, 30 * mib, 128 * mib)}) {
        CHECK(none.window_bytes == 0);
        CHECK(none.carve_out_bytes == 0);
    }
}

TEST_CASE("the implicit-GEMM convolution refuses shapes, pointers and splits it cannot run, before any launch",
          "[cuda-host][implicit-gemm]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    alignas(16) static __half x[16], w[16], y[16];
    alignas(16) static float partial[16];
    int arrivals[4];
    const ImplicitConv3x3Shape s{1, 7, 7, 64, 128, 2};  // 32 -> 64 channels a group, 9 K steps
    REQUIRE(std::string(conv3x3_implicit_gemm_refusal(s, x, w, y)).empty());
    float pool[4];
    auto launch = [&](const ImplicitConv3x3Shape& shape, const __half* xp, int splits, int* counts,
                      bool with_pool = true, float* sums = nullptr) {
        conv3x3_implicit_gemm(xp, w, nullptr, y, shape, splits, true, sums ? sums : partial, counts,
                              with_pool ? pool : nullptr,
                              KernelStream());
    };
    CHECK_THROWS_WITH(launch({1, 7, 7, 48, 128, 2}, x, 1, arrivals),
                      Catch::Contains("conv3x3_implicit_gemm") && Catch::Contains("multiples of 32"));
    CHECK_THROWS_WITH(launch({1, 7, 7, 64, 96, 2}, x, 1, arrivals), Catch::Contains("64 (outputs)"));
    CHECK_THROWS_WITH(launch(s, x + 1, 1, arrivals), Catch::Contains("16-byte aligned"));
    for (int splits : {0, 10, 17}) {  // 10: more splits than the 9 K steps
        INFO("splits " << splits);
        CHECK_THROWS_WITH(launch(s, x, splits, arrivals), Catch::Contains("splits of 9 K steps"));
    }
    CHECK_THROWS_WITH(launch(s, x, 2, nullptr), Catch::Contains("arrival counts"));
    CHECK_THROWS_WITH(launch(s, x, 2, arrivals, true, partial + 1), Catch::Contains("16-byte aligned partial sums"));
    // Split attention's pool in the epilogue: each 64-channel N tile inside one radix split, and its buffer.
    ImplicitConv3x3Shape pooled = s;
    pooled.pool_radix = 2;  // 128 outputs = 2 splits of 64
    REQUIRE(std::string(conv3x3_implicit_gemm_refusal(pooled, x, w, y)).empty());
    pooled.pool_radix = 4;  // splits of 32 channels: a tile would straddle two
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals), Catch::Contains("a radix split in multiples of 64"));
    pooled.pool_radix = 3;  // 128 channels do not split three ways
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals), Catch::Contains("a radix split in multiples of 64"));
    pooled.pool_radix = 2;
    CHECK_THROWS_WITH(launch(pooled, x, 1, arrivals, false),
                      Catch::Contains("pool in the epilogue needs its partials"));
    CHECK(conv3x3_implicit_gemm_partial_bytes(s, 1) == 0);
    CHECK(conv3x3_implicit_gemm_partial_bytes(s, 4) == 4ull * s.tiles() * 64 * 64 * sizeof(float));
}

TEST_CASE("the combine + 1x1 convolution kernel refuses shapes, pointers and splits it cannot run, before any "
          "launch", "[cuda-host][implicit-gemm]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    alignas(16) static __half u[16], w[16], z[16], y[16];
    alignas(16) static float attn[16], partial[16];
    int arrivals[4];
    const CombineConv1x1Shape s{1, 49, 2, 64, 128};  // 2 K steps
    REQUIRE(std::string(split_attention_combine_conv1x1_refusal(s, u, attn, w, z, y)).empty());
    CHECK(std::string(split_attention_combine_conv1x1_refusal(s, u, attn, w, nullptr, y)).empty());  // no residual
    auto launch = [&](const CombineConv1x1Shape& shape, const __half* up, const float* ap, int splits, int* counts,
                      float* sums = nullptr) {
        split_attention_combine_conv1x1(up, ap, w, nullptr, z, y, shape, splits, true, sums ? sums : partial, counts,
                                        KernelStream());
    };
    CHECK_THROWS_WITH(launch({1, 49, 3, 64, 128}, u, attn, 1, arrivals),
                      Catch::Contains("split_attention_combine_conv1x1") && Catch::Contains("radix 1 or 2"));
    CHECK_THROWS_WITH(launch({1, 49, 2, 48, 128}, u, attn, 1, arrivals), Catch::Contains("multiple of 32"));
    CHECK_THROWS_WITH(launch({1, 49, 2, 64, 96}, u, attn, 1, arrivals), Catch::Contains("multiple of 64"));
    CHECK_THROWS_WITH(launch(s, u + 1, attn, 1, arrivals), Catch::Contains("16-byte aligned"));
    CHECK_THROWS_WITH(launch(s, u, attn + 1, 1, arrivals), Catch::Contains("16-byte aligned"));
    for (int splits : {0, 3, 17}) {  // 3: more splits than the 2 K steps
        INFO("splits " << splits);
        CHECK_THROWS_WITH(launch(s, u, attn, splits, arrivals), Catch::Contains("splits of 2 K steps"));
    }
    CHECK_THROWS_WITH(launch(s, u, attn, 2, nullptr), Catch::Contains("arrival counts"));
    CHECK_THROWS_WITH(launch(s, u, attn, 2, arrivals, partial + 1), Catch::Contains("16-byte aligned partial sums"));
    // Without gates (the downsample path's pool) only radix 1; a pool window over padding only.
    CombineConv1x1Shape pool{1, 16, 1, 64, 128, {2, 2, 0, false, 8, 8, 4}};
    REQUIRE(std::string(split_attention_combine_conv1x1_refusal(pool, u, nullptr, w, z, y)).empty());
    CHECK_THROWS_WITH(launch(s, u, nullptr, 1, arrivals), Catch::Contains("gates of one") && Catch::Contains("radix 1"));
    pool.pool.pad = 2;
    CHECK_THROWS_WITH(launch(pool, u, nullptr, 1, arrivals), Catch::Contains("each cover a cell of U"));
    CHECK(split_attention_combine_conv1x1_partial_bytes(s, 1) == 0);
    CHECK(split_attention_combine_conv1x1_partial_bytes(s, 2) == 2ull * s.tiles() * 64 * 64 * sizeof(float));
}

TEST_CASE("the gate and pool launchers refuse a radix, width or chunk count they cannot run, "
          "before any launch", "[cuda-host]") {
    // No GPU is needed: the checks come before the first CUDA call (the pointers are never touched).
    float* none = nullptr;
    for (int radix : {0, kSplitAttentionMaxRadix + 1}) {
        INFO("radix " << radix);
        CHECK_THROWS_WITH(split_attention_radix_softmax_thread_per_channel(none, 2, radix, 64, KernelStream()),
                          Catch::Contains("split_attention_radix_softmax_thread_per_channel") &&
                              Catch::Contains("radix " + std::to_string(radix)));
        CHECK_THROWS_WITH(split_attention_gate_rows(none, none, none, none, none, none, none, {2, radix, 1, 64, 32},
                                                    KernelStream()),
                          Catch::Contains("split_attention_gate_rows") && Catch::Contains("radix"));
        CHECK_THROWS_WITH(split_attention_gate_block_per_image(none, none, none, none, none, none,
                                                               {2, radix, 1, 64, 32}, KernelStream()),
                          Catch::Contains("split_attention_gate_block_per_image") &&
                              Catch::Contains("radix " + std::to_string(radix)));
    }
    // One block per image holds C + inter + R·C floats: 4 x (7000 + 64 + 7000) = 56,256 bytes, over 48 KiB.
    const SplitAttentionGateShape wide_block{2, 1, 1, 7000, 64};
    REQUIRE(split_attention_gate_smem_bytes(wide_block) > 48 * 1024);
    CHECK_THROWS_WITH(split_attention_gate_block_per_image(none, none, none, none, none, none, wide_block,
                                                           KernelStream()),
                      Catch::Contains("7000 channels") && Catch::Contains("48 KiB"));
    // Both pools refuse a chunk count outside 1..kPoolMaxChunks (the gate's partials are sized for the plan's).
    const RadixRows<float> u = radix_rows_interleaved((const float*)nullptr, 2, 64);
    for (int chunks : {0, kPoolMaxChunks + 1}) {
        INFO("chunks " << chunks);
        CHECK_THROWS_WITH(split_attention_radix_sum_pool(u, none, 1, 49, 2, 64, chunks, KernelStream()),
                          Catch::Contains("split_attention_radix_sum_pool") &&
                              Catch::Contains(std::to_string(chunks) + " chunks is outside"));
        CHECK_THROWS_WITH(split_attention_radix_sum_pool_row_lanes(u, none, 1, 49, 2, 64, chunks, KernelStream()),
                          Catch::Contains(std::to_string(chunks) + " chunks is outside"));
    }
    // No image: nothing to launch (a launch here, with no device, would throw).
    CHECK_NOTHROW(split_attention_gate_block_per_image(none, none, none, none, none, none, {0, 2, 1, 64, 32},
                                                       KernelStream()));
    // 8 images a tile x 1600 float channels = 51,200 bytes, over 48 KiB.
    const SplitAttentionGateShape wide{2, 2, 1, 1600, 64};
    REQUIRE(split_attention_gate_rows_smem_bytes(wide) > 48 * 1024);
    CHECK_THROWS_WITH(split_attention_gate_rows(none, none, none, none, none, none, none, wide, KernelStream()),
                      Catch::Contains("1600 channels") && Catch::Contains("48 KiB"));
}

TEST_CASE("a fallback goes on after a library error, but not on a device that cannot be used", "[cuda-host]") {
    int devices = 0;
    const bool usable = cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0;
    if (usable) {
        CHECK_NOTHROW(throw_if_device_faulted(nullptr, "node 'layer1.0.conv2.conv'"));
    } else {  // no device here: every call returns the same error, as after a sticky fault
        CHECK_THROWS_WITH(throw_if_device_faulted(nullptr, "node 'layer1.0.conv2.conv'"),
                          Catch::StartsWith("node 'layer1.0.conv2.conv': the device faulted") &&
                              Catch::Contains("cannot use it"));
        // A caller that is no node is named as it names itself.
        CHECK_THROWS_WITH(throw_if_device_faulted(nullptr, "the weights' L2 window at batch 8"),
                          Catch::StartsWith("the weights' L2 window at batch 8: the device faulted"));
    }
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
