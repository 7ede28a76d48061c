// A C interface to the parts of libtorch's c10d that data parallelism needs: a TCPStore rendezvous,
// a Gloo (CPU) or NCCL (CUDA) process group, and in-place sum all-reduce, broadcast and barrier on
// tensors owned by tch (whose handles are `at::Tensor*`). Every C++ exception is caught here and
// returned as a message: nothing unwinds into Rust.

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef BRAINSSL_NCCL
#include <c10/cuda/CUDACachingAllocator.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

struct bssl_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  std::chrono::milliseconds timeout;
};

namespace {

void set_error(char* err, size_t len, const std::string& msg) {
  if (err == nullptr || len == 0) return;
  // c10 errors carry a C++ backtrace after the first line: keep the message only
  std::string first = msg.substr(0, msg.find("\nException raised from"));
  std::strncpy(err, first.c_str(), len - 1);
  err[len - 1] = '\0';
}

template <typename F>
int guarded(char* err, size_t len, F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    set_error(err, len, e.what());
  } catch (...) {
    set_error(err, len, "unknown C++ exception in c10d");
  }
  return -1;
}

std::vector<at::Tensor> tensors_of(void** ptrs, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) v.push_back(*static_cast<at::Tensor*>(ptrs[i]));
  return v;
}

// Launches one collective per tensor, then waits for all of them: the buckets overlap in the
// backend's worker threads (Gloo) or stream (NCCL).
template <typename Launch>
void launch_all_then_wait(bssl_group* g, void** ptrs, size_t n, Launch&& launch) {
  std::vector<at::Tensor> ts = tensors_of(ptrs, n);
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  works.reserve(n);
  for (auto& t : ts) {
    std::vector<at::Tensor> one{t};
    works.push_back(launch(one));
  }
  for (auto& w : works) w->wait(g->timeout);
}

}  // namespace

extern "C" {

// Joins the group `world` ranks form through the TCPStore at host:port, which this rank serves
// when serve_store is set (rank 0, unless a launcher's agent already serves it).
// backend: "gloo" or "nccl". Gloo binds to `gloo_host` when it is not empty (else the interface
// GLOO_SOCKET_IFNAME names, else this machine's resolved hostname). Returns NULL on failure.
bssl_group* bssl_group_new(const char* backend, const char* host, int port, int rank, int world,
                           int serve_store, long long timeout_ms, const char* gloo_host, char* err, size_t errlen) {
  bssl_group* out = nullptr;
  guarded(err, errlen, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(port);
    so.isServer = serve_store != 0;
    so.numWorkers = world;
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), so);
    auto store = c10::make_intrusive<c10d::PrefixStore>("brainssl", tcp);
    std::string which(backend);
    c10::intrusive_ptr<c10d::Backend> b;
    if (which == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      std::string bind(gloo_host == nullptr ? "" : gloo_host);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (!bind.empty()) {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(bind));
      } else if (ifname != nullptr && *ifname != '\0') {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      b = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
    } else if (which == "nccl") {
#ifdef BRAINSSL_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      b = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
#else
      throw std::runtime_error("this brainssl was built without CUDA: NCCL is not available");
#endif
    } else {
      throw std::runtime_error("unknown c10d backend '" + which + "' (expected gloo or nccl)");
    }
    out = new bssl_group{tcp, b, timeout};
  });
  return out;
}

// Whether this build can create NCCL groups.
int bssl_has_nccl() {
#ifdef BRAINSSL_NCCL
  return 1;
#else
  return 0;
#endif
}

// In-place sum over ranks of each of the n tensors.
int bssl_allreduce_sum(bssl_group* g, void** tensors, size_t n, char* err, size_t errlen) {
  return guarded(err, errlen, [&] {
    launch_all_then_wait(g, tensors, n, [&](std::vector<at::Tensor>& one) {
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      return g->backend->allreduce(one, o);
    });
  });
}

// Each of the n tensors takes root's values.
int bssl_broadcast(bssl_group* g, void** tensors, size_t n, int root, char* err, size_t errlen) {
  return guarded(err, errlen, [&] {
    launch_all_then_wait(g, tensors, n, [&](std::vector<at::Tensor>& one) {
      c10d::BroadcastOptions o;
      o.rootRank = root;
      return g->backend->broadcast(one, o);
    });
  });
}

int bssl_barrier(bssl_group* g, char* err, size_t errlen) {
  return guarded(err, errlen, [&] { g->backend->barrier()->wait(g->timeout); });
}

// Peak bytes held by tensors on CUDA device `dev` since the last reset (PyTorch's
// torch.cuda.max_memory_allocated); -1 without CUDA.
long long bssl_cuda_peak_bytes(int dev) {
#ifdef BRAINSSL_NCCL
  try {
    auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(dev));
    return s.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
  } catch (...) {
    return -1;
  }
#else
  (void)dev;
  return -1;
#endif
}

void bssl_cuda_reset_peak(int dev) {
#ifdef BRAINSSL_NCCL
  try {
    c10::cuda::CUDACachingAllocator::resetPeakStats(static_cast<c10::DeviceIndex>(dev));
  } catch (...) {
  }
#else
  (void)dev;
#endif
}

void bssl_group_free(bssl_group* g) {
  if (g == nullptr) return;
  try {
    g->backend->shutdown();
  } catch (...) {
  }
  delete g;
}

}  // extern "C"
