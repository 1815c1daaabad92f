package torch

/*
#include <stdlib.h>
#include <malloc.h>
#include "../csrc/lvshim.h"
*/
import "C"

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"unsafe"
)

// ThreadsEnv names the environment variable that overrides the default
// intra-op thread count.
const ThreadsEnv = "LVNET_THREADS"

func init() {
	// This libtorch starts with one intra-op thread; default to all CPUs.
	n := runtime.NumCPU()
	if v, err := strconv.Atoi(os.Getenv(ThreadsEnv)); err == nil && v > 0 {
		n = v
	}
	C.lt_set_threads(C.int(n))
}

// SetThreads sets the number of intra-op threads libtorch uses (at least 1).
func SetThreads(n int) { C.lt_set_threads(C.int(n)) }

// Threads returns the intra-op thread count in use.
func Threads() int { return int(C.lt_get_threads()) }

// CUDADeviceCount returns the number of usable CUDA devices (0 when this
// libtorch has no CUDA).
func CUDADeviceCount() int { return int(C.lt_cuda_device_count()) }

// CUDAAvailable reports whether at least one CUDA device can be used.
func CUDAAvailable() bool { return CUDADeviceCount() > 0 }

// Info describes the libtorch in use.
type Info struct {
	TorchVersion   string `json:"torch_version"`
	MKLDNN         bool   `json:"mkldnn"`
	MKL            bool   `json:"mkl"`
	OpenMP         bool   `json:"openmp"`
	CUDA           bool   `json:"cuda"`
	CUDADevices    int    `json:"cuda_devices"`
	Threads        int    `json:"threads"`
	InteropThreads int    `json:"interop_threads"`
	BLAS           string `json:"blas"`
}

// RuntimeInfo queries libtorch for its version and capabilities, and names the
// BLAS library loaded in this process.
func RuntimeInfo() (Info, error) {
	var p *C.char
	var info Info
	if err := cerr("info", C.lt_info(&p)); err != nil {
		return info, err
	}
	s := C.GoString(p)
	C.free(unsafe.Pointer(p))
	if err := json.Unmarshal([]byte(s), &info); err != nil {
		return info, err
	}
	info.BLAS = LoadedBLAS()
	return info, nil
}

// LoadedBLAS names the BLAS shared library mapped into this process (resolving
// Debian's alternatives links), or "" when none is loaded.
func LoadedBLAS() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		i := strings.IndexByte(line, '/')
		if i < 0 {
			continue
		}
		path := line[i:]
		base := filepath.Base(path)
		if strings.Contains(base, "openblas") || strings.HasPrefix(base, "libblas") || strings.Contains(base, "libmkl") || strings.Contains(base, "blis") {
			if real, err := filepath.EvalSymlinks(path); err == nil {
				path = real
			}
			switch {
			case strings.Contains(path, "openblas"):
				return "openblas (" + path + ")"
			case strings.Contains(path, "mkl"):
				return "mkl (" + path + ")"
			case strings.Contains(path, "blis"):
				return "blis (" + path + ")"
			default:
				return "reference (" + path + ")"
			}
		}
	}
	return ""
}

// CacheEnv names the environment variable that caps, in MiB, the memory the
// caching allocator of KeepFreedMemory keeps for reuse (default: half of the
// machine's RAM).
const CacheEnv = "LVNET_CACHE_MB"

