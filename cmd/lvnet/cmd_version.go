package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/lvnet-go/lvnet/torch"
)

// Version is the project version.
const Version = "0.1.0"

func runVersion(args []string) error {
	fs := newFlags("version", "")
	asJSON := fs.Bool("json", false, "print JSON")
	threads := fs.Int("threads", 0, "intra-op threads (default: all CPUs, or $"+torch.ThreadsEnv+")")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *threads > 0 {
		torch.SetThreads(*threads)
	}
	info, err := torch.RuntimeInfo()
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"lvnet": Version, "go": runtime.Version(), "shim": torch.ShimID(), "torch": info,
		})
	}
	fmt.Printf("lvnet      %s (%s, shim %s)\n", Version, runtime.Version(), torch.ShimID())
	fmt.Printf("libtorch   %s\n", info.TorchVersion)
	fmt.Printf("mkldnn     %v\n", info.MKLDNN)
	fmt.Printf("openmp     %v\n", info.OpenMP)
	fmt.Printf("cuda       %v (%d device(s))\n", info.CUDA, info.CUDADevices)
	fmt.Printf("threads    %d intra-op, %d inter-op\n", info.Threads, info.InteropThreads)
	blas := info.BLAS
	if blas == "" {
		blas = "none loaded yet"
	}
	fmt.Printf("blas       %s\n", blas)
	return nil
}
