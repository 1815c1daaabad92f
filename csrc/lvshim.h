/* lvshim: the project's C API over libtorch (ATen + autograd).
 *
 * Every function that can fail returns NULL on success or a malloc'ed error
 * message (libtorch's own text) that the caller frees with free(). No C++
 * exception ever crosses this boundary. Tensors are opaque handles owned by the
 * caller and released with lt_free. Results are written to out-parameters.
 *
 * Data types use at::ScalarType codes (stable across libtorch 1.13 - 2.x):
 * 0 uint8, 1 int8, 2 int16, 3 int32, 4 int64, 5 float16, 6 float32,
 * 7 float64, 11 bool, 15 bfloat16. Devices: type 0 = CPU, 1 = CUDA. */
#ifndef LVSHIM_H
#define LVSHIM_H
#include <stdint.h>
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef void *lt_tensor;
typedef void *lt_gen;
typedef char *lt_err;

/* --- runtime ------------------------------------------------------------ */
void lt_set_threads(int n);            /* intra-op threads, applied on every OS thread */
int lt_get_threads(void);
lt_err lt_info(char **out);            /* JSON: version, mkldnn, openmp, cuda, ... */
int lt_cuda_device_count(void);
void lt_set_grad_enabled(int on);      /* thread-local, caller pins the OS thread */
int lt_grad_enabled(void);
void *lt_inference_mode_enter(void);   /* thread-local guard */
void lt_inference_mode_exit(void *g);
lt_err lt_manual_seed(uint64_t seed);
/* Installs a caching CPU allocator: freed blocks of 256 KiB and more are kept
 * (in size classes of 1/8 of a power of two, up to cap_bytes in all) and
 * handed out again, so a training step or a forward pass that allocates the
 * same large buffers as the last one reuses memory that is already mapped
 * instead of page-faulting fresh pages in. */
lt_err lt_use_caching_allocator(uint64_t cap_bytes);
/* Bytes held by the caching allocator: in use, and cached free. */
void lt_caching_allocator_stats(uint64_t *in_use, uint64_t *cached);
/* Frees the blocks the caching allocator keeps and returns free heap memory to
 * the system (malloc_trim); blocks in use stay. */
void lt_caching_allocator_empty(void);
/* Records every op run on the calling thread (and autograd's) until
 * lt_profile_end, then writes a Chrome trace (chrome://tracing) to path.
 * libtorch 1.x only (its legacy profiler); elsewhere an error. */
lt_err lt_profile_begin(const char *path, void **out);
void lt_profile_end(void *p);

/* --- lifetime, creation, export ----------------------------------------- */
void lt_free(lt_tensor t);
lt_err lt_from_data(const void *data, const int64_t *shape, int ndim, int dtype, lt_tensor *out);
lt_err lt_copy_to(lt_tensor t, void *dst, int64_t nbytes);   /* t must be CPU contiguous of the dst type */
lt_err lt_full(const int64_t *shape, int ndim, double value, int dtype, int dev_type, int dev_index, lt_tensor *out);
lt_err lt_arange(double start, double end, double step, int dtype, lt_tensor *out);
lt_err lt_empty_like(lt_tensor t, lt_tensor *out);
lt_err lt_zeros_like(lt_tensor t, lt_tensor *out);
lt_err lt_shallow(lt_tensor t, lt_tensor *out);              /* a second handle to the same tensor */

/* --- metadata ------------------------------------------------------------ */
int lt_ndim(lt_tensor t);
void lt_shape(lt_tensor t, int64_t *dims);
int lt_dtype(lt_tensor t);
void lt_device(lt_tensor t, int *type, int *index);
int64_t lt_numel(lt_tensor t);
int lt_is_contiguous(lt_tensor t);
int lt_is_channels_last(lt_tensor t);
int lt_requires_grad(lt_tensor t);
int lt_same_storage(lt_tensor a, lt_tensor b);

