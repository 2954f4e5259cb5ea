// cuda_gemm_conv.h: a 1x1 convolution (see conv_as_gemm.h) as one cuBLASLt matmul at one batch size:
//   y (N*H*W, Cout) = relu?( x (N*H*W, Cin) * w (Cout, Cin)^T + bias + z )
// with the bias and the ReLU in cuBLASLt's epilogue and the residual z as its C matrix (beta = 1). One
// kernel where cuDNN's fused call may run several, and cuBLASLt's Hopper GEMMs for the small-batch shapes.
// Any other convolution runs the same way over its im2col matrix (`im2col` in describe): the gather
// (kernels/im2col_nhwc.cu) writes cols (N*OH*OW, KH*KW*Cin) to the front of the workspace, then
//   y (N*OH*OW, Cout) = relu?( cols * w_dense (Cout, KH*KW*Cin)^T + bias + z )
// with the dense filter (a grouped convolution's block-diagonal form): two kernels, for the small batches
// where cuDNN's grouped 3x3 kernels run far below the card's rate. Or, `group_major` (a grouped
// convolution), without the zero blocks: cols gathered in (g, kh, kw, c') order and a strided batch of G
// matmuls, group g's
//   y[:, g*Cout/G ..] (N*OH*OW, Cout/G) = relu?( cols[:, g*K/G ..] * w_g (Cout/G, K/G)^T + bias_g + z_g )
// over the grouped filter as stored (OHWI, K = KH*KW*Cin): half the arithmetic and filter bytes at G = 2.
//
// The algorithm is one of cuBLASLt's heuristic candidates for the actual pointer alignments, or one of the
// first kSplitKRanks of them with the reduction split 2 to 32 ways where the product fills under a wave
// (split_k_candidates, conv_as_gemm.h): the fastest by timing the call on the context's buffers,
// remembered in the algorithm cache by its rank in the heuristic list (the list is the same for the same
// GPU, library version and problem), its split and the serialized cublasLtMatmulAlgo_t itself, which a
// cached start checks and runs without asking for the heuristic list again.
#pragma once
#include <cublasLt.h>

#include <cstdint>
#include <string>
#include <vector>

#include "conv_as_gemm.h"
#include "cuda/cuda_conv.h"

namespace resnest {

// Whether the choice times split-K forms: yes unless RESNEST_SPLIT_K=off (a diagnostic, for comparing).
bool split_k_search_enabled();

// The largest power of two (up to 256) that divides v (an address or a byte stride).
unsigned alignment_of(uintptr_t v);

// cuBLASLt's candidates for the matmul (op, a, b, d; C laid out as D), best first, up to max_count, for
// A/B/C/D pointers `align`-byte aligned and at most workspace_bytes of workspace. 0 where cuBLASLt has none
// (NOT_SUPPORTED, or a combination it does not take: INVALID_VALUE); `where` names the node in other errors.
int lt_matmul_heuristics(cublasLtHandle_t lt, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                         cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d, size_t workspace_bytes, unsigned align,
                         int max_count, cublasLtMatmulHeuristicResult_t* out, const std::string& where);

// Whether a serialized algorithm restored from the cache runs this matmul (op, a, b, d; C laid out as D) here:
// it takes A/B/C/D pointers that are only `align`-byte aligned (its CUBLASLT_ALGO_CAP_MIN_ALIGNMENT_*
// capabilities, where cuBLASLt reports them: it was chosen for the alignments of the start that cached it),
// cublasLtMatmulAlgoCheck accepts it, and it needs at most workspace_limit bytes (*workspace: how many).
bool lt_algo_check(cublasLtHandle_t lt, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                   cublasLtMatrixLayout_t d, const cublasLtMatmulAlgo_t& algo, unsigned align, size_t workspace_limit,
                   size_t* workspace);

class GemmConvLaunch {
  public:
    GemmConvLaunch() = default;
    GemmConvLaunch(const GemmConvLaunch&) = delete;
    GemmConvLaunch& operator=(const GemmConvLaunch&) = delete;
    ~GemmConvLaunch();

