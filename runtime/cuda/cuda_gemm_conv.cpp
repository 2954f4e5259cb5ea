// cuda_gemm_conv.cpp: a 1x1 convolution as one cuBLASLt matmul with a bias/residual/ReLU epilogue
// (see cuda_gemm_conv.h).
#include "cuda/cuda_gemm_conv.h"
#include "cuda/cuda_engine.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "cuda/cuda_check.h"
#include "cuda/cuda_timing.h"
#include "im2col_nhwc.cuh"

namespace resnest {

static_assert(kReductionInPlace == CUBLASLT_REDUCTION_SCHEME_INPLACE &&
                  kReductionComputeType == CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE &&
                  kReductionOutputType == CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE,
              "conv_as_gemm.h's reduction schemes are cuBLASLt's");

unsigned alignment_of(uintptr_t v) {
    unsigned align = 256;
    while (align > 1 && v % align) align /= 2;
    return align;
}

int lt_matmul_heuristics(cublasLtHandle_t lt, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                         cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d, size_t workspace_bytes, unsigned align,
                         int max_count, cublasLtMatmulHeuristicResult_t* out, const std::string& where) {
    cublasLtMatmulPreference_t pref = nullptr;
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulPreferenceCreate(&pref), where);
    const uint64_t ws = workspace_bytes;
    const uint32_t align32 = align;
    cublasStatus_t s = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                            sizeof(ws));
    for (cublasLtMatmulPreferenceAttributes_t attr :
         {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES})
        if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulPreferenceSetAttribute(pref, attr, &align32, sizeof(align32));
    int returned = 0;
    if (s == CUBLAS_STATUS_SUCCESS) s = cublasLtMatmulAlgoGetHeuristic(lt, op, a, b, d, d, pref, max_count, out, &returned);
    cublasLtMatmulPreferenceDestroy(pref);
    // NOT_SUPPORTED: no algorithm for this problem; INVALID_VALUE: a combination (the pedantic fp32 compute
    // type, say) this cuBLASLt does not take. Anything else (out of memory, an internal error, a library
    // built without this GPU) is a fault, not an answer: it names the node.
    if (s == CUBLAS_STATUS_SUCCESS) return returned;
    if (s == CUBLAS_STATUS_NOT_SUPPORTED || s == CUBLAS_STATUS_INVALID_VALUE) return 0;
    throw Error("node '" + where + "': cuBLASLt's heuristic query failed: " + cublas_status_text(s));
}

bool lt_algo_check(cublasLtHandle_t lt, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                   cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t& algo, unsigned align, size_t workspace_limit,
                   size_t* workspace) {
    for (cublasLtMatmulAlgoCapAttributes_t cap :
         {CUBLASLT_ALGO_CAP_MIN_ALIGNMENT_A_BYTES, CUBLASLT_ALGO_CAP_MIN_ALIGNMENT_B_BYTES,
          CUBLASLT_ALGO_CAP_MIN_ALIGNMENT_C_BYTES, CUBLASLT_ALGO_CAP_MIN_ALIGNMENT_D_BYTES}) {
        uint32_t least = 0;
        size_t written = 0;
        if (cublasLtMatmulAlgoCapGetAttribute(&algo, cap, &least, sizeof(least), &written) == CUBLAS_STATUS_SUCCESS &&
            written == sizeof(least) && least > align)
            return false;
    }
    cublasLtMatmulHeuristicResult_t checked = {};
    if (cublasLtMatmulAlgoCheck(lt, op, a, b, d, d, &algo, &checked) != CUBLAS_STATUS_SUCCESS ||
        checked.workspaceSize > workspace_limit)
        return false;
    *workspace = checked.workspaceSize;
    return true;
}

namespace {

cudaDataType_t storage_type(Precision p) { return p == Precision::fp16 ? CUDA_R_16F : CUDA_R_32F; }

// fp32 is IEEE float arithmetic (no TF32), tf32 may round inputs to TF32, fp16 accumulates in float.
cublasComputeType_t compute_type(Precision p) {
    return p == Precision::fp32   ? CUBLAS_COMPUTE_32F_PEDANTIC
           : p == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                  : CUBLAS_COMPUTE_32F;
}

}  // namespace

