// scoped_env.h: an environment variable set (or unset) for one scope and restored after, however the scope
// is left: for tests of the variables an engine reads when it is made (RESNEST_RADIX_SPLIT,
// RESNEST_ATTENTION_POOL). Shared by the unit and GPU suites. Host code only.
#pragma once
#include <cstdlib>
#include <string>

namespace test_env {

class ScopedEnv {
  public:
    // value null: the variable is unset for the scope.
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (const char* old = std::getenv(name)) had_ = true, old_ = old;
        if (value) setenv(name, value, 1);
        else unsetenv(name);
    }
    ~ScopedEnv() {
        if (had_) setenv(name_.c_str(), old_.c_str(), 1);
        else unsetenv(name_.c_str());
    }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

  private:
    std::string name_, old_;
    bool had_ = false;
};

}  // namespace test_env
