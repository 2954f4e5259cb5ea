// parallel_for.h: the load path's one threading helper: fn(i) for every i in [0, count), spread over
// std::threads that each take the next index from a shared counter (work items of very different sizes,
// such as weight tensors, balance themselves). Used where the items are independent: drawing seeded
// weights, laying out the device weight buffer.
#pragma once
#include <cstdint>
#include <functional>

namespace resnest {

// threads: 0 = one per CPU this process may use (at most `count`; fewer when the system will not start
// more). When items throw, the exception of the lowest index that threw is rethrown once every thread has
// stopped (the same one however the threads ran); items above it may be skipped.
void parallel_for_each_index(int64_t count, const std::function<void(int64_t)>& fn, int threads = 0);

}  // namespace resnest
