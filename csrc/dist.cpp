// dist.cpp: c10d for lvshim (see dist.h). Everything here is libtorch's own
// machinery (TCPStore, ProcessGroupGloo/NCCL, broadcast_coalesced, Reducer);
// this file only holds the objects and calls them as DistributedDataParallel
// does.
#include "dist.h"

#include <torch/csrc/autograd/custom_function.h>
// libtorch is built with Gloo (USE_C10D_GLOO); its headers need the macro too.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef LVSHIM_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <c10/core/GradMode.h>

#include <chrono>
#include <memory>

namespace lvshim {
namespace dist {

struct Store {
  c10::intrusive_ptr<c10d::Store> store;
};
struct Group {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
};
struct DDP {
  std::shared_ptr<c10d::Reducer> reducer;
  std::shared_ptr<c10d::Logger> logger;
  bool find_unused;
  int buckets;
};

Store *store_new(const std::string &host, int port, int world, bool server, int64_t timeout_ms) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(port);
  o.isServer = server;
  o.numWorkers = world;
  o.waitWorkers = true;
  o.timeout = std::chrono::milliseconds(timeout_ms);
  return new Store{c10::make_intrusive<c10d::TCPStore>(host, o)};
}
void store_free(Store *s) { delete s; }
void store_set(Store *s, const std::string &key, const std::string &value) {
  s->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
}
std::string store_get(Store *s, const std::string &key) {
  auto v = s->store->get(key);
  return std::string(v.begin(), v.end());
}
int64_t store_add(Store *s, const std::string &key, int64_t delta) { return s->store->add(key, delta); }
bool store_check(Store *s, const std::string &key) { return s->store->check({key}); }

Group *gloo_new(Store *s, int rank, int world, int64_t timeout_ms, const std::string &iface,
                const std::string &host, int threads) {
  auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
  if (!iface.empty()) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
  } else if (!host.empty()) {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
  } else {
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  if (threads > 0) opts->threads = threads;
  return new Group{c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, world, opts)};
}

Group *nccl_new(Store *s, int rank, int world, int64_t timeout_ms) {
#ifdef LVSHIM_NCCL
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = std::chrono::milliseconds(timeout_ms);
  return new Group{c10::make_intrusive<c10d::ProcessGroupNCCL>(s->store, rank, world, opts)};
#else
  (void)s, (void)rank, (void)world, (void)timeout_ms;
  throw std::runtime_error(
      "this build has no NCCL: build the shim against a CUDA libtorch with NCCL=1 (docs/SCALING.md)");
#endif
}
void group_free(Group *g) { delete g; }
std::string group_backend(Group *g) { return g->pg->getBackendName(); }

void allreduce(Group *g, std::vector<at::Tensor> ts, bool avg) {
  c10::AutoGradMode no_grad(false);  // in place, also on parameters
  // Gloo reduces contiguous buffers; other layouts (channels-last) go
  // through a contiguous copy.
  std::vector<at::Tensor> bufs;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto &t : ts) {
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    bufs.push_back(one[0]);
    works.push_back(g->pg->allreduce(one));
  }
  for (size_t i = 0; i < ts.size(); i++) {
    works[i]->wait();
    if (avg) bufs[i].div_(g->pg->getSize());
    if (!bufs[i].is_same(ts[i])) ts[i].copy_(bufs[i]);
  }
}

void broadcast(Group *g, std::vector<at::Tensor> ts, int root) {
  c10::AutoGradMode no_grad(false);  // copies into parameters
  c10d::broadcast_coalesced(g->pg, ts, 256 << 20, root);
}

void barrier(Group *g) { g->pg->barrier()->wait(); }

namespace {
// AllReduceSum is torch.distributed.nn.all_reduce: y = sum over the ranks of
// x; dL/dx = sum over the ranks of dL/dy.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &x, int64_t group) {
    ctx->saved_data["group"] = group;
    auto *g = reinterpret_cast<Group *>(group);
    at::Tensor y = x.detach().clone(at::MemoryFormat::Contiguous);
    allreduce(g, {y}, false);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto *g = reinterpret_cast<Group *>(ctx->saved_data["group"].toInt());
    at::Tensor gx = grads[0].clone(at::MemoryFormat::Contiguous);
    allreduce(g, {gx}, false);
    return {gx, at::Tensor()};
  }
};
}  // namespace

at::Tensor allreduce_autograd(Group *g, const at::Tensor &x) {
  return AllReduceSum::apply(x, reinterpret_cast<int64_t>(g));
}

DDP *reducer_new(Group *g, std::vector<at::Tensor> params, int64_t bucket_bytes, bool find_unused) {
  const size_t first_bucket = 1024 * 1024;  // torch.distributed's _DEFAULT_FIRST_BUCKET_BYTES
  std::vector<bool> sparse(params.size(), false);
  // As DistributedDataParallel.__init__: buckets by size in parameter order,
  // then reversed, since gradients become ready in reverse order.
  std::vector<std::vector<size_t>> idx;
  std::vector<size_t> limits;
  std::tie(idx, limits) = c10d::compute_bucket_assignment_by_size(
      params, {first_bucket, static_cast<size_t>(bucket_bytes)}, sparse, {}, c10::nullopt);
  std::reverse(idx.begin(), idx.end());
  std::reverse(limits.begin(), limits.end());
  auto d = new DDP;
  d->find_unused = find_unused;
  d->buckets = static_cast<int>(idx.size());
  d->reducer = std::make_shared<c10d::Reducer>(std::move(params), std::move(idx), std::move(limits), g->pg,
                                               std::move(sparse), bucket_bytes, find_unused,
                                               /*gradient_as_bucket_view=*/false,
                                               std::unordered_map<size_t, std::string>{},
                                               static_cast<int64_t>(first_bucket));
  d->logger = std::make_shared<c10d::Logger>(d->reducer);
  d->reducer->set_logger(d->logger);
  return d;
}
void reducer_free(DDP *d) { delete d; }

namespace {
// QuietStrides drops one warning of the Reducer: a channels-last 1x1 (or
// depthwise) convolution's weight and its gradient describe the same memory
// order with different strides on their size-1 dimensions, which the
// Reducer reports once per process although the copy it makes is correct
// and costs nothing measurable. Every other warning goes to c10's default.
struct QuietStrides : public c10::WarningHandler {
  void process(const c10::SourceLocation &loc, const std::string &msg, const bool verbatim) override {
    if (msg.rfind("Grad strides do not match bucket view strides", 0) == 0) return;
    c10::WarningHandler::process(loc, msg, verbatim);
  }
};
}  // namespace

void reducer_prepare(DDP *d, const std::vector<at::Tensor> &outputs) {
  // c10's warning handler is per thread: install the filter on the thread
  // that runs the backward pass (the autograd engine runs CPU work on it).
  static QuietStrides quiet;
  static thread_local bool installed = false;
  if (!installed) {
    c10::Warning::set_warning_handler(&quiet);
    installed = true;
  }
  // DistributedDataParallel.forward: rebuild the buckets in the order the
  // gradients became ready in the first iteration, then arm the hooks.
  d->reducer->rebuild_buckets();
  d->reducer->prepare_for_forward();
  d->reducer->prepare_for_backward(d->find_unused ? outputs : std::vector<at::Tensor>{});
}
int reducer_buckets(DDP *d) { return d->buckets; }

}  // namespace dist
}  // namespace lvshim
