// lvshim.cpp: implementation of lvshim.h over ATen and the autograd engine, a
// thin layer: the caching allocator lives in allocator.cpp, MPFF's fused op in
// mpff.cpp (its kernels in mpff_kernel.cpp).
#include "lvshim.h"

#include "allocator.h"
#include "dist.h"
#include "mpff.h"

#include <malloc.h>
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <c10/core/InferenceMode.h>
#include <torch/csrc/api/include/torch/version.h>
#if TORCH_VERSION_MAJOR < 2
#include <torch/csrc/autograd/profiler_legacy.h>
#endif

#include <atomic>
#include <mutex>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::atomic<int> g_threads{0};
thread_local int t_threads = -1;

// Applies the wanted intra-op thread count on the calling OS thread: OpenMP keeps
// the count per thread, and Go runs cgo calls on whichever thread it likes.
inline void sync_threads() {
  int want = g_threads.load(std::memory_order_relaxed);
  if (want > 0 && t_threads != want) {
    at::set_num_threads(want);
    t_threads = want;
  }
}

lt_err dup_err(const char *msg) {
  size_t n = std::strlen(msg);
  char *p = static_cast<char *>(std::malloc(n + 1));
  if (p) std::memcpy(p, msg, n + 1);
  return p;
}

inline at::Tensor &T(lt_tensor t) { return *static_cast<at::Tensor *>(t); }
inline lt_tensor wrap(at::Tensor t) { return new at::Tensor(std::move(t)); }
inline c10::optional<at::Tensor> opt(lt_tensor t) {
  if (t == nullptr) return c10::nullopt;
  return T(t);
}
inline at::IntArrayRef dims(const int64_t *d, int n) { return at::IntArrayRef(d, static_cast<size_t>(n)); }
inline at::Device device_of(int type, int index) {
  if (type == 1) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(index));
  return at::Device(at::kCPU);
}
inline c10::optional<at::Generator> gen(lt_gen g) {
  if (g == nullptr) return c10::nullopt;
  return *static_cast<at::Generator *>(g);
}

}  // namespace

#define LT_TRY \
  try {        \
    sync_threads();
#define LT_END                                       \
  }                                                  \
  catch (const c10::Error &e) {                      \
    return dup_err(e.what_without_backtrace());      \
  }                                                  \
  catch (const std::exception &e) {                  \
    return dup_err(e.what());                        \
  }                                                  \
  catch (...) {                                      \
    return dup_err("unknown C++ exception");         \
  }                                                  \
  return nullptr;
#define LT_OUT(expr) LT_TRY *out = wrap(expr); LT_END

extern "C" {

// --- runtime ---------------------------------------------------------------
void lt_set_threads(int n) {
  if (n < 1) n = 1;
  g_threads.store(n);
  sync_threads();
}
int lt_get_threads(void) {
  sync_threads();
  return at::get_num_threads();
}
int lt_cuda_device_count(void) {
  try {
    if (!at::hasCUDA()) return 0;
    return static_cast<int>(at::detail::getCUDAHooks().getNumGPUs());
  } catch (...) {
    return 0;
  }
}
lt_err lt_info(char **out) {
  LT_TRY
  std::ostringstream s;
  s << "{\"torch_version\":\"" << TORCH_VERSION << "\""
    << ",\"mkldnn\":" << (at::hasMKLDNN() ? "true" : "false")
    << ",\"mkl\":" << (at::hasMKL() ? "true" : "false")
    << ",\"openmp\":" << (at::hasOpenMP() ? "true" : "false")
    << ",\"cuda\":" << (at::hasCUDA() ? "true" : "false")
    << ",\"cuda_devices\":" << lt_cuda_device_count()
    << ",\"threads\":" << at::get_num_threads()
    << ",\"interop_threads\":" << at::get_num_interop_threads() << "}";
  *out = dup_err(s.str().c_str());
  LT_END
}
void lt_set_grad_enabled(int on) { c10::GradMode::set_enabled(on != 0); }
int lt_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }
void *lt_inference_mode_enter(void) { return new c10::InferenceMode(true); }
void lt_inference_mode_exit(void *g) { delete static_cast<c10::InferenceMode *>(g); }
lt_err lt_manual_seed(uint64_t seed) {
  LT_TRY
  at::manual_seed(seed);
  LT_END
}

