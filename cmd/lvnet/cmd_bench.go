package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/lvnet-go/lvnet/bench"
	"github.com/lvnet-go/lvnet/torch"
)

func benchMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "bench", "")
	asJSON := fs.Bool("json", false, "print one JSON line with the keys of the authors' timing script")
	reps := fs.Int("reps", 3, "timed runs per measurement, after one warm-up")
	engine := addEngineFlags(fs)
	plain := fs.Bool("plain", false, "eval without the inference rewrite (no BatchNorm folding, NCHW)")
	nchw := fs.Bool("nchw", false, "keep convolutions NCHW (default: channels-last)")
	bf16 := fs.Bool("bf16", false, "eval in bfloat16")
	defaultMalloc := fs.Bool("default-malloc", false, "leave glibc's allocator settings alone")
	skip := fs.String("skip", "", "comma-separated measurements to skip: eval_b1,eval_b8,train_b4")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, err := torch.ParseDevice(*engine.device)
	if err != nil {
		return usagef("--device: %v", err)
	}
	res, err := bench.Run(bench.Options{Reps: *reps, Threads: *engine.threads, Device: dev, Prepare: !*plain,
		ChannelsLast: !*plain && !*nchw, BFloat16: *bf16, KeepMemory: !*defaultMalloc, Skip: splitList(*skip), Log: stderr})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	show := func(name string, s *bench.Stat) {
		if s != nil {
			fmt.Fprintf(stdout, "%-10s median %.3f s   min %.3f s\n", name, s.Median, s.Min)
		}
	}
	show("eval b1", res.EvalB1)
	show("eval b8", res.EvalB8)
	show("train b4", res.TrainB4)
	fmt.Fprintf(stdout, "peak RSS   %.0f MB\nthreads    %d\nsettings   %s\n", res.PeakRSSMB, res.Threads, res.Settings)
	return nil
}
