// fuzz_file.h: an in-memory file (memfd) that the fuzz targets rewrite with each input, so the readers
// under test open it through their real path-based entry points (open/mmap, fopen) with no disk traffic.
#pragma once
#include <sys/mman.h>  // memfd_create
#include <unistd.h>    // ftruncate, pwrite, close

#include <cstddef>  // size_t
#include <cstdint>  // uint8_t
#include <cstdlib>  // std::abort
#include <string>   // std::string

namespace fuzz {

class MemoryFile {
  public:
    MemoryFile() {
        fd_ = memfd_create("resnest-fuzz", MFD_CLOEXEC);
        if (fd_ < 0) std::abort();
        path_ = "/proc/self/fd/" + std::to_string(fd_);
    }
    ~MemoryFile() { close(fd_); }
    MemoryFile(const MemoryFile&) = delete;
    MemoryFile& operator=(const MemoryFile&) = delete;

    // Replaces the file's contents with the input and returns a path that opens it.
    const std::string& write(const uint8_t* data, size_t size) {
        if (ftruncate(fd_, 0) != 0) std::abort();
        size_t done = 0;
        while (done < size) {
            ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
            if (n <= 0) std::abort();
            done += static_cast<size_t>(n);
        }
        return path_;
    }

  private:
    int fd_ = -1;
    std::string path_;
};

}  // namespace fuzz