lt_err lt_use_caching_allocator(uint64_t cap_bytes) {
  LT_TRY
  lvshim::use_caching_allocator(cap_bytes);
  LT_END
}
void lt_caching_allocator_stats(uint64_t *in_use, uint64_t *cached) { lvshim::caching_allocator_stats(in_use, cached); }
void lt_caching_allocator_empty(void) {
  lvshim::caching_allocator_empty();
  malloc_trim(0);
}

lt_err lt_profile_begin(const char *path, void **out) {
  LT_TRY
#if TORCH_VERSION_MAJOR < 2
  *out = new torch::autograd::profiler::RecordProfile(std::string(path));
#else
  (void)path;
  *out = nullptr;
  throw std::runtime_error("profiling needs libtorch 1.x (legacy profiler)");
#endif
  LT_END
}
void lt_profile_end(void *p) {
#if TORCH_VERSION_MAJOR < 2
  delete static_cast<torch::autograd::profiler::RecordProfile *>(p);
#else
  (void)p;
#endif
}

// --- lifetime, creation, export -------------------------------------------
void lt_free(lt_tensor t) { delete static_cast<at::Tensor *>(t); }

lt_err lt_from_data(const void *data, const int64_t *shape, int ndim, int dtype, lt_tensor *out) {
  LT_TRY
  auto opts = at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype));
  at::Tensor t = at::empty(dims(shape, ndim), opts);
  if (t.numel() > 0) std::memcpy(t.data_ptr(), data, t.numel() * t.element_size());
  *out = wrap(t);
  LT_END
}

lt_err lt_copy_to(lt_tensor t, void *dst, int64_t nbytes) {
  LT_TRY
  at::Tensor &x = T(t);
  if (!x.device().is_cpu()) throw std::runtime_error("copy_to: tensor is not on the CPU");
  if (!x.is_contiguous()) throw std::runtime_error("copy_to: tensor is not contiguous");
  int64_t have = x.numel() * static_cast<int64_t>(x.element_size());
  if (have != nbytes) throw std::runtime_error("copy_to: size mismatch");
  if (nbytes > 0) std::memcpy(dst, x.data_ptr(), nbytes);
  LT_END
}

lt_err lt_full(const int64_t *shape, int ndim, double value, int dtype, int dev_type, int dev_index,
               lt_tensor *out) {
  LT_OUT(at::full(dims(shape, ndim), value,
                  at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype)).device(device_of(dev_type, dev_index))))
}
lt_err lt_arange(double start, double end, double step, int dtype, lt_tensor *out) {
  LT_OUT(at::arange(start, end, step, at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype))))
}
lt_err lt_empty_like(lt_tensor t, lt_tensor *out) { LT_OUT(at::empty_like(T(t))) }
lt_err lt_zeros_like(lt_tensor t, lt_tensor *out) { LT_OUT(at::zeros_like(T(t))) }
lt_err lt_shallow(lt_tensor t, lt_tensor *out) { LT_OUT(T(t)) }

// --- metadata ---------------------------------------------------------------
int lt_ndim(lt_tensor t) { return static_cast<int>(T(t).dim()); }
void lt_shape(lt_tensor t, int64_t *d) {
  auto s = T(t).sizes();
  for (size_t i = 0; i < s.size(); i++) d[i] = s[i];
}
int lt_dtype(lt_tensor t) { return static_cast<int>(T(t).scalar_type()); }
void lt_device(lt_tensor t, int *type, int *index) {
  auto d = T(t).device();
  *type = d.is_cuda() ? 1 : 0;
  *index = d.has_index() ? d.index() : 0;
}
int64_t lt_numel(lt_tensor t) { return T(t).numel(); }
int lt_is_contiguous(lt_tensor t) { return T(t).is_contiguous() ? 1 : 0; }
int lt_is_channels_last(lt_tensor t) {
  return T(t).dim() == 4 && T(t).is_contiguous(at::MemoryFormat::ChannelsLast) ? 1 : 0;
}
int lt_requires_grad(lt_tensor t) { return T(t).requires_grad() ? 1 : 0; }
int lt_same_storage(lt_tensor a, lt_tensor b) { return T(a).is_same(T(b)) ? 1 : 0; }

