package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/lvnet-go/lvnet/torch"
)

// Version is the project version.
const Version = "0.1.0"

func versionMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "version", "")
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
		return json.NewEncoder(stdout).Encode(map[string]any{
			"lvnet": Version, "go": runtime.Version(), "shim": torch.ShimID(), "torch": info,
		})
	}
	fmt.Fprintf(stdout, "lvnet      %s (%s, shim %s)\n", Version, runtime.Version(), torch.ShimID())
	fmt.Fprintf(stdout, "libtorch   %s\n", info.TorchVersion)
	fmt.Fprintf(stdout, "mkldnn     %v\n", info.MKLDNN)
	fmt.Fprintf(stdout, "openmp     %v\n", info.OpenMP)
	fmt.Fprintf(stdout, "cuda       %v (%d device(s))\n", info.CUDA, info.CUDADevices)
	fmt.Fprintf(stdout, "threads    %d intra-op, %d inter-op\n", info.Threads, info.InteropThreads)
	blas := info.BLAS
	if blas == "" {
		blas = "none loaded yet"
	}
	fmt.Fprintf(stdout, "blas       %s\n", blas)
	return nil
}