/* --- conversion ---------------------------------------------------------- */
lt_err lt_to(lt_tensor t, int dtype, int dev_type, int dev_index, lt_tensor *out);
lt_err lt_contiguous(lt_tensor t, int channels_last, lt_tensor *out);
lt_err lt_clone(lt_tensor t, lt_tensor *out);
lt_err lt_detach(lt_tensor t, lt_tensor *out);

/* --- autograd ------------------------------------------------------------ */
lt_err lt_set_requires_grad(lt_tensor t, int on);
lt_err lt_backward(lt_tensor t, lt_tensor grad /* may be NULL */, int retain_graph);
lt_err lt_grad(lt_tensor t, lt_tensor *out);                 /* *out = NULL when undefined */
lt_err lt_zero_grad(lt_tensor t);                            /* grad becomes undefined */

/* --- in place (no autograd on leaves that require grad) ------------------ */
lt_err lt_copy_(lt_tensor dst, lt_tensor src);
lt_err lt_fill_(lt_tensor t, double v);

/* --- elementwise --------------------------------------------------------- */
enum { LT_ADD, LT_SUB, LT_MUL, LT_DIV, LT_POW, LT_MAXIMUM, LT_MINIMUM,
       LT_EQ, LT_NE, LT_LT, LT_LE, LT_GT, LT_GE, LT_AND, LT_OR };
lt_err lt_binary(int op, lt_tensor a, lt_tensor b, lt_tensor *out);
lt_err lt_binary_scalar(int op, lt_tensor a, double b, lt_tensor *out);
enum { LT_NEG, LT_EXP, LT_LOG, LT_SQRT, LT_RSQRT, LT_ABS, LT_TANH, LT_SIGMOID,
       LT_RELU, LT_SIN, LT_COS, LT_FLOOR, LT_ROUND, LT_SIGN, LT_NOT, LT_RECIPROCAL, LT_SQUARE };
lt_err lt_unary(int op, lt_tensor a, lt_tensor *out);
lt_err lt_hardtanh(lt_tensor a, double lo, double hi, lt_tensor *out);
lt_err lt_clamp(lt_tensor a, double lo, double hi, lt_tensor *out);
lt_err lt_where(lt_tensor cond, lt_tensor a, lt_tensor b, lt_tensor *out);
lt_err lt_addcmul(lt_tensor a, lt_tensor b, lt_tensor c, double v, lt_tensor *out); /* a + v*b*c */

/* --- reductions ---------------------------------------------------------- */
enum { LT_SUM, LT_MEAN, LT_AMAX, LT_AMIN, LT_PROD };
lt_err lt_reduce(int op, lt_tensor a, const int64_t *dims, int ndims, int keepdim, lt_tensor *out); /* ndims 0: all */
lt_err lt_max_dim(lt_tensor a, int64_t dim, int keepdim, lt_tensor *values, lt_tensor *indices);
lt_err lt_argmax(lt_tensor a, int64_t dim, int keepdim, lt_tensor *out);
lt_err lt_norm(lt_tensor a, double p, const int64_t *dims, int ndims, int keepdim, lt_tensor *out);
lt_err lt_item(lt_tensor a, double *out);

/* --- shape --------------------------------------------------------------- */
lt_err lt_reshape(lt_tensor a, const int64_t *shape, int ndim, lt_tensor *out);
lt_err lt_permute(lt_tensor a, const int64_t *dims, int ndim, lt_tensor *out);
lt_err lt_transpose(lt_tensor a, int64_t d0, int64_t d1, lt_tensor *out);
lt_err lt_expand(lt_tensor a, const int64_t *shape, int ndim, lt_tensor *out);
lt_err lt_unsqueeze(lt_tensor a, int64_t dim, lt_tensor *out);
lt_err lt_squeeze(lt_tensor a, int64_t dim, lt_tensor *out);
lt_err lt_flatten(lt_tensor a, int64_t start, int64_t end, lt_tensor *out);
lt_err lt_cat(const lt_tensor *ts, int n, int64_t dim, lt_tensor *out);
lt_err lt_stack(const lt_tensor *ts, int n, int64_t dim, lt_tensor *out);
lt_err lt_split(lt_tensor a, const int64_t *sizes, int n, int64_t dim, lt_tensor *outs);
lt_err lt_narrow(lt_tensor a, int64_t dim, int64_t start, int64_t len, lt_tensor *out);
lt_err lt_slice(lt_tensor a, int64_t dim, int64_t start, int64_t end, int64_t step, lt_tensor *out);
lt_err lt_index_select(lt_tensor a, int64_t dim, lt_tensor idx, lt_tensor *out);
lt_err lt_gather(lt_tensor a, int64_t dim, lt_tensor idx, lt_tensor *out);
lt_err lt_repeat_interleave(lt_tensor a, int64_t repeats, int64_t dim, lt_tensor *out);
lt_err lt_repeat(lt_tensor a, const int64_t *reps, int n, lt_tensor *out);
lt_err lt_flip(lt_tensor a, const int64_t *dims, int n, lt_tensor *out);