// --- conversion ---------------------------------------------------------------
lt_err lt_to(lt_tensor t, int dtype, int dev_type, int dev_index, lt_tensor *out) {
  LT_OUT(T(t).to(device_of(dev_type, dev_index), static_cast<at::ScalarType>(dtype)))
}
lt_err lt_contiguous(lt_tensor t, int channels_last, lt_tensor *out) {
  LT_OUT(T(t).contiguous(channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous))
}
lt_err lt_clone(lt_tensor t, lt_tensor *out) { LT_OUT(T(t).clone()) }
lt_err lt_detach(lt_tensor t, lt_tensor *out) { LT_OUT(T(t).detach()) }

// --- autograd ------------------------------------------------------------------
lt_err lt_set_requires_grad(lt_tensor t, int on) {
  LT_TRY
  T(t).set_requires_grad(on != 0);
  LT_END
}
lt_err lt_backward(lt_tensor t, lt_tensor grad, int retain_graph) {
  LT_TRY
  at::Tensor g;
  if (grad != nullptr) g = T(grad);
  T(t).backward(g, retain_graph != 0, false);
  LT_END
}
lt_err lt_grad(lt_tensor t, lt_tensor *out) {
  LT_TRY
  const at::Tensor &g = T(t).grad();
  *out = g.defined() ? wrap(g) : nullptr;
  LT_END
}
lt_err lt_zero_grad(lt_tensor t) {
  LT_TRY
  T(t).mutable_grad().reset();
  LT_END
}

// --- in place ------------------------------------------------------------------
lt_err lt_copy_(lt_tensor dst, lt_tensor src) {
  LT_TRY
  at::NoGradGuard ng;
  T(dst).copy_(T(src));
  LT_END
}
lt_err lt_fill_(lt_tensor t, double v) {
  LT_TRY
  at::NoGradGuard ng;
  T(t).fill_(v);
  LT_END
}

