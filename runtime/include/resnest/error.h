// error.h: the one exception type the runtime throws.
// Every message names the file, tensor or node at fault and, where the user can fix it, says how.
#pragma once
#include <stdexcept>
#include <string>

namespace resnest {

class Error : public std::runtime_error {
  public:
    explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace resnest
