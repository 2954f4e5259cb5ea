// context_checks.h: the argument checks every backend's Context makes (resnest/engine.h), one message each, so
// that the CPU oracle and the CUDA backend refuse the same misuse in the same words.
#pragma once
#include <string>

#include "resnest/error.h"

namespace resnest {

// `batch` within [1, max_batch]; `what` names the call ("set_input", "run_loaded", ...).
inline void check_context_batch(int batch, int max_batch, const char* what) {
    if (batch < 1 || batch > max_batch)
        throw Error(std::string("Context::") + what + ": batch " + std::to_string(batch) + " is outside [1, " +
                    std::to_string(max_batch) + "], the engine's max_batch (raise EngineOptions::max_batch or --batch)");
}

// ... and the batch set_input loaded (0: nothing yet).
inline void check_context_loaded(int batch, int max_batch, int loaded_batch, const char* what) {
    check_context_batch(batch, max_batch, what);
    if (batch != loaded_batch)
        throw Error(std::string("Context::") + what + ": batch " + std::to_string(batch) +
                    (loaded_batch ? " but set_input loaded " + std::to_string(loaded_batch)
                                  : " but set_input loaded nothing yet"));
}

// get_output's own: somewhere to write, and a result of run_loaded on what set_input loaded.
inline void check_context_output(const float* output, bool output_ready) {
    if (!output) throw Error("Context::get_output: output must not be null");
    if (!output_ready)
        throw Error("Context::get_output: no result for the loaded input yet; call run_loaded after set_input");
}

}  // namespace resnest
