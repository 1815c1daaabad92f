package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
)

// runDetect scores face crops: is each forged, and which patches?
func runDetect(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return detectMain(ctx, args, os.Stdout, os.Stderr)
}

func detectMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("detect", "--aligned --model M.safetensors FACE.png...")
	modelPath := fs.String("model", "", "LVNet checkpoint (.safetensors; see lvnet import)")
	aligned := fs.Bool("aligned", false, "the inputs are aligned face crops, used whole (required for now: face detection in photos comes later)")
	asJSON := fs.Bool("json", false, `print {"results":[...]} as JSON instead of a table`)
	threshold := fs.Float64("threshold", detect.DefaultThreshold, "label a face fake when p_fake >= threshold (0, 1]")
	batch := fs.Int("batch", detect.DefaultBatchSize, "faces per forward pass")
	workers := fs.Int("workers", 0, "goroutines decoding inputs while the model runs (default: CPUs, at most 4)")
	device := fs.String("device", "cpu", "cpu or cuda:N")
	dtype := fs.String("dtype", "float32", "weights and activations: float32, or bfloat16 (faster on GPUs)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dev, err := torch.ParseDevice(*device)
	if err != nil {
		return usagef("--device: %v", err)
	}
	dt, err := torch.ParseDType(*dtype)
	if err != nil || (dt != torch.Float32 && dt != torch.BFloat16 && dt != torch.Float64) {
		return usagef("--dtype %q: want float32, bfloat16 or float64", *dtype)
	}
	switch {
	case *modelPath == "":
		return usagef("--model is required (an LVNet checkpoint; convert the authors' with lvnet import)")
	case fs.NArg() == 0:
		return usagef("no input files")
	case !*aligned:
		return usagef("only aligned face crops can be analysed for now: pass --aligned (each input is a face crop, used whole)")
	case !(*threshold > 0 && *threshold <= 1):
		return usagef("--threshold %v: want a value in (0, 1]", *threshold)
	case *batch < 1:
		return usagef("--batch %d: want at least 1", *batch)
	case *workers < 0:
		return usagef("--workers %d: want 0 (automatic) or more", *workers)
	}
	if dev.Type == torch.DeviceCUDA && dev.Index >= torch.CUDADeviceCount() {
		return fmt.Errorf("device %v: this machine has %d CUDA device(s)", dev, torch.CUDADeviceCount())
	}

	m, _, err := checkpoint.Load(*modelPath, checkpoint.LoadOptions{Device: dev, DType: dt})
	if err != nil {
		return err
	}
	defer m.Free()
	// Fold BatchNorms into the convolutions (and, on CPUs, run them
	// channels-last): about 30% faster, same results up to float rounding.
	if err := m.PrepareInference(model.InferenceOptions{ChannelsLast: dev.Type == torch.DeviceCPU}); err != nil {
		return err
	}
	p, err := detect.NewPipeline(m, detect.PipelineOptions{BatchSize: *batch, Workers: *workers})
	if err != nil {
		return err
	}

	ins := make([]detect.Input, fs.NArg())
	for i, a := range fs.Args() {
		ins[i] = detect.Input{Path: a}
	}
	bar := progress.Quiet()
	if !*quiet && len(ins) > *batch {
		if stderr == os.Stderr {
			bar = progress.New("detect", int64(len(ins)), "img")
		} else {
			bar = progress.NewTo(stderr, false, "detect", int64(len(ins)), "img")
		}
	}
	resp := detect.Response{Results: []*detect.Result{}}
	err = p.AnalyzeAll(ctx, ins, detect.Options{Aligned: true, Threshold: *threshold}, func(i int, r *detect.Result, err error) {
		bar.Add(1)
		if err != nil {
			reason := err.Error()
			var ie *detect.InputError
			if errors.As(err, &ie) {
				reason = ie.Reason()
			}
			fmt.Fprintf(stderr, "lvnet detect: %s: %s\n", ins[i].Path, reason)
			resp.Errors = append(resp.Errors, detect.Failure{Input: ins[i].Path, Error: reason})
			return
		}
		resp.Results = append(resp.Results, r)
	})
	bar.Finish()
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	} else {
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INPUT\tLABEL\tP_FAKE")
		for _, r := range resp.Results {
			fmt.Fprintf(tw, "%s\t%s\t%.4f\n", r.Input, r.Label, r.PFake)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	if len(resp.Errors) > 0 {
		return &partialError{failed: len(resp.Errors)}
	}
	return nil
}
