// blocks.cpp: the engine benchmark's Xception blocks written directly against
// libtorch (ATen + autograd), the reference for the Go layer's overhead.
//
// It mirrors torch/bench_test.go op for op: same blocks, same shapes, same
// ATen calls (those csrc/lvshim.cpp makes), same thread count (LVNET_THREADS,
// else the CPUs this process may run on, as Go's runtime.NumCPU) and the same
// malloc settings (torch.KeepFreedMemory). Each case runs 2 warm-up
// iterations, then N timed ones, and prints a line in Go's benchmark format:
//
//   BenchmarkXceptionEntry/forward/batch=1 \t N \t 123456 ns/op \t 234567 cpu-ns/op \t 12 faults/op
//
// (cpu-ns/op: CPU time of the whole process, all threads, per iteration;
// faults/op: minor page faults, i.e. memory touched for the first time).
//
// Build (Debian's libtorch-dev; scripts/bench-engine.sh does this):
//   g++ -O2 -std=c++17 -I/usr/include/torch/csrc/api/include csrc/bench/blocks.cpp -o build/bench-blocks -ltorch_cpu -lc10
// Run: build/bench-blocks [-iters N] [-tiny N] [-run name-substring]
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct BN {
  at::Tensor w, b, rm, rv;
};
struct SepConv {
  at::Tensor dw, pw;
};

struct Block {
  bool start_with_relu = false;
  int64_t stride = 1;
  std::vector<SepConv> convs;
  std::vector<BN> bns;
  at::Tensor skip;  // undefined: identity
  BN skip_bn;
  std::vector<at::Tensor> params;  // trainable

  Block(at::Generator &g, int64_t in, int64_t out, int reps, int64_t stride_, bool relu_first)
      : start_with_relu(relu_first), stride(stride_) {
    auto param = [&](double scale, at::IntArrayRef shape) {
      at::Tensor p = at::randn(shape, g, at::kFloat) * scale;
      params.push_back(p);
      return p;
    };
    auto bn = [&](int64_t c) {
      BN p{at::ones({c}), at::zeros({c}), at::zeros({c}), at::ones({c})};
      params.push_back(p.w);
      params.push_back(p.b);
      return p;
    };
    int64_t c = in;
    for (int i = 0; i < reps; i++) {
      SepConv sc;
      sc.dw = param(std::sqrt(2.0 / 9), {c, 1, 3, 3});
      sc.pw = param(std::sqrt(2.0 / c), {out, c, 1, 1});
      convs.push_back(sc);
      bns.push_back(bn(out));
      c = out;
    }
    if (in != out || stride != 1) {
      skip = param(std::sqrt(2.0 / in), {out, in, 1, 1});
      skip_bn = bn(out);
    }
  }

  void set_trainable(bool on) {
    for (auto &p : params) p.set_requires_grad(on);
  }

  static at::Tensor batch_norm(const at::Tensor &h, const BN &p, bool train) {
    return at::batch_norm(h, p.w, p.b, p.rm, p.rv, train, 0.1, 1e-5, true);
  }

  at::Tensor forward(const at::Tensor &inp, bool train) {
    static const int64_t one[2] = {1, 1}, zero[2] = {0, 0};
    at::Tensor h = inp;
    for (size_t i = 0; i < convs.size(); i++) {
      if (i > 0 || start_with_relu) h = at::relu(h);
      h = at::conv2d(h, convs[i].dw, c10::nullopt, at::IntArrayRef(one, 2), at::IntArrayRef(one, 2),
                     at::IntArrayRef(one, 2), h.size(1));
      h = at::conv2d(h, convs[i].pw, c10::nullopt, at::IntArrayRef(one, 2), at::IntArrayRef(zero, 2),
                     at::IntArrayRef(one, 2), 1);
      h = batch_norm(h, bns[i], train);
    }
    if (stride != 1) {
      const int64_t k[2] = {3, 3}, s[2] = {stride, stride};
      h = at::max_pool2d(h, at::IntArrayRef(k, 2), at::IntArrayRef(s, 2), at::IntArrayRef(one, 2),
                         at::IntArrayRef(one, 2), false);
    }
    at::Tensor sk = inp;
    if (skip.defined()) {
      const int64_t s[2] = {stride, stride};
      sk = batch_norm(at::conv2d(inp, skip, c10::nullopt, at::IntArrayRef(s, 2), at::IntArrayRef(zero, 2),
                                 at::IntArrayRef(one, 2), 1),
                      skip_bn, train);
    }
    return h + sk;
  }
};