    // Creates the matmul and matrix descriptors for p (conv_runs_as_gemm must hold) and the buffers `b`
    // (their alignment restricts the candidates; the bias pointer is part of the descriptor). Returns false
    // and says why when cuBLASLt has no matmul for this precision; throws on other failures.
    // With `im2col`, b.w is the dense filter and the matrix must fit b's workspace (else false, with why);
    // with `group_major` too (groups > 1), b.w is the grouped filter and the product a batch of one per group.
    bool describe(const ConvProblem& p, const ConvBuffers& b, const std::string& node, std::string* why,
                  bool im2col = false, bool group_major = false);
    // Takes the cached candidate for `key`, or times up to kMaxCandidates on `b` and keeps the fastest that
    // runs. Not during graph capture. Returns false when no candidate runs (the node stays on cuDNN).
    bool choose_algorithm(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream, ConvAlgoCache& cache,
                          const std::string& key, bool* from_cache);
    // Tests: the best-ranked heuristic candidate that takes a split of `split_k` with reduction `scheme`
    // (a cublasLtReductionScheme_t: CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE or _INPLACE), without timing;
    // false when none runs. The split-K forms the timed choice may pick are then checked against the CPU
    // whether or not they win on this GPU.
    bool choose_split_k(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream, int split_k, int scheme);
    void launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;
    // Mean device time of a few launches after one untimed one, ms.
    float time_call(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;

    int algorithm() const { return rank_; }  // rank in cuBLASLt's heuristic list, -1 before a choice
    int split_k() const { return split_k_; }  // as configured (ours or cuBLASLt's); 1: the reduction in one pass
    // The split's reduction as configured (a cublasLtReductionScheme_t, ours or cuBLASLt's); 0 unsplit or unread.
    int reduction_scheme() const;
    unsigned alignment() const { return align_; }  // bytes: the least alignment of x, w, bias, z and y
    size_t workspace_needed() const { return cols_bytes_ + workspace_; }
    bool im2col() const { return im2col_; }
    // Over im2col: whether the gather asks L2 for the matmul's filter first (KernelStream::prefetch_weights).
    void set_prefetch_filter(bool on) { prefetch_filter_ = on; }
    int batch() const { return (int)g_.batch; }  // products in the strided batch: the groups, or 1

    static constexpr int kMaxCandidates = 6;
    static constexpr size_t kMaxWorkspaceBytes = 32ull << 20;
    static constexpr int kSplitKRanks = 2;  // heuristic candidates whose split-K forms are timed too

  private:
    struct Candidate {
        int rank;     // in the heuristic list
        int split_k;  // 1: as returned
        int scheme;   // cublasLtReductionScheme_t when split
    };
    // The heuristic candidate `base` with its reduction split `split_k` ways (1: unchanged), checked by
    // cuBLASLt for this matmul; false when it does not run or needs more than ws_limit bytes of workspace.
    bool configure(cublasLtHandle_t lt, const cublasLtMatmulHeuristicResult_t& base, int split_k, int scheme,
                   size_t ws_limit, cublasLtMatmulAlgo_t* algo, size_t* workspace) const;
    // What the matmul may use of b's workspace (after the im2col matrix, at most kMaxWorkspaceBytes).
    size_t gemm_workspace_limit(const ConvBuffers& b) const;
    // cuBLASLt's candidates into found, and the ranks of those that ran the query and fit ws_limit.
    void usable_heuristics(cublasLtHandle_t lt, size_t ws_limit, cublasLtMatmulHeuristicResult_t* found,
                           std::vector<int>* ranks) const;
    // Makes candidate c (of found) the one launched; false where cuBLASLt does not take it.
    bool take(cublasLtHandle_t lt, const cublasLtMatmulHeuristicResult_t* found, const Candidate& c, size_t ws_limit);
    // The split-K forms of heuristic candidate `rank` worth timing (none where it fills a wave, has no
    // split-K, or was split by cuBLASLt already).
    std::vector<Candidate> split_k_variants(const cublasLtMatmulHeuristicResult_t& found, int rank) const;
    // Whether algo, as configured, splits K only with a reduction split_k_reduction_allowed takes.
    bool reduction_allowed(const cublasLtMatmulAlgo_t& algo) const;
    // Takes the serialized algorithm of a cache entry where cuBLASLt accepts it for this matmul within
    // ws_limit bytes of workspace; false (nothing changed) otherwise.
    bool restore(cublasLtHandle_t lt, const ConvAlgoChoice& cached, size_t ws_limit);
    cublasStatus_t try_launch(cublasLtHandle_t lt, const ConvBuffers& b, cudaStream_t stream) const;
    void destroy_descriptors();
    // cuBLASLt's candidates, best first; fewer than asked (or none) is normal.
    int heuristics(cublasLtHandle_t lt, size_t workspace_bytes, cublasLtMatmulHeuristicResult_t* out) const;

    const void* matrix_b(const ConvBuffers& b) const { return im2col_ ? b.workspace : b.x; }
    void* gemm_workspace(const ConvBuffers& b) const { return (unsigned char*)b.workspace + cols_bytes_; }

    ConvProblem p_;
    ConvAsGemm g_;
    bool im2col_ = false;
    bool prefetch_filter_ = true;
    Im2colShape cols_shape_;
    size_t cols_bytes_ = 0;  // the im2col matrix at the front of the workspace, rounded up to 256 bytes
    std::string node_;
    const void* bias_ = nullptr;
    unsigned align_ = 256;  // the smallest alignment of the x, w, bias, z and y pointers, bytes
    cublasLtMatmulDesc_t op_ = nullptr;
    cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, c_ = nullptr;  // filter, x, y (and z)
    cublasLtMatmulAlgo_t algo_{};
    int rank_ = -1;
    int split_k_ = 1;  // the reduction's scheme is read back from algo_ (reduction_scheme)
    size_t workspace_ = 0;
};

}  // namespace resnest