/* --- neural-network ops -------------------------------------------------- */
lt_err lt_conv2d(lt_tensor x, lt_tensor w, lt_tensor b /* NULL */, const int64_t *stride,
                 const int64_t *padding, const int64_t *dilation, int64_t groups, lt_tensor *out);
lt_err lt_batch_norm(lt_tensor x, lt_tensor w, lt_tensor b, lt_tensor rm, lt_tensor rv,
                     int training, double momentum, double eps, lt_tensor *out);
lt_err lt_max_pool2d(lt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p,
                     int ceil_mode, lt_tensor *out);
lt_err lt_avg_pool2d(lt_tensor x, const int64_t *k, const int64_t *s, const int64_t *p, lt_tensor *out);
lt_err lt_adaptive_avg_pool2d(lt_tensor x, int64_t oh, int64_t ow, lt_tensor *out);
lt_err lt_replication_pad2d(lt_tensor x, const int64_t *pad4 /* l r t b */, lt_tensor *out);
lt_err lt_constant_pad(lt_tensor x, const int64_t *pad, int n, double v, lt_tensor *out);
lt_err lt_linear(lt_tensor x, lt_tensor w, lt_tensor b /* NULL */, lt_tensor *out);
lt_err lt_matmul(lt_tensor a, lt_tensor b, lt_tensor *out);
lt_err lt_bmm(lt_tensor a, lt_tensor b, lt_tensor *out);
lt_err lt_softmax(lt_tensor x, int64_t dim, int log, lt_tensor *out);
lt_err lt_cosine_similarity(lt_tensor a, lt_tensor b, int64_t dim, double eps, lt_tensor *out);
lt_err lt_normalize(lt_tensor a, double p, int64_t dim, double eps, lt_tensor *out);
lt_err lt_cross_entropy(lt_tensor x, lt_tensor target, lt_tensor weight /* NULL */,
                        int reduction /* 0 none 1 mean 2 sum */, int64_t ignore_index,
                        double label_smoothing, lt_tensor *out);
lt_err lt_upsample_nearest2d(lt_tensor x, int64_t oh, int64_t ow, lt_tensor *out);
lt_err lt_upsample_bilinear2d(lt_tensor x, int64_t oh, int64_t ow, int align_corners, lt_tensor *out);
lt_err lt_unfold(lt_tensor x, const int64_t *k, const int64_t *d, const int64_t *p,
                 const int64_t *s, lt_tensor *out);
lt_err lt_dropout(lt_tensor x, double p, int train, lt_gen g /* NULL: global */, lt_tensor *out);

/* LVNet's MPFF as one fused op with its own backward: out[b, i*w+j, gy, gx] =
 * sum_c tanh(fa_pad[b, c, gy*w+i, gx*w+j] * fb[b, c, gy, gx]) with fa replicate-padded to
 * w*G (G = fb's side), as model.MPFF computes, without materialising the product.
 * fa: B x C x H x H, fb: B x C x G x G, float32 on the CPU, any memory layout (NHWC is
 * fastest). */
lt_err lt_mpff(lt_tensor fa, lt_tensor fb, lt_tensor *out);