// --- elementwise ----------------------------------------------------------------
lt_err lt_binary(int op, lt_tensor a, lt_tensor b, lt_tensor *out) {
  LT_TRY
  const at::Tensor &x = T(a), &y = T(b);
  at::Tensor r;
  switch (op) {
    case LT_ADD: r = x + y; break;
    case LT_SUB: r = x - y; break;
    case LT_MUL: r = x * y; break;
    case LT_DIV: r = x / y; break;
    case LT_POW: r = at::pow(x, y); break;
    case LT_MAXIMUM: r = at::maximum(x, y); break;
    case LT_MINIMUM: r = at::minimum(x, y); break;
    case LT_EQ: r = x.eq(y); break;
    case LT_NE: r = x.ne(y); break;
    case LT_LT: r = x.lt(y); break;
    case LT_LE: r = x.le(y); break;
    case LT_GT: r = x.gt(y); break;
    case LT_GE: r = x.ge(y); break;
    case LT_AND: r = at::logical_and(x, y); break;
    case LT_OR: r = at::logical_or(x, y); break;
    default: throw std::runtime_error("binary: unknown op");
  }
  *out = wrap(r);
  LT_END
}
lt_err lt_binary_scalar(int op, lt_tensor a, double b, lt_tensor *out) {
  LT_TRY
  const at::Tensor &x = T(a);
  at::Scalar s(b);
  at::Tensor r;
  switch (op) {
    case LT_ADD: r = x + s; break;
    case LT_SUB: r = x - s; break;
    case LT_MUL: r = x * s; break;
    case LT_DIV: r = x / s; break;
    case LT_POW: r = at::pow(x, s); break;
    case LT_MAXIMUM: r = at::clamp_min(x, s); break;
    case LT_MINIMUM: r = at::clamp_max(x, s); break;
    case LT_EQ: r = x.eq(s); break;
    case LT_NE: r = x.ne(s); break;
    case LT_LT: r = x.lt(s); break;
    case LT_LE: r = x.le(s); break;
    case LT_GT: r = x.gt(s); break;
    case LT_GE: r = x.ge(s); break;
    default: throw std::runtime_error("binary_scalar: unknown op");
  }
  *out = wrap(r);
  LT_END
}
lt_err lt_unary(int op, lt_tensor a, lt_tensor *out) {
  LT_TRY
  const at::Tensor &x = T(a);
  at::Tensor r;
  switch (op) {
    case LT_NEG: r = at::neg(x); break;
    case LT_EXP: r = at::exp(x); break;
    case LT_LOG: r = at::log(x); break;
    case LT_SQRT: r = at::sqrt(x); break;
    case LT_RSQRT: r = at::rsqrt(x); break;
    case LT_ABS: r = at::abs(x); break;
    case LT_TANH: r = at::tanh(x); break;
    case LT_SIGMOID: r = at::sigmoid(x); break;
    case LT_RELU: r = at::relu(x); break;
    case LT_SIN: r = at::sin(x); break;
    case LT_COS: r = at::cos(x); break;
    case LT_FLOOR: r = at::floor(x); break;
    case LT_ROUND: r = at::round(x); break;
    case LT_SIGN: r = at::sign(x); break;
    case LT_NOT: r = at::logical_not(x); break;
    case LT_RECIPROCAL: r = at::reciprocal(x); break;
    case LT_SQUARE: r = at::square(x); break;
    default: throw std::runtime_error("unary: unknown op");
  }
  *out = wrap(r);
  LT_END
}
lt_err lt_hardtanh(lt_tensor a, double lo, double hi, lt_tensor *out) { LT_OUT(at::hardtanh(T(a), lo, hi)) }
lt_err lt_clamp(lt_tensor a, double lo, double hi, lt_tensor *out) { LT_OUT(at::clamp(T(a), lo, hi)) }
lt_err lt_where(lt_tensor c, lt_tensor a, lt_tensor b, lt_tensor *out) { LT_OUT(at::where(T(c), T(a), T(b))) }
lt_err lt_addcmul(lt_tensor a, lt_tensor b, lt_tensor c, double v, lt_tensor *out) {
  LT_OUT(at::addcmul(T(a), T(b), T(c), v))
}

// --- reductions -------------------------------------------------------------------
lt_err lt_reduce(int op, lt_tensor a, const int64_t *d, int nd, int keepdim, lt_tensor *out) {
  LT_TRY
  const at::Tensor &x = T(a);
  bool all = nd == 0;
  at::IntArrayRef ds = dims(d, nd);
  at::Tensor r;
  switch (op) {
    case LT_SUM: r = all ? x.sum() : x.sum(ds, keepdim != 0); break;
    case LT_MEAN: r = all ? x.mean() : x.mean(ds, keepdim != 0); break;
    case LT_AMAX: r = all ? x.max() : at::amax(x, ds, keepdim != 0); break;
    case LT_AMIN: r = all ? x.min() : at::amin(x, ds, keepdim != 0); break;
    case LT_PROD:
      if (!all && nd != 1) throw std::runtime_error("prod: one dimension or all");
      r = all ? x.prod() : x.prod(d[0], keepdim != 0);
      break;
    default: throw std::runtime_error("reduce: unknown op");
  }
  *out = wrap(r);
  LT_END
}
lt_err lt_max_dim(lt_tensor a, int64_t dim, int keepdim, lt_tensor *values, lt_tensor *indices) {
  LT_TRY
  auto r = at::max(T(a), dim, keepdim != 0);
  *values = wrap(std::get<0>(r));
  *indices = wrap(std::get<1>(r));
  LT_END
}
lt_err lt_argmax(lt_tensor a, int64_t dim, int keepdim, lt_tensor *out) { LT_OUT(at::argmax(T(a), dim, keepdim != 0)) }
lt_err lt_norm(lt_tensor a, double p, const int64_t *d, int nd, int keepdim, lt_tensor *out) {
  LT_TRY
  if (nd == 0)
    *out = wrap(at::norm(T(a), p));
  else
    *out = wrap(at::norm(T(a), p, dims(d, nd), keepdim != 0));
  LT_END
}
lt_err lt_item(lt_tensor a, double *out) {
  LT_TRY
  *out = T(a).item<double>();
  LT_END
}

