// test_cuda_host_runtime.cpp: the CUDA backend's runtime machinery that needs no device: errors named by
// node and classified for the capture's fallbacks, CUDA's initialisation (and cuDNN's preload) on a thread
// of its own, the environment settings, the persisting-L2 carve-out's registry on a fake device and the
// weights' L2 window plan, and a fallback refused on a device that cannot be used.
#include <catch2/catch.hpp>

#ifdef RESNEST_HAVE_CUDA

#include <dlfcn.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_engine.h"
#include "cuda/cuda_l2_weights.h"
#include "test_helpers.h"

using namespace resnest;

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

TEST_CASE("RESNEST_SPLIT_K, RESNEST_CHOICE_TIMING and RESNEST_CUDA_DEBUG take their two values, and another is "
          "named in a warning", "[cuda-host]") {
    struct Setting {
        const char *variable, *usual, *other;
    };
    for (const Setting& s : {Setting{"RESNEST_SPLIT_K", "on", "off"}, Setting{"RESNEST_CHOICE_TIMING", "replays", "launches"},
                             Setting{"RESNEST_CUDA_DEBUG", "0", "1"}}) {
        INFO(s.variable);
        std::string warning = "stale";
        for (const char* v : {(const char*)nullptr, "", s.usual}) {
            CHECK_FALSE(env_setting_is(s.variable, v, s.usual, s.other, "what the usual value does", &warning));
            CHECK(warning.empty());
        }
        CHECK(env_setting_is(s.variable, s.other, s.usual, s.other, "what the usual value does", &warning));
        CHECK(warning.empty());
        CHECK_FALSE(env_setting_is(s.variable, "bogus", s.usual, s.other, "what the usual value does", &warning));
        CHECK(warning == std::string(s.variable) + "=bogus is neither " + s.usual + " nor " + s.other +
                             "; what the usual value does (" + s.usual + ")");
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

TEST_CASE("a failed device allocation names what, its size (KiB below 1 MiB) and what to do", "[cuda-host]") {
    CHECK(allocation_failure("the implicit GEMM tile counts", 16384, 0, cudaErrorMemoryAllocation, "lower --batch") ==
          "cannot allocate the implicit GEMM tile counts (16.0 KiB) on CUDA device 0: out of memory; lower --batch");
    CHECK(allocation_failure("m.json's weights", (int64_t)97 << 20 | 1 << 19, 3, cudaErrorMemoryAllocation,
                             "free device memory") ==
          "cannot allocate m.json's weights (97.5 MiB) on CUDA device 3: out of memory; free device memory");
    CHECK(allocation_failure("the activation arena", (int64_t)10 << 30, 0, cudaErrorMemoryAllocation, "x") ==
          "cannot allocate the activation arena (10240.0 MiB) on CUDA device 0: out of memory; x");
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

#endif  // RESNEST_HAVE_CUDA
