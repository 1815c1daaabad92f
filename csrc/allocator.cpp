// allocator.cpp: a caching CPU allocator for libtorch. Freed blocks of 256 KiB
// and more are kept in size classes and handed out again, so a step that
// allocates the same large buffers as the last one reuses mapped memory
// instead of page-faulting fresh pages in.
#include "allocator.h"

#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace {

// CachingAllocator keeps freed large blocks for reuse.
class CachingAllocator final : public c10::Allocator {
 public:
  static constexpr size_t kMin = 256 << 10;

  c10::DataPtr allocate(size_t n) const override {
    if (n < kMin) {
      void *p = aligned(n == 0 ? 64 : n);
      return {p, p, &free_small, at::Device(at::DeviceType::CPU)};
    }
    const size_t cls = size_class(n);
    void *p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= cls;
      }
    }
    if (p == nullptr) p = aligned(cls);
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_[p] = cls;
      in_use_ += cls;
    }
    return {p, p, &free_large, at::Device(at::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &free_large_or_small; }
  // copy_data is pure virtual from libtorch 2.3; harmless before.
  void copy_data(void *dest, const void *src, std::size_t count) const { std::memcpy(dest, src, count); }

  static CachingAllocator *get() {
    static CachingAllocator a;
    return &a;
  }
  void set_cap(uint64_t cap) {
    std::lock_guard<std::mutex> lock(mu_);
    cap_ = cap;
  }
  // empty frees every cached block (blocks in use are not touched).
  void empty() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto &kv : free_)
      for (void *p : kv.second) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  void stats(uint64_t *in_use, uint64_t *cached) {
    std::lock_guard<std::mutex> lock(mu_);
    *in_use = in_use_;
    *cached = cached_;
  }

 private:
  static void *aligned(size_t n) {
    void *p = nullptr;
    if (posix_memalign(&p, 64, n) != 0 || p == nullptr) throw std::bad_alloc();
    return p;
  }
  // size_class rounds n up to a multiple of 1/8 of its power of two.
  static size_t size_class(size_t n) {
    size_t top = size_t(1) << (63 - __builtin_clzll(n));
    size_t step = std::max<size_t>(top / 8, 4096);
    return (n + step - 1) / step * step;
  }
  static void free_small(void *p) { std::free(p); }
  static void free_large(void *p) { get()->release(p); }
  static void free_large_or_small(void *p) {
    CachingAllocator *a = get();
    {
      std::lock_guard<std::mutex> lock(a->mu_);
      if (a->size_.count(p) == 0) {
        std::free(p);
        return;
      }
    }
    a->release(p);
  }
  void release(void *p) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = size_.find(p);
    if (it == size_.end()) {
      std::free(p);
      return;
    }
    const size_t cls = it->second;
    size_.erase(it);
    in_use_ -= cls;
    if (cached_ + cls > cap_) {
      std::free(p);
      return;
    }
    free_[cls].push_back(p);
    cached_ += cls;
  }

  mutable std::mutex mu_;
  mutable std::unordered_map<size_t, std::vector<void *>> free_;
  mutable std::unordered_map<void *, size_t> size_;
  mutable uint64_t cached_ = 0, in_use_ = 0;
  uint64_t cap_ = ~uint64_t(0);
};


}  // namespace

namespace lvshim {

void use_caching_allocator(uint64_t cap_bytes) {
  CachingAllocator::get()->set_cap(cap_bytes);
  c10::SetCPUAllocator(CachingAllocator::get(), /*priority=*/10);
}
void caching_allocator_stats(uint64_t *in_use, uint64_t *cached) { CachingAllocator::get()->stats(in_use, cached); }
void caching_allocator_empty() { CachingAllocator::get()->empty(); }

}  // namespace lvshim