// --- shape ---------------------------------------------------------------------------
lt_err lt_reshape(lt_tensor a, const int64_t *s, int n, lt_tensor *out) { LT_OUT(T(a).reshape(dims(s, n))) }
lt_err lt_permute(lt_tensor a, const int64_t *d, int n, lt_tensor *out) { LT_OUT(T(a).permute(dims(d, n))) }
lt_err lt_transpose(lt_tensor a, int64_t d0, int64_t d1, lt_tensor *out) { LT_OUT(T(a).transpose(d0, d1)) }
lt_err lt_expand(lt_tensor a, const int64_t *s, int n, lt_tensor *out) { LT_OUT(T(a).expand(dims(s, n))) }
lt_err lt_unsqueeze(lt_tensor a, int64_t d, lt_tensor *out) { LT_OUT(T(a).unsqueeze(d)) }
lt_err lt_squeeze(lt_tensor a, int64_t d, lt_tensor *out) { LT_OUT(T(a).squeeze(d)) }
lt_err lt_flatten(lt_tensor a, int64_t s, int64_t e, lt_tensor *out) { LT_OUT(T(a).flatten(s, e)) }
static std::vector<at::Tensor> list(const lt_tensor *ts, int n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}
lt_err lt_cat(const lt_tensor *ts, int n, int64_t dim, lt_tensor *out) { LT_OUT(at::cat(list(ts, n), dim)) }
lt_err lt_stack(const lt_tensor *ts, int n, int64_t dim, lt_tensor *out) { LT_OUT(at::stack(list(ts, n), dim)) }
lt_err lt_split(lt_tensor a, const int64_t *sizes, int n, int64_t dim, lt_tensor *outs) {
  LT_TRY
  auto parts = at::split_with_sizes(T(a), dims(sizes, n), dim);
  for (int i = 0; i < n; i++) outs[i] = wrap(parts[i]);
  LT_END
}
lt_err lt_narrow(lt_tensor a, int64_t dim, int64_t start, int64_t len, lt_tensor *out) {
  LT_OUT(T(a).narrow(dim, start, len))
}
lt_err lt_slice(lt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, lt_tensor *out) {
  LT_OUT(T(a).slice(dim, start, end, step))
}
lt_err lt_index_select(lt_tensor a, int64_t dim, lt_tensor idx, lt_tensor *out) {
  LT_OUT(at::index_select(T(a), dim, T(idx)))
}
lt_err lt_gather(lt_tensor a, int64_t dim, lt_tensor idx, lt_tensor *out) { LT_OUT(at::gather(T(a), dim, T(idx))) }
lt_err lt_repeat_interleave(lt_tensor a, int64_t r, int64_t dim, lt_tensor *out) {
  LT_OUT(at::repeat_interleave(T(a), r, dim))
}
lt_err lt_repeat(lt_tensor a, const int64_t *r, int n, lt_tensor *out) { LT_OUT(T(a).repeat(dims(r, n))) }
lt_err lt_flip(lt_tensor a, const int64_t *d, int n, lt_tensor *out) { LT_OUT(at::flip(T(a), dims(d, n))) }