bool split_k_search_enabled() {
    static const bool enabled = [] {
        std::string unused;  // the engine warns
        return !env_setting_is("RESNEST_SPLIT_K", std::getenv("RESNEST_SPLIT_K"), "on", "off", "", &unused);
    }();
    return enabled;
}

GemmConvLaunch::~GemmConvLaunch() { destroy_descriptors(); }

void GemmConvLaunch::destroy_descriptors() {
    if (a_) cublasLtMatrixLayoutDestroy(a_);
    if (b_) cublasLtMatrixLayoutDestroy(b_);
    if (c_) cublasLtMatrixLayoutDestroy(c_);
    if (op_) cublasLtMatmulDescDestroy(op_);
    a_ = b_ = c_ = nullptr;
    op_ = nullptr;
}

bool GemmConvLaunch::describe(const ConvProblem& p, const ConvBuffers& b, const std::string& node, std::string* why,
                              bool im2col, bool group_major) {
    destroy_descriptors();  // a second describe replaces the first
    rank_ = -1;
    p_ = p;
    node_ = node;
    im2col_ = im2col;
    if (group_major && (!im2col || p.attrs.groups < 2))
        throw Error("node '" + node + "': a group-major matmul batch is for a grouped convolution over im2col");
    if (im2col) {
        cols_shape_ = im2col_shape(p.attrs, p.batch, p.in_h, p.in_w, p.out_h, p.out_w, group_major);
        g_ = group_major ? conv_as_grouped_im2col_gemm(cols_shape_, p.attrs.out_channels)
                         : conv_as_im2col_gemm(cols_shape_, p.attrs.out_channels);
        const size_t es = (size_t)storage_bytes(p.precision);
        cols_bytes_ = ((size_t)(cols_shape_.rows() * cols_shape_.cols()) * es + 255) / 256 * 256;
        if (cols_bytes_ > b.workspace_bytes) {
            *why = "the im2col matrix (" + std::to_string(cols_bytes_ >> 20) + " MiB) does not fit the " +
                   std::to_string(b.workspace_bytes >> 20) + " MiB workspace";
            return false;
        }
    } else {
        g_ = conv_as_gemm(p.attrs, p.batch, p.in_h, p.in_w);
        cols_bytes_ = 0;
    }
    bias_ = b.bias;
    align_ = alignment_of((uintptr_t)matrix_b(b));
    // The bias is not one of cuBLASLt's alignment caps; it counts all the same, so that a bias off the weight
    // blob's 256-byte pieces (a future caller's) meets only algorithms that read any alignment.
    for (const void* q : {(const void*)b.w, (const void*)b.y, b.z ? b.z : (const void*)b.y, (const void*)b.bias})
        if (alignment_of((uintptr_t)q) < align_) align_ = alignment_of((uintptr_t)q);
    // A batch's later matrices start a stride in: their alignment counts too (the bias's, by m, as well: an
    // odd m makes every other group's bias start unaligned).
    if (g_.batch > 1) {
        const int64_t es = storage_bytes(p.precision);
        for (int64_t stride : {g_.stride_a, g_.stride_b, g_.stride_c, g_.m})
            if (alignment_of((uintptr_t)(stride * es)) < align_) align_ = alignment_of((uintptr_t)(stride * es));
    }
    cublasStatus_t s = cublasLtMatmulDescCreate(&op_, compute_type(p.precision), CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS) {
        op_ = nullptr;
        *why = std::string("cuBLASLt has no matmul with this compute type (") + cublas_status_text(s) + ")";
        return false;
    }
    const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
    const cublasLtEpilogue_t epilogue = p.relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a, sizeof(trans_a)),
                            node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b, sizeof(trans_b)),
                            node_);
    RESNEST_CUBLAS_CHECK_AT(
        cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)), node_);
    // The bias has the storage type (cuBLASLt's default: D's type), one value per output channel.
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_, sizeof(bias_)),
                            node_);
    const cudaDataType_t dt = storage_type(p.precision);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&a_, dt, (uint64_t)g_.k, (uint64_t)g_.m, g_.lda), node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&b_, dt, (uint64_t)g_.k, (uint64_t)g_.n, g_.ldb), node_);
    RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutCreate(&c_, dt, (uint64_t)g_.m, (uint64_t)g_.n, g_.ldc), node_);
    if (g_.batch > 1) {  // one product per group: the strided batch, and the bias by group
        const int32_t count = (int32_t)g_.batch;
        const std::pair<cublasLtMatrixLayout_t, int64_t> strided[3] = {{a_, g_.stride_a}, {b_, g_.stride_b},
                                                                      {c_, g_.stride_c}};
        for (const auto& [layout, stride] : strided) {
            RESNEST_CUBLAS_CHECK_AT(
                cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)), node_);
            RESNEST_CUBLAS_CHECK_AT(cublasLtMatrixLayoutSetAttribute(layout, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                                                     &stride, sizeof(stride)),
                                    node_);
        }
        const int64_t bias_stride = g_.m;
        RESNEST_CUBLAS_CHECK_AT(cublasLtMatmulDescSetAttribute(op_, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, &bias_stride,
                                                               sizeof(bias_stride)),
                                node_);
    }
    return true;
}

