// parallel_for.h: the runtime's one threading helper: fn(i) for every i in [0, count), spread over the
// calling thread and the workers of one process-wide pool (started on first use, one worker per usable CPU
// but the caller's), which each take the next index from a shared counter (work items of very different
// sizes, such as weight tensors, balance themselves). Used where the items are independent: drawing seeded
// weights, laying out the device weight buffer, folding BN, and the CPU GEMM's column or row blocks.
//
// Calls may come from several threads at once, and from inside an item (a nested call): the caller always
// works on its own call's items, so a call finishes even when every worker is busy elsewhere.
#pragma once
#include <cstdint>
#include <functional>

namespace resnest {

// threads: 0 = one per CPU this process may use; at most `count`, and at most the pool's workers plus the
// caller (fewer when the system would not start more threads). When items throw, the exception of the
// lowest index that threw is rethrown once every thread has stopped (the same one however the threads ran);
// items above it may be skipped.
void parallel_for_each_index(int64_t count, const std::function<void(int64_t)>& fn, int threads = 0);

// The pool's workers (started on the first call to this or parallel_for_each_index).
int parallel_for_workers();

}  // namespace resnest