// --- neural-network ops --------------------------------------------------------------------
lt_err lt_conv2d(lt_tensor x, lt_tensor w, lt_tensor b, const int64_t *stride, const int64_t *padding,
                 const int64_t *dilation, int64_t groups, lt_tensor *out) {
  LT_OUT(at::conv2d(T(x), T(w), opt(b), dims(stride, 2), dims(padding, 2), dims(dilation, 2), groups))
}
lt_err lt_batch_norm(lt_tensor x, lt_tensor w, lt_tensor b, lt_tensor rm, lt_tensor rv, int training,
                     double momentum, double eps, lt_tensor *out) {
  LT_OUT(at::batch_norm(T(x), opt(w), opt(b), opt(rm), opt(rv), training != 0, momentum, eps, true))
}
lt_err lt_max_pool2d(lt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, int ceil_mode,
                     lt_tensor *out) {
  const int64_t one[2] = {1, 1};
  LT_OUT(at::max_pool2d(T(x), dims(k, 2), dims(s, 2), dims(p, 2), dims(one, 2), ceil_mode != 0))
}
lt_err lt_avg_pool2d(lt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, lt_tensor *out) {
  LT_OUT(at::avg_pool2d(T(x), dims(k, 2), dims(s, 2), dims(p, 2)))
}
lt_err lt_adaptive_avg_pool2d(lt_tensor x, int64_t oh, int64_t ow, lt_tensor *out) {
  const int64_t o[2] = {oh, ow};
  LT_OUT(at::adaptive_avg_pool2d(T(x), dims(o, 2)))
}
lt_err lt_replication_pad2d(lt_tensor x, const int64_t *pad4, lt_tensor *out) {
  LT_OUT(at::replication_pad2d(T(x), dims(pad4, 4)))
}
lt_err lt_constant_pad(lt_tensor x, const int64_t *pad, int n, double v, lt_tensor *out) {
  LT_OUT(at::constant_pad_nd(T(x), dims(pad, n), v))
}
lt_err lt_linear(lt_tensor x, lt_tensor w, lt_tensor b, lt_tensor *out) { LT_OUT(at::linear(T(x), T(w), opt(b))) }
lt_err lt_matmul(lt_tensor a, lt_tensor b, lt_tensor *out) { LT_OUT(at::matmul(T(a), T(b))) }
lt_err lt_bmm(lt_tensor a, lt_tensor b, lt_tensor *out) { LT_OUT(at::bmm(T(a), T(b))) }
lt_err lt_softmax(lt_tensor x, int64_t dim, int log, lt_tensor *out) {
  LT_OUT(log ? at::log_softmax(T(x), dim) : at::softmax(T(x), dim))
}
lt_err lt_cosine_similarity(lt_tensor a, lt_tensor b, int64_t dim, double eps, lt_tensor *out) {
  LT_OUT(at::cosine_similarity(T(a), T(b), dim, eps))
}
lt_err lt_normalize(lt_tensor a, double p, int64_t dim, double eps, lt_tensor *out) {
  // torch.nn.functional.normalize: x / max(||x||_p, eps) along dim.
  LT_OUT(T(a) / at::clamp_min(at::norm(T(a), p, {dim}, true), eps).expand_as(T(a)))
}
lt_err lt_cross_entropy(lt_tensor x, lt_tensor target, lt_tensor weight, int reduction, int64_t ignore_index,
                        double label_smoothing, lt_tensor *out) {
  LT_OUT(at::cross_entropy_loss(T(x), T(target), opt(weight), reduction, ignore_index, label_smoothing))
}
lt_err lt_upsample_nearest2d(lt_tensor x, int64_t oh, int64_t ow, lt_tensor *out) {
  const int64_t o[2] = {oh, ow};
  LT_OUT(at::upsample_nearest2d(T(x), dims(o, 2)))
}
lt_err lt_upsample_bilinear2d(lt_tensor x, int64_t oh, int64_t ow, int align_corners, lt_tensor *out) {
  const int64_t o[2] = {oh, ow};
  LT_OUT(at::upsample_bilinear2d(T(x), dims(o, 2), align_corners != 0))
}
lt_err lt_unfold(lt_tensor x, const int64_t *k, const int64_t *d, const int64_t *p, const int64_t *s,
                 lt_tensor *out) {
  LT_OUT(at::im2col(T(x), dims(k, 2), dims(d, 2), dims(p, 2), dims(s, 2)))
}
lt_err lt_dropout(lt_tensor x, double p, int train, lt_gen g, lt_tensor *out) {
  LT_TRY
  const at::Tensor &in = T(x);
  if (!train || p == 0.0) {
    *out = wrap(in);
  } else if (p >= 1.0) {
    *out = wrap(in * 0.0);
  } else {
    at::Tensor keep = at::empty_like(in, at::MemoryFormat::Preserve).bernoulli_(1.0 - p, gen(g));
    *out = wrap(in * keep * (1.0 / (1.0 - p)));
  }
  LT_END
}