int GemmConvLaunch::heuristics(cublasLtHandle_t lt, size_t workspace_bytes,
                               cublasLtMatmulHeuristicResult_t* out) const {
    // None (the node stays on cuDNN) is normal; the GPU op test requires candidates for tf32 and fp16, so a
    // real fault still shows.
    return lt_matmul_heuristics(lt, op_, a_, b_, c_, workspace_bytes, align_, kMaxCandidates, out, node_);
}

cublasStatus_t GemmConvLaunch::try_launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const {
    const float alpha = 1.0f, beta = b.z ? 1.0f : 0.0f;
    const void* c = b.z ? b.z : b.y;
    if (im2col_) {  // an ordinary launch: the matmul after it is not a dependent launch either
        // The gather asks L2 for the matmul's filter while it runs (set_prefetch_filter).
        const KernelStream gather(stream, false, prefetch_filter_);
        L2Prefetch filter;
        filter.ptr[0] = b.w, filter.bytes[0] = conv_gemm_filter_extent(g_) * storage_bytes(p_.precision);
        if (p_.precision == Precision::fp16)
            im2col_nhwc<__half>((const __half*)b.x, (__half*)b.workspace, cols_shape_, gather, filter);
        else
            im2col_nhwc<float>((const float*)b.x, (float*)b.workspace, cols_shape_, gather, filter);
    }
    return cublasLtMatmul(lt, op_, &alpha, b.w, a_, matrix_b(b), b_, &beta, c, c_, b.y, c_, &algo_,
                          gemm_workspace(b), workspace_, stream);
}

bool GemmConvLaunch::configure(cublasLtHandle_t lt, const cublasLtMatmulHeuristicResult_t& base, int split_k,
                               int scheme, size_t ws_limit, cublasLtMatmulAlgo_t* algo, size_t* workspace) const {
    *algo = base.algo;
    if (split_k <= 1) {  // as the heuristic returned it (usable: checked by the caller)
        *workspace = base.workspaceSize;
        return true;
    }
    const int32_t splits = split_k;
    const uint32_t reduction = (uint32_t)scheme;
    if (cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits, sizeof(splits)) !=
            CUBLAS_STATUS_SUCCESS ||
        cublasLtMatmulAlgoConfigSetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &reduction,
                                             sizeof(reduction)) != CUBLAS_STATUS_SUCCESS)
        return false;
    // The same check as a restored algorithm gets: the split form's alignment caps, cuBLASLt's own check and
    // the workspace it then needs.
    return lt_algo_check(lt, op_, a_, b_, c_, *algo, align_, ws_limit, workspace);
}

// The split count algo is configured with (CUBLASLT_ALGO_CONFIG_SPLITK_NUM): the choice's own split, or one
// cuBLASLt's heuristic returned already split; false where cuBLASLt does not say.
static bool read_split_k(const cublasLtMatmulAlgo_t& algo, int32_t* split) {
    size_t written = 0;
    return cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, split, sizeof(*split),
                                                &written) == CUBLAS_STATUS_SUCCESS;
}

// The split count algo runs with, 1 where it does not split (or cuBLASLt does not say).
static int configured_split_k(const cublasLtMatmulAlgo_t& algo) {
    int32_t split = 1;
    return read_split_k(algo, &split) && split > 1 ? split : 1;
}

