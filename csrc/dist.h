// dist.h: data-parallel training over libtorch's c10d (the lt_store_*, lt_pg_*,
// lt_reducer_* functions of lvshim.h): the TCPStore rendezvous, Gloo (and, in
// CUDA builds with LVSHIM_NCCL, NCCL) process groups, collectives, and DDP's
// Reducer, which buckets gradients and all-reduces them during the backward pass.
#ifndef LVSHIM_DIST_H
#define LVSHIM_DIST_H
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace lvshim {
namespace dist {

struct Store;
struct Group;
struct DDP;

// store_new connects to (or, with server, hosts) the TCPStore at host:port;
// the server waits for world clients. timeout_ms bounds every wait.
Store *store_new(const std::string &host, int port, int world, bool server, int64_t timeout_ms);
void store_free(Store *s);
void store_set(Store *s, const std::string &key, const std::string &value);
std::string store_get(Store *s, const std::string &key);  // waits for the key
int64_t store_add(Store *s, const std::string &key, int64_t delta);
bool store_check(Store *s, const std::string &key);

// gloo_new makes the Gloo process group of this rank (iface: a network
// interface, else host: an address of this machine, else the default device).
Group *gloo_new(Store *s, int rank, int world, int64_t timeout_ms, const std::string &iface,
                const std::string &host, int threads);
// nccl_new makes a NCCL process group (CUDA builds compiled with LVSHIM_NCCL).
Group *nccl_new(Store *s, int rank, int world, int64_t timeout_ms);
void group_free(Group *g);
std::string group_backend(Group *g);

// allreduce sums ts over the ranks, in place (avg: then divides by the world
// size). broadcast copies root's ts to every rank, coalesced into few messages.
void allreduce(Group *g, std::vector<at::Tensor> ts, bool avg);
void broadcast(Group *g, std::vector<at::Tensor> ts, int root);
void barrier(Group *g);
// allreduce_autograd is a differentiable sum over the ranks: its backward
// sums the gradients over the ranks (SyncBatchNorm's statistics).
at::Tensor allreduce_autograd(Group *g, const at::Tensor &x);

// reducer_new attaches c10d's Reducer to params, in buckets of bucket_bytes
// (the first bucket 1 MiB, as DDP does).
DDP *reducer_new(Group *g, std::vector<at::Tensor> params, int64_t bucket_bytes, bool find_unused);
void reducer_free(DDP *d);
// reducer_prepare is called before each forward pass whose backward should
// all-reduce the gradients (outputs: the loss when find_unused is set).
void reducer_prepare(DDP *d, const std::vector<at::Tensor> &outputs);
int reducer_buckets(DDP *d);

}  // namespace dist
}  // namespace lvshim
#endif