lt_err lt_mpff(lt_tensor fa, lt_tensor fb, lt_tensor *out) { LT_OUT(lvshim::mpff(T(fa), T(fb))) }

// --- random ------------------------------------------------------------------------------------
lt_err lt_gen_new(uint64_t seed, lt_gen *out) {
  LT_TRY
  *out = new at::Generator(at::make_generator<at::CPUGeneratorImpl>(seed));
  LT_END
}
void lt_gen_free(lt_gen g) { delete static_cast<at::Generator *>(g); }
lt_err lt_gen_get_state(lt_gen g, lt_tensor *out) {
  LT_TRY
  auto &gg = *static_cast<at::Generator *>(g);
  std::lock_guard<std::mutex> lock(gg.mutex());
  *out = wrap(gg.get_state());
  LT_END
}
lt_err lt_gen_set_state(lt_gen g, lt_tensor state) {
  LT_TRY
  auto &gg = *static_cast<at::Generator *>(g);
  std::lock_guard<std::mutex> lock(gg.mutex());
  gg.set_state(T(state));
  LT_END
}
lt_err lt_rand(lt_gen g, const int64_t *s, int n, int dtype, lt_tensor *out) {
  LT_OUT(at::rand(dims(s, n), gen(g), at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype))))
}
lt_err lt_randn(lt_gen g, const int64_t *s, int n, int dtype, lt_tensor *out) {
  LT_OUT(at::randn(dims(s, n), gen(g), at::TensorOptions().dtype(static_cast<at::ScalarType>(dtype))))
}
lt_err lt_randperm(lt_gen g, int64_t n, lt_tensor *out) { LT_OUT(at::randperm(n, gen(g), at::kLong)) }
lt_err lt_standard_gamma(lt_gen g, lt_tensor alpha, lt_tensor *out) { LT_OUT(at::_standard_gamma(T(alpha), gen(g))) }
lt_err lt_bernoulli(lt_gen g, lt_tensor p, lt_tensor *out) { LT_OUT(at::bernoulli(T(p), gen(g))) }

// --- optimisers --------------------------------------------------------------------------------
lt_err lt_adam_step(const lt_tensor *params, const lt_tensor *exp_avg, const lt_tensor *exp_avg_sq,
                    const int64_t *steps, const double *wd, int n, double lr, double b1, double b2,
                    double eps) {
  LT_TRY
  at::NoGradGuard ng;
  for (int i = 0; i < n; i++) {
    at::Tensor &p = T(params[i]);
    const at::Tensor &g0 = p.grad();
    if (!g0.defined()) continue;
    at::Tensor g = wd[i] != 0.0 ? g0.add(p, wd[i]) : g0;
    at::Tensor &m = T(exp_avg[i]);
    at::Tensor &v = T(exp_avg_sq[i]);
    m.mul_(b1).add_(g, 1.0 - b1);
    v.mul_(b2).addcmul_(g, g.conj(), 1.0 - b2);
    double step = static_cast<double>(steps[i]);
    double bc1 = 1.0 - std::pow(b1, step);
    double bc2 = 1.0 - std::pow(b2, step);
    double step_size = lr / bc1;
    double bc2_sqrt = std::sqrt(bc2);
    at::Tensor denom = (v.sqrt() / bc2_sqrt).add_(eps);
    p.addcdiv_(m, denom, -step_size);
  }
  LT_END
}