std::vector<GemmConvLaunch::Candidate> GemmConvLaunch::split_k_variants(const cublasLtMatmulHeuristicResult_t& found,
                                                                         int rank) const {
    std::vector<Candidate> out;
    int32_t support = 0;
    uint32_t schemes = 0;
    size_t written = 0;
    if (cublasLtMatmulAlgoCapGetAttribute(&found.algo, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &support, sizeof(support),
                                          &written) != CUBLAS_STATUS_SUCCESS ||
        !support)
        return out;
    if (cublasLtMatmulAlgoCapGetAttribute(&found.algo, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &schemes,
                                          sizeof(schemes), &written) != CUBLAS_STATUS_SUCCESS)
        return out;
    if (configured_split_k(found.algo) > 1) return out;  // cuBLASLt split it already
    for (int split : split_k_candidates(g_.k, found.wavesCount))
        for (int scheme : {CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, CUBLASLT_REDUCTION_SCHEME_INPLACE})
            if ((schemes & (uint32_t)scheme) &&
                split_k_reduction_allowed(p_.precision == Precision::fp16, g_.batch, split, scheme))
                out.push_back({rank, split, scheme});
    return out;
}

int GemmConvLaunch::reduction_scheme() const {
    uint32_t scheme = 0;
    size_t written = 0;
    if (split_k_ <= 1 || cublasLtMatmulAlgoConfigGetAttribute(&algo_, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                                              sizeof(scheme), &written) != CUBLAS_STATUS_SUCCESS)
        return 0;
    return (int)scheme;
}

bool GemmConvLaunch::reduction_allowed(const cublasLtMatmulAlgo_t& algo) const {
    int32_t split = 1;
    uint32_t scheme = 0;
    size_t written = 0;
    if (!read_split_k(algo, &split)) return false;
    if (split <= 1) return true;
    if (cublasLtMatmulAlgoConfigGetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme, sizeof(scheme),
                                             &written) != CUBLAS_STATUS_SUCCESS)
        return false;
    return split_k_reduction_allowed(p_.precision == Precision::fp16, g_.batch, split, (int)scheme);
}

bool GemmConvLaunch::restore(cublasLtHandle_t lt, const ConvAlgoChoice& cached, size_t ws_limit) {
    cublasLtMatmulAlgo_t algo;
    if (cached.opaque.empty() || !checked_hex_to_bytes(cached.opaque, &algo, sizeof(algo))) return false;
    if (!reduction_allowed(algo)) return false;
    size_t workspace = 0;
    if (!lt_algo_check(lt, op_, a_, b_, c_, algo, align_, ws_limit, &workspace)) return false;
    algo_ = algo;
    workspace_ = workspace;
    rank_ = cached.algo;
    split_k_ = configured_split_k(algo_);
    return true;
}

size_t GemmConvLaunch::gemm_workspace_limit(const ConvBuffers& b) const {
    const size_t free_bytes = b.workspace_bytes - cols_bytes_;  // describe checked cols_bytes_ fits
    return free_bytes < kMaxWorkspaceBytes ? free_bytes : kMaxWorkspaceBytes;
}

void GemmConvLaunch::usable_heuristics(cublasLtHandle_t lt, size_t ws_limit, cublasLtMatmulHeuristicResult_t* found,
                                       std::vector<int>* ranks) const {
    const int count = heuristics(lt, ws_limit, found);
    // A candidate cuBLASLt returns already split is kept only with a reduction this runtime allows.
    for (int i = 0; i < count; i++)
        if (found[i].state == CUBLAS_STATUS_SUCCESS && found[i].workspaceSize <= ws_limit &&
            reduction_allowed(found[i].algo))
            ranks->push_back(i);
}

bool GemmConvLaunch::take(cublasLtHandle_t lt, const cublasLtMatmulHeuristicResult_t* found, const Candidate& c,
                          size_t ws_limit) {
    if (!configure(lt, found[c.rank], c.split_k, c.scheme, ws_limit, &algo_, &workspace_)) return false;
    rank_ = c.rank, split_k_ = configured_split_k(algo_);
    return true;
}

