// cuda_gate_gemm.cpp: split attention's gate as two cuBLASLt matmuls and a softmax kernel (see
// cuda_gate_gemm.h).
#include "cuda/cuda_gate_gemm.h"

#include <cstdint>

#include "conv_algo_cache.h"
#include "cuda/cuda_check.h"
#include "cuda/cuda_gemm_conv.h"
#include "split_attention_radix_softmax.cuh"

namespace resnest {

GateGemmLaunch::~GateGemmLaunch() {
    destroy(fc1_);
    destroy(fc2_);
}

void GateGemmLaunch::destroy(Matmul& mm) {
    if (mm.a) cublasLtMatrixLayoutDestroy(mm.a);
    if (mm.b) cublasLtMatrixLayoutDestroy(mm.b);
    if (mm.d) cublasLtMatrixLayoutDestroy(mm.d);
    if (mm.op) cublasLtMatmulDescDestroy(mm.op);
    mm = Matmul{};
}

void GateGemmLaunch::describe_matmul(Matmul& mm, int m, int n, int k, const float* A, const float* B, float* D,
                                     const float* bias, bool relu, float alpha) {
    mm.A = A, mm.B = B, mm.D = D, mm.bias = bias, mm.alpha = alpha;
    mm.align = 256;
    for (uintptr_t v : {(uintptr_t)A, (uintptr_t)B, (uintptr_t)D, (uintptr_t)k * 4, (uintptr_t)m * 4}) {
        const unsigned a = alignment_of(v);
        if (a < mm.align) mm.align = a;
    }
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulDescCreate(&mm.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), node_);
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    const cublasLtEpilogue_t epilogue = relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    RESNEST_CUBLAS_CHECK_AT(
        cublasLtMatmulDescSetAttribute(mm.op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)), node_);
    RESNEST_CUBLAS_CHECK_AT(
        cublasLtMatmulDescSetAttribute(mm.op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)), node_);
    RESNEST_CUBLAS_CHECK_AT(
        cublasLtMatmulDescSetAttribute(mm.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)), node_);
    RESNEST_CUBLAS_CHECK_AT(
        cublasLtMatmulDescSetAttribute(mm.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &mm.bias, sizeof(mm.bias)), node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&mm.a, CUDA_R_32F, (uint64_t)k, (uint64_t)m, k), node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&mm.b, CUDA_R_32F, (uint64_t)k, (uint64_t)n, k), node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&mm.d, CUDA_R_32F, (uint64_t)m, (uint64_t)n, m), node_);
}

bool GateGemmLaunch::describe(const SplitAttentionGateShape& s, const GateGemmBuffers& b, const std::string& node,
                              std::string* why) {
    node_ = node;
    if (s.cardinality != 1) {
        *why = "the gate as matmuls needs cardinality 1 (a grouped fc is " + std::to_string(s.cardinality) +
               " products)";
        return false;
    }
    if (s.chunks != 1) {
        *why = "the gate as matmuls needs the pool in one chunk per image (planned: " + std::to_string(s.chunks) + ")";
        return false;
    }
    if (s.radix < 1 || s.radix > kSplitAttentionMaxRadix) {
        *why = "radix " + std::to_string(s.radix) + " is outside 1.." + std::to_string(kSplitAttentionMaxRadix);
        return false;
    }
    destroy(fc1_);
    destroy(fc2_);
    s_ = s, b_ = b;
    describe_matmul(fc1_, s.inter, s.n, s.channels, b.fc1_w, b.gap, b.hidden, b.fc1_b, true, 1.0f / (float)s.hw);
    describe_matmul(fc2_, s.radix * s.channels, s.n, s.inter, b.fc2_w, b.hidden, b.attn, b.fc2_b, false, 1.0f);
    return true;
}

bool GateGemmLaunch::choose(cublasLtHandle_t lt, Matmul& mm) {
    cublasLtMatmulHeuristicResult_t found = {};
    const int returned = lt_matmul_heuristics(lt, mm.op, mm.a, mm.b, mm.d, 0, mm.align, 1, &found, node_);
    mm.chosen = returned > 0 && found.state == CUBLAS_STATUS_SUCCESS;
    if (mm.chosen) mm.algo = found.algo;
    return mm.chosen;
}

bool GateGemmLaunch::choose_algorithms(cublasLtHandle_t lt, std::string* why) {
    if (!fc1_.op || !fc2_.op) throw Error("node '" + node_ + "': the gate's matmuls were chosen before they were described");
    if (choose(lt, fc1_) && choose(lt, fc2_)) return true;
    *why = "cuBLASLt has no algorithm for the gate's matmuls without workspace";
    return false;
}

std::string GateGemmLaunch::algorithms_hex() const {
    if (!fc1_.chosen || !fc2_.chosen) return "";
    cublasLtMatmulAlgo_t both[2] = {fc1_.algo, fc2_.algo};
    return bytes_to_checked_hex(both, sizeof(both));
}

bool GateGemmLaunch::restore_algorithms(cublasLtHandle_t lt, const std::string& hex) {
    if (!fc1_.op || !fc2_.op)
        throw Error("node '" + node_ + "': the gate's matmuls were restored before they were described");
    cublasLtMatmulAlgo_t both[2];
    if (!checked_hex_to_bytes(hex, both, sizeof(both))) return false;
    Matmul* mms[2] = {&fc1_, &fc2_};
    size_t workspace = 0;  // none: the gate's matmuls run without workspace
    for (int j = 0; j < 2; j++)
        if (!lt_algo_check(lt, mms[j]->op, mms[j]->a, mms[j]->b, mms[j]->d, both[j], mms[j]->align, 0, &workspace))
            return false;
    for (int j = 0; j < 2; j++) mms[j]->algo = both[j], mms[j]->chosen = true;
    return true;
}

void GateGemmLaunch::launch(cublasLtHandle_t lt, KernelStream stream) const {
    if (!fc1_.chosen || !fc2_.chosen)
        throw Error("node '" + node_ + "': the gate's matmuls were launched before an algorithm was chosen");
    const float zero = 0.0f;
    for (const Matmul* mm : {&fc1_, &fc2_})
        RESNEST_CUBLAS_CHECK_AT(cublasLtMatmul(lt, mm->op, &mm->alpha, mm->A, mm->a, mm->B, mm->b, &zero, mm->D, mm->d,
                                               mm->D, mm->d, &mm->algo, nullptr, 0, stream.stream),
                                node_);
    split_attention_radix_softmax_thread_per_channel(b_.attn, s_.n, s_.radix, s_.channels, stream);
}

}  // namespace resnest