// --- distributed (dist.cpp) --------------------------------------------------------------------
namespace {
inline lvshim::dist::Store *ST(lt_store s) { return static_cast<lvshim::dist::Store *>(s); }
inline lvshim::dist::Group *PG(lt_pg g) { return static_cast<lvshim::dist::Group *>(g); }
std::vector<at::Tensor> tensors(const lt_tensor *ts, int n) {
  std::vector<at::Tensor> v;
  for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
  return v;
}
}  // namespace
lt_err lt_store_new(const char *host, int port, int world, int is_server, int64_t timeout_ms, lt_store *out) {
  LT_TRY
  *out = lvshim::dist::store_new(host, port, world, is_server != 0, timeout_ms);
  LT_END
}
void lt_store_free(lt_store s) { lvshim::dist::store_free(ST(s)); }
lt_err lt_store_set(lt_store s, const char *key, const void *val, int64_t n) {
  LT_TRY
  lvshim::dist::store_set(ST(s), key, std::string(static_cast<const char *>(val), static_cast<size_t>(n)));
  LT_END
}
lt_err lt_store_get(lt_store s, const char *key, void **val, int64_t *n) {
  LT_TRY
  std::string v = lvshim::dist::store_get(ST(s), key);
  *val = std::malloc(v.size() + 1);
  if (*val == nullptr) throw std::bad_alloc();
  std::memcpy(*val, v.data(), v.size());
  *n = static_cast<int64_t>(v.size());
  LT_END
}
lt_err lt_store_add(lt_store s, const char *key, int64_t delta, int64_t *out) {
  LT_TRY *out = lvshim::dist::store_add(ST(s), key, delta); LT_END
}
lt_err lt_store_check(lt_store s, const char *key, int *out) {
  LT_TRY *out = lvshim::dist::store_check(ST(s), key) ? 1 : 0; LT_END
}
lt_err lt_pg_new(lt_store s, int backend, int rank, int world, int64_t timeout_ms, const char *iface,
                 const char *host, int threads, lt_pg *out) {
  LT_TRY
  if (backend == 1) {
    *out = lvshim::dist::nccl_new(ST(s), rank, world, timeout_ms);
  } else {
    *out = lvshim::dist::gloo_new(ST(s), rank, world, timeout_ms, iface, host, threads);
  }
  LT_END
}
void lt_pg_free(lt_pg g) { lvshim::dist::group_free(PG(g)); }
lt_err lt_allreduce(lt_pg g, const lt_tensor *ts, int n, int avg) {
  LT_TRY lvshim::dist::allreduce(PG(g), tensors(ts, n), avg != 0); LT_END
}
lt_err lt_broadcast(lt_pg g, const lt_tensor *ts, int n, int root) {
  LT_TRY lvshim::dist::broadcast(PG(g), tensors(ts, n), root); LT_END
}
lt_err lt_barrier(lt_pg g) { LT_TRY lvshim::dist::barrier(PG(g)); LT_END }
lt_err lt_allreduce_autograd(lt_pg g, lt_tensor x, lt_tensor *out) {
  LT_OUT(lvshim::dist::allreduce_autograd(PG(g), T(x)))
}
lt_err lt_reducer_new(lt_pg g, const lt_tensor *params, int n, int64_t bucket_bytes, int find_unused,
                      lt_reducer *out, int *buckets) {
  LT_TRY
  auto *d = lvshim::dist::reducer_new(PG(g), tensors(params, n), bucket_bytes, find_unused != 0);
  *out = d;
  *buckets = lvshim::dist::reducer_buckets(d);
  LT_END
}
lt_err lt_reducer_prepare(lt_reducer r, const lt_tensor *outputs, int n) {
  LT_TRY lvshim::dist::reducer_prepare(static_cast<lvshim::dist::DDP *>(r), tensors(outputs, n)); LT_END
}
void lt_reducer_free(lt_reducer r) { lvshim::dist::reducer_free(static_cast<lvshim::dist::DDP *>(r)); }
}  // extern "C"