bool GemmConvLaunch::choose_algorithm(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream,
                                      ConvAlgoCache& cache, const std::string& key, bool* from_cache) {
    *from_cache = false;
    const size_t ws_limit = gemm_workspace_limit(b);
    // Entries made before split-K was searched name only the rank; this key keeps them apart (and those of
    // RESNEST_SPLIT_K=off runs).
    const std::string cache_key = key + (split_k_search_enabled() ? " split-k" : " split-k off");
    ConvAlgoChoice cached;
    const bool hit = cache.lookup(cache_key, &cached);
    // The serialized algorithm (same cuBLAS version: the key names it), checked, without the heuristic query.
    // Every entry under this key carries one; one that cuBLASLt no longer takes is chosen again.
    if (hit && restore(lt, cached, ws_limit) && try_launch(lt, b, stream) == CUBLAS_STATUS_SUCCESS) {
        // A restored algorithm that faults (a requirement cuBLASLt's caps did not state) shows here, under
        // this node's name, rather than at a later node.
        RESNEST_CUDA_CHECK_AT(cudaStreamSynchronize(stream), node_);
        *from_cache = true;
        return true;
    }
    cublasLtMatmulHeuristicResult_t found[kMaxCandidates] = {};
    std::vector<int> ranks;
    usable_heuristics(lt, ws_limit, found, &ranks);
    // The heuristic's candidates as returned, then the first kSplitKRanks of them with their reduction split
    // where the grid fills under one wave (the small batches).
    std::vector<Candidate> candidates;
    for (int r : ranks) candidates.push_back({r, 1, 0});
    for (size_t j = 0; j < ranks.size() && (int)j < kSplitKRanks && split_k_search_enabled(); j++) {
        std::vector<Candidate> more = split_k_variants(found[ranks[j]], ranks[j]);
        candidates.insert(candidates.end(), more.begin(), more.end());
    }
    Candidate best{-1, 1, 0};
    float best_ms = 0.0f;
    for (const Candidate& c : candidates) {
        if (!take(lt, found, c, ws_limit) || try_launch(lt, b, stream) != CUBLAS_STATUS_SUCCESS) continue;
        float ms = 0.0f;
        try {
            ms = time_call(lt, b, stream);
        } catch (const Error& e) {  // this candidate failed while timed: the others are still timed
            throw_if_device_faulted(stream, "node '" + node_ + "'");  // ... unless the device faulted
            std::fprintf(stderr, "resnest: warning: a cuBLASLt candidate (heuristic rank %d, K split %d) failed while "
                         "timed and is left out: %s\n", c.rank, c.split_k, e.what());
            continue;
        }
        if (best.rank < 0 || ms < best_ms) best = c, best_ms = ms;
    }
    if (best.rank < 0 || !take(lt, found, best, ws_limit)) {
        rank_ = -1;
        return false;
    }
    cache.insert(cache_key, {best.rank, pack_split_k(best.split_k, best.scheme), (int64_t)workspace_,
                             bytes_to_checked_hex(&algo_, sizeof(algo_))});
    return true;
}

bool GemmConvLaunch::choose_split_k(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream, int split_k,
                                    int scheme) {
    const size_t ws_limit = gemm_workspace_limit(b);
    cublasLtMatmulHeuristicResult_t found[kMaxCandidates] = {};
    std::vector<int> ranks;
    usable_heuristics(lt, ws_limit, found, &ranks);
    for (int r : ranks)
        for (const Candidate& c : split_k_variants(found[r], r))
            if (c.split_k == split_k && c.scheme == scheme && take(lt, found, c, ws_limit) &&
                try_launch(lt, b, stream) == CUBLAS_STATUS_SUCCESS)
                return true;
    rank_ = -1, split_k_ = 1;
    return false;
}

void GemmConvLaunch::launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const {
    if (rank_ < 0) throw Error("node '" + node_ + "': the cuBLASLt matmul was launched before an algorithm was chosen");
    if (b.bias != bias_)
        throw Error("node '" + node_ + "': the cuBLASLt matmul was described with another bias buffer");
    RESNEST_CUBLAS_CHECK_AT(try_launch(lt, b, stream), node_);
}

float GemmConvLaunch::time_call(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const {
    return mean_launch_ms(stream, 3, [&] { RESNEST_CUBLAS_CHECK_AT(try_launch(lt, b, stream), node_); }, node_);
}

}  // namespace resnest
