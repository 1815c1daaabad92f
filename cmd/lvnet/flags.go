package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lvnet-go/lvnet/detect"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/torch"
)

// errHelp is returned when the user asked for a command's help.
var errHelp = errors.New("help requested")

// newFlags returns a flag set for a subcommand that reports errors instead of
// exiting, with a usage text naming the arguments, printed to stderr on -h.
func newFlags(stderr io.Writer, name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("lvnet "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lvnet %s [flags] %s\n\nflags:\n", name, args)
		fs.SetOutput(stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// isTerminal reports whether w is a terminal (progress bars redraw in
// place there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// parseFlags parses args, allowing flags after positional arguments
// ("lvnet detect a.png --json"), and maps errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return errHelp // the flag package has printed the usage
			}
			return usagef("%v", err)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	// Re-parse the positional list only so fs.Args() returns it.
	return fs.Parse(append([]string{"--"}, pos...))
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// engineFlags are --device and --threads, shared by every command that runs
// the model.
type engineFlags struct {
	device  *string
	threads *int
}

func addEngineFlags(fs *flag.FlagSet) engineFlags {
	return engineFlags{
		device:  fs.String("device", "cpu", "cpu or cuda:N"),
		threads: fs.Int("threads", 0, "intra-op threads (default: all CPUs, or $"+torch.ThreadsEnv+")"),
	}
}

// apply checks the device (a usage error when malformed, an error when
// this machine lacks it) and sets the thread count.
func (f engineFlags) apply() (torch.Device, error) {
	dev, err := torch.ParseDevice(*f.device)
	if err != nil {
		return dev, usagef("--device: %v", err)
	}
	if *f.threads < 0 {
		return dev, usagef("--threads %d: want 0 (all CPUs) or more", *f.threads)
	}
	if *f.threads > 0 {
		torch.SetThreads(*f.threads)
	}
	return dev, nil
}

// inferenceFlags add --dtype to the engine flags, for the commands that run
// the model for detection (detect, serve).
type inferenceFlags struct {
	engineFlags
	dtype *string
}

func addInferenceFlags(fs *flag.FlagSet) inferenceFlags {
	return inferenceFlags{
		engineFlags: addEngineFlags(fs),
		dtype:       fs.String("dtype", "float32", "weights and activations: float32, or bfloat16 (faster on GPUs)"),
	}
}

// parse checks the flags' values (after parseFlags) and sets the threads;
// errors are usage errors.
func (f inferenceFlags) parse() (torch.Device, torch.DType, error) {
	dev, err := f.apply()
	if err != nil {
		return dev, 0, err
	}
	dt, err := torch.ParseDType(*f.dtype)
	if err != nil || (dt != torch.Float32 && dt != torch.BFloat16 && dt != torch.Float64) {
		return dev, dt, usagef("--dtype %q: want float32, bfloat16 or float64", *f.dtype)
	}
	return dev, dt, nil
}

// detectorFlags are the flags lvnet detect and lvnet serve share: the model,
// how faces are found, batched and labelled.
type detectorFlags struct {
	inferenceFlags
	model, faceModels *string
	aligned           *bool
	threshold         *float64
	maxFrames         *int
	batch, workers    *int
}

func addDetectorFlags(fs *flag.FlagSet, alignedHelp, faceModelsHelp string) detectorFlags {
	return detectorFlags{
		model:          fs.String("model", "", "LVNet checkpoint (default: $"+detect.ModelEnv+", else the shipped model, docs/MODEL.md)"),
		aligned:        fs.Bool("aligned", false, alignedHelp),
		faceModels:     fs.String("face-models", face.DefaultModelDir(), faceModelsHelp),
		threshold:      fs.Float64("threshold", 0, "label a face fake when p_fake >= threshold (default: the model's calibrated threshold, 0.5 without one)"),
		maxFrames:      fs.Int("max-frames", 0, "videos: analyse at most this many frames, spread over the video (0: no limit)"),
		batch:          fs.Int("batch-size", 0, "faces per forward pass (default: 4 on CPUs, 8 on GPUs; larger batches are faster per face and take more memory)"),
		workers:        fs.Int("workers", 0, "goroutines decoding inputs and finding faces while the model runs (default: CPUs, at most 4)"),
		inferenceFlags: addInferenceFlags(fs),
	}
}

// check validates the shared flags' values; errors are usage errors.
func (f detectorFlags) check(fs *flag.FlagSet) error {
	switch {
	case flagSet(fs, "threshold") && !(*f.threshold > 0 && *f.threshold <= 1):
		return usagef("--threshold %v: want a value in (0, 1]", *f.threshold)
	case *f.batch < 0:
		return usagef("--batch-size %d: want 0 (automatic) or more", *f.batch)
	case *f.workers < 0:
		return usagef("--workers %d: want 0 (automatic) or more", *f.workers)
	case *f.maxFrames < 0:
		return usagef("--max-frames %d: want 0 (no limit) or more", *f.maxFrames)
	}
	return nil
}
