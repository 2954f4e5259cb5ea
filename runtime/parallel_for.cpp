// parallel_for.cpp: see parallel_for.h. A call is a Job on the pool's queue; workers join it until it has
// the helpers it asked for, the caller works on it too, and the caller leaves once it has taken the job off
// the queue and the last helper has finished.
#include "parallel_for.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

namespace resnest {

namespace {

// The CPUs this process may run on (its affinity mask, which a container's CPU set narrows), at least 1.
int usable_cpus() {
#if defined(__linux__)
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    return (int)std::max(1u, std::thread::hardware_concurrency());
}

struct Job {
    const std::function<void(int64_t)>* fn = nullptr;
    int64_t count = 0;
    // Items are claimed in increasing order. Once item f has failed, items above the lowest failure so far
    // are skipped, but every item below it still runs, so the error kept (the lowest index that failed) does
    // not depend on which thread got there first.
    std::atomic<int64_t> next{0}, lowest_failed{0};
    std::exception_ptr error;
    std::mutex error_mutex;
    int helpers_wanted = 0;   // workers still to join; the pool's mutex guards both counts
    int helpers_running = 0;

    void work() {
        for (int64_t i = next++; i < count && i < lowest_failed; i = next++) {
            try {
                (*fn)(i);
            } catch (...) {
                std::lock_guard<std::mutex> lock(error_mutex);
                if (i < lowest_failed) lowest_failed = i, error = std::current_exception();
            }
        }
    }
};

class WorkerPool {
  public:
    // Destroyed at exit, after stopping and joining its workers (no call may be running then).
    static WorkerPool& shared() {
        static WorkerPool pool(usable_cpus() - 1);
        return pool;
    }

    ~WorkerPool() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        work_ready_.notify_all();
        for (std::thread& t : threads_) t.join();
    }

    int workers() const { return (int)threads_.size(); }

    void run(Job& job) {
        if (job.helpers_wanted > 0) {
            std::lock_guard<std::mutex> lock(mutex_);
            queue_.push_back(&job);
            work_ready_.notify_all();
        }
        job.work();
        std::unique_lock<std::mutex> lock(mutex_);
        auto queued = std::find(queue_.begin(), queue_.end(), &job);
        if (queued != queue_.end()) queue_.erase(queued);
        job.helpers_wanted = 0;
        helper_done_.wait(lock, [&] { return job.helpers_running == 0; });
    }

  private:
    explicit WorkerPool(int workers) {
        for (int t = 0; t < workers; t++) {
            try {
                threads_.emplace_back([this] { work_loop(); });
            } catch (const std::system_error&) {
                break;  // no more threads to be had (a process limit): the ones started do the work
            }
        }
    }

    void work_loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        for (;;) {
            work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;  // stopping, nothing left to help with
            Job* job = queue_.front();
            if (--job->helpers_wanted == 0) queue_.pop_front();
            job->helpers_running++;
            lock.unlock();
            job->work();
            lock.lock();
            if (--job->helpers_running == 0) helper_done_.notify_all();
        }
    }

    std::mutex mutex_;
    std::condition_variable work_ready_, helper_done_;
    std::deque<Job*> queue_;  // calls still wanting helpers, oldest first
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace

int parallel_for_workers() { return WorkerPool::shared().workers(); }

void parallel_for_each_index(int64_t count, const std::function<void(int64_t)>& fn, int threads) {
    if (count <= 0) return;
    WorkerPool& pool = WorkerPool::shared();
    if (threads <= 0) threads = pool.workers() + 1;
    Job job;
    job.fn = &fn;
    job.count = count;
    job.lowest_failed = count;
    job.helpers_wanted = (int)std::min<int64_t>({(int64_t)threads - 1, (int64_t)pool.workers(), count - 1});
    pool.run(job);
    if (job.error) std::rethrow_exception(job.error);
}

}  // namespace resnest