// KeepFreedMemory stops libtorch's large buffers from being returned to the
// kernel and faulted in again. A forward pass or training step allocates and
// frees the same large activation buffers every time; with glibc's defaults
// each buffer above 32 MiB is a fresh mmap whose pages are faulted in on first
// touch, which costs about 40% of an LVNet step on this kind of machine (and
// glibc refuses mmap thresholds above 32 MiB). So:
//
//   - libtorch's CPU allocator is replaced by a caching one (lvshim.h): freed
//     blocks of 256 KiB and more are kept in size classes and reused, up to
//     $LVNET_CACHE_MB (default half the RAM);
//   - glibc keeps freed memory for the rest (no trimming, 1 GiB top pad, the
//     largest mmap threshold it accepts) and uses one malloc arena: Go runs cgo
//     calls on whichever OS thread it likes, and per-thread arenas did not
//     reuse each other's memory.
//
// Call it once, early, before the work starts. Memory stays at the working
// set's peak instead of going up and down.
func KeepFreedMemory() {
	C.mallopt(C.M_ARENA_MAX, C.int(1))
	C.mallopt(C.M_MMAP_THRESHOLD, C.int(32<<20))
	C.mallopt(C.M_TRIM_THRESHOLD, C.int(-1))
	C.mallopt(C.M_TOP_PAD, C.int(1<<30))
	capMB := totalRAMMB() / 2
	if v, err := strconv.ParseUint(os.Getenv(CacheEnv), 10, 64); err == nil {
		capMB = v
	}
	_ = cerr("caching allocator", C.lt_use_caching_allocator(C.uint64_t(capMB<<20)))
}

// CacheStats returns the bytes the caching allocator has handed out and the
// freed bytes it keeps for reuse (both 0 before KeepFreedMemory).
func CacheStats() (inUse, cached uint64) {
	var a, b C.uint64_t
	C.lt_caching_allocator_stats(&a, &b)
	return uint64(a), uint64(b)
}

// ReleaseFreedMemory hands the memory KeepFreedMemory keeps back to the
// system: the caching allocator's free blocks and glibc's free heap. Call it
// between phases whose working sets differ (inference, then training), so
// the process peaks at the larger of them, not their sum; the next step
// faults its buffers in once more.
func ReleaseFreedMemory() { C.lt_caching_allocator_empty() }

func totalRAMMB() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 4096
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb / 1024
		}
	}
	return 4096
}

// PeakRSSMB returns the process's peak resident set size in MiB (VmHWM).
func PeakRSSMB() float64 { return procStatusMB("VmHWM:") }

// RSSMB returns the current resident set size in MiB (VmRSS).
func RSSMB() float64 { return procStatusMB("VmRSS:") }

func procStatusMB(key string) float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line[len(key):])
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// AdamStep applies one torch.optim.Adam update to params (see lvshim.h):
// expAvg and expAvgSq are the moment buffers, steps the per-parameter step
// counts after incrementing, wd the per-parameter L2 weight decay.
func AdamStep(params, expAvg, expAvgSq []*Tensor, steps []int64, wd []float64, lr, b1, b2, eps float64) error {
	n := len(params)
	if len(expAvg) != n || len(expAvgSq) != n || len(steps) != n || len(wd) != n {
		return &Error{Op: "adam", Msg: "argument lengths differ"}
	}
	if n == 0 {
		return nil
	}
	all := make([]*Tensor, 0, 3*n)
	all = append(append(append(all, params...), expAvg...), expAvgSq...)
	hs, err := handles("adam", all)
	if err != nil {
		return err
	}
	e := C.lt_adam_step(&hs[0], &hs[n], &hs[2*n], (*C.int64_t)(unsafe.Pointer(&steps[0])),
		(*C.double)(unsafe.Pointer(&wd[0])), C.int(n), C.double(lr), C.double(b1), C.double(b2), C.double(eps))
	runtime.KeepAlive(all)
	return cerr("adam", e)
}

// shimID is set by the Makefile to a hash of the compiled shim, so that Go
// relinks binaries when only the C++ side changed.
var shimID = "dev"

// ShimID identifies the compiled C++ shim this binary was linked with.
func ShimID() string { return shimID }

// Profile records every libtorch op that f runs (on its pinned OS thread and
// in autograd) and writes a Chrome trace (chrome://tracing, or any tool that
// reads the trace event format) to path. libtorch 1.x only.
func Profile(path string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	var p unsafe.Pointer
	if err := cerr("profile", C.lt_profile_begin(cs, &p)); err != nil {
		return err
	}
	ferr := f()
	C.lt_profile_end(p)
	return ferr
}
