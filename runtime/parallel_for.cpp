// parallel_for.cpp: see parallel_for.h.
#include "parallel_for.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace resnest {

// The CPUs this process may run on (its affinity mask, which a container's CPU set narrows), at least 1.
static int usable_cpus() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    return (int)std::max(1u, std::thread::hardware_concurrency());
}

void parallel_for_each_index(int64_t count, const std::function<void(int64_t)>& fn, int threads) {
    if (count <= 0) return;
    if (threads <= 0) threads = usable_cpus();
    threads = (int)std::min<int64_t>(threads, count);
    // Items are claimed in increasing order. Once item f has failed, items above the lowest failure so far
    // are skipped, but every item below it still runs, so the error kept (the lowest index that failed) does
    // not depend on which thread got there first.
    std::atomic<int64_t> next{0}, lowest_failed{count};
    std::exception_ptr first_error;
    std::mutex error_mutex;
    auto worker = [&] {
        for (int64_t i = next++; i < count && i < lowest_failed; i = next++) {
            try {
                fn(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (i < lowest_failed) lowest_failed = i, first_error = std::current_exception();
            }
        }
    };
    std::vector<std::thread> pool;
    pool.reserve((size_t)threads - 1);
    try {
        for (int t = 1; t < threads; t++) pool.emplace_back(worker);
    } catch (const std::system_error&) {
        // No more threads to be had (a process limit): the ones started and this one do the work.
    }
    worker();  // the calling thread works too
    for (std::thread& t : pool) t.join();
    if (first_error) std::rethrow_exception(first_error);
}

}  // namespace resnest
