// fuzz_image.cpp: libFuzzer target for image decoding and preprocessing (runtime/image.cpp through
// stb_image, runtime/preprocess.cpp). The input is decoded from memory with a 4-megapixel limit (so one
// execution stays fast; the pixel check itself is the same code at any limit), and a decoded image goes
// through the three pipelines at the default 256/224 and at an odd 7/5 geometry. Any input must end in
// tensors or a resnest::Error; a decoded image has width x height x 3 bytes within the limit, and every
// normalised value is finite.
//
// Build and run (see tests/fuzz/README.md):
//   bash tests/fuzz/run_fuzzers.sh 600 image
//   build-fuzz/tests/fuzz/fuzz_image -dict=tests/fuzz/image.dict -max_len=65536 tests/fuzz/corpus/image
#include <cmath>    // std::isfinite
#include <cstddef>  // size_t
#include <cstdint>  // uint8_t
#include <vector>   // std::vector

#include "image.h"          // resnest::image_decode_memory
#include "preprocess.h"     // resnest::preprocess_image
#include "resnest/error.h"  // resnest::Error

namespace {

constexpr int64_t kFuzzMaxPixels = 4ll << 20;

void check(bool ok) {
    if (!ok) __builtin_trap();
}

void run_pipeline(const resnest::ImageRGB8& image, resnest::PreprocessPipeline pipeline, int resize_short, int crop) {
    resnest::PreprocessOptions options;
    options.pipeline = pipeline;
    options.resize_short = resize_short;
    options.crop = crop;
    std::vector<float> out(3 * static_cast<size_t>(crop) * crop);
    resnest::preprocess_image(image, options, out.data());
    for (float v : out) check(std::isfinite(v));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    resnest::ImageDecodeOptions options;
    options.max_pixels = kFuzzMaxPixels;
    try {
        resnest::ImageRGB8 image = resnest::image_decode_memory(data, size, "<fuzz>", options);
        check(image.width > 0 && image.height > 0);
        check(static_cast<int64_t>(image.width) * image.height <= kFuzzMaxPixels);
        check(image.pixels.size() == static_cast<size_t>(image.width) * image.height * 3);
        for (auto pipeline : {resnest::PreprocessPipeline::paddleclas, resnest::PreprocessPipeline::timm_bilinear,
                              resnest::PreprocessPipeline::timm_bicubic}) {
            run_pipeline(image, pipeline, 256, 224);
            run_pipeline(image, pipeline, 7, 5);
        }
    } catch (const resnest::Error&) {
        // a clean refusal
    }
    return 0;
}
