// Debian's libtorch-dev 1.13 ships c10d's reducer.hpp without the distributed
// autograd header it includes. reducer.hpp only needs two names from it: the
// context's shared pointer type (a member of Reducer, whose layout does not
// depend on the pointee) and its GradCallback type. This stand-in declares
// just those, as libtorch 1.13 defines them. It is searched after the real
// include paths (-idirafter), so a libtorch that ships the header uses its own.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <memory>

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor &)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

}  // namespace autograd
}  // namespace distributed
}  // namespace torch