/* --- random -------------------------------------------------------------- */
lt_err lt_gen_new(uint64_t seed, lt_gen *out);
void lt_gen_free(lt_gen g);
lt_err lt_gen_get_state(lt_gen g, lt_tensor *out);
lt_err lt_gen_set_state(lt_gen g, lt_tensor state);
lt_err lt_rand(lt_gen g, const int64_t *shape, int ndim, int dtype, lt_tensor *out);
lt_err lt_randn(lt_gen g, const int64_t *shape, int ndim, int dtype, lt_tensor *out);
lt_err lt_randperm(lt_gen g, int64_t n, lt_tensor *out);
lt_err lt_standard_gamma(lt_gen g, lt_tensor alpha, lt_tensor *out);
lt_err lt_bernoulli(lt_gen g, lt_tensor p, lt_tensor *out);

/* --- optimisers ---------------------------------------------------------- */
/* One torch.optim.Adam step (single-tensor path, amsgrad off, maximize off):
 * for each i with a defined grad: g = grad + wd[i]*p; m = b1*m + (1-b1)*g;
 * v = b2*v + (1-b2)*g*g; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps),
 * with t = steps[i] (already incremented by the caller). */
lt_err lt_adam_step(const lt_tensor *params, const lt_tensor *exp_avg, const lt_tensor *exp_avg_sq,
                    const int64_t *steps, const double *wd, int n, double lr, double b1,
                    double b2, double eps);

/* --- distributed (c10d, dist.cpp) ---------------------------------------- */
/* Data-parallel training as DistributedDataParallel does it, with libtorch's
 * own pieces: a TCPStore for the rendezvous, a Gloo (or NCCL) process group
 * for the collectives, and c10d's Reducer, which buckets the gradients and
 * all-reduces each bucket (averaged) as soon as the backward pass has filled
 * it. Every wait is bounded by the timeout given at creation. */
typedef void *lt_store;
typedef void *lt_pg;
typedef void *lt_reducer;
lt_err lt_store_new(const char *host, int port, int world, int is_server, int64_t timeout_ms, lt_store *out);
void lt_store_free(lt_store s);
lt_err lt_store_set(lt_store s, const char *key, const void *val, int64_t n);
/* Waits for key; *val is malloc'ed (caller frees), *n its length. */
lt_err lt_store_get(lt_store s, const char *key, void **val, int64_t *n);
lt_err lt_store_add(lt_store s, const char *key, int64_t delta, int64_t *out);
lt_err lt_store_check(lt_store s, const char *key, int *out);
/* backend 0 = Gloo (iface: network interface or "", host: this machine's
 * address or "" for the default device; threads 0: Gloo's default), 1 = NCCL. */
lt_err lt_pg_new(lt_store s, int backend, int rank, int world, int64_t timeout_ms, const char *iface,
                 const char *host, int threads, lt_pg *out);
void lt_pg_free(lt_pg g);
/* In place over the ranks: sum (avg 1: mean) of each tensor. */
lt_err lt_allreduce(lt_pg g, const lt_tensor *ts, int n, int avg);
/* root's tensors to every rank, coalesced (c10d::broadcast_coalesced). */
lt_err lt_broadcast(lt_pg g, const lt_tensor *ts, int n, int root);
lt_err lt_barrier(lt_pg g);
/* Differentiable sum over the ranks (backward: sum of the gradients). */
lt_err lt_allreduce_autograd(lt_pg g, lt_tensor x, lt_tensor *out);
/* c10d::Reducer over params (leaves that require grad), buckets of
 * bucket_bytes; *buckets: how many. */
lt_err lt_reducer_new(lt_pg g, const lt_tensor *params, int n, int64_t bucket_bytes, int find_unused,
                      lt_reducer *out, int *buckets);
/* Before each forward pass whose backward all-reduces the gradients. */
lt_err lt_reducer_prepare(lt_reducer r, const lt_tensor *outputs, int n);
void lt_reducer_free(lt_reducer r);

#ifdef __cplusplus
}
#endif
#endif