struct Spec {
  const char *name;
  int64_t in, out;
  int reps;
  int64_t stride;
  bool relu_first;
  int64_t hw;
};

// CPU time (user + system, all threads) of the process in nanoseconds.
long long cpu_ns() {
  rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

// Minor page faults of the process so far.
long long minor_faults() {
  rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_minflt;
}

int default_threads() {
  if (const char *v = std::getenv("LVNET_THREADS")) {
    int n = std::atoi(v);
    if (n > 0) return n;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return 1;
}

}  // namespace

int main(int argc, char **argv) {
  int iters = 5, tiny_iters = 200000;
  std::string filter;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-iters" && i + 1 < argc) {
      iters = std::atoi(argv[++i]);
    } else if (a == "-tiny" && i + 1 < argc) {
      tiny_iters = std::atoi(argv[++i]);
    } else if (a == "-run" && i + 1 < argc) {
      filter = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [-iters N] [-tiny N] [-run substring]\n", argv[0]);
      return 2;
    }
  }
  if (iters < 1) iters = 1;
  if (tiny_iters < 1) tiny_iters = 1;
  // torch.KeepFreedMemory
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 2147483647);
  mallopt(M_TOP_PAD, 1 << 30);
  int threads = default_threads();
  at::set_num_threads(threads);
  std::fprintf(stderr, "libtorch C++ reference: %d intra-op threads, %d iterations\n", at::get_num_threads(), iters);

  // The fixed cost of one ATen op (BenchmarkTinyOp in Go adds the Go layer).
  if (filter.empty() || std::string("BenchmarkTinyOp/add_scalar").find(filter) != std::string::npos) {
    at::Tensor x = at::ones({1});
    for (int i = 0; i < 1000; i++) at::Tensor y = x.add(1);
    long long c0 = cpu_ns();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < tiny_iters; i++) at::Tensor y = x.add(1);
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    std::printf("BenchmarkTinyOp/add_scalar\t%d\t%.1f ns/op\t%.1f cpu-ns/op\n", tiny_iters,
                static_cast<double>(ns) / tiny_iters, static_cast<double>(cpu_ns() - c0) / tiny_iters);
  }
  const Spec specs[] = {
      {"XceptionEntry", 64, 128, 2, 2, false, 150},
      {"XceptionMiddle", 728, 728, 3, 1, true, 19},
  };
  for (const Spec &sp : specs) {
    for (const char *mode : {"forward", "train"}) {
      for (int64_t batch : {1, 4}) {
        std::string name = std::string("Benchmark") + sp.name + "/" + mode + "/batch=" + std::to_string(batch);
        if (!filter.empty() && name.find(filter) == std::string::npos) continue;
        try {
          at::Generator g = at::make_generator<at::CPUGeneratorImpl>(1);
          Block blk(g, sp.in, sp.out, sp.reps, sp.stride, sp.relu_first);
          at::Tensor inp = at::randn({batch, sp.in, sp.hw, sp.hw}, g, at::kFloat);
          bool train = std::string(mode) == "train";
          blk.set_trainable(train);
          auto iter = [&]() {
            if (!train) {
              at::NoGradGuard ng;
              at::Tensor y = blk.forward(inp, false);
              return;
            }
            at::Tensor loss = blk.forward(inp, true).mean();
            loss.backward();
            for (auto &p : blk.params) p.mutable_grad().reset();
          };
          iter();
          iter();
          long long c0 = cpu_ns(), f0 = minor_faults();
          auto t0 = std::chrono::steady_clock::now();
          for (int i = 0; i < iters; i++) iter();
          auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
          std::printf("%s\t%d\t%lld ns/op\t%lld cpu-ns/op\t%.1f faults/op\n", name.c_str(), iters,
                      static_cast<long long>(ns / iters), (cpu_ns() - c0) / iters,
                      static_cast<double>(minor_faults() - f0) / iters);
          std::fflush(stdout);
        } catch (const std::exception &e) {
          std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
          return 1;
        }
      }
    }
  }
  return 0;
}
