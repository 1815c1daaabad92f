package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/lvnet-go/lvnet/torch"
)

// errHelp is returned when the user asked for a command's help.
var errHelp = errors.New("help requested")

// newFlags returns a flag set for a subcommand that reports errors instead of
// exiting, with a usage text naming the arguments.
func newFlags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet("lvnet "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: lvnet %s [flags] %s\n\nflags:\n", name, args)
		fs.SetOutput(os.Stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args, allowing flags after positional arguments
// ("lvnet detect a.png --json"), and maps errors to usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return errHelp
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

// inferenceFlags are the --device and --dtype flags of the commands that run
// the model for detection (detect, serve).
type inferenceFlags struct{ device, dtype *string }

func addInferenceFlags(fs *flag.FlagSet) inferenceFlags {
	return inferenceFlags{
		device: fs.String("device", "cpu", "cpu or cuda:N"),
		dtype:  fs.String("dtype", "float32", "weights and activations: float32, or bfloat16 (faster on GPUs)"),
	}
}

// parse checks the flags' values (after parseFlags); errors are usage errors.
func (f inferenceFlags) parse() (torch.Device, torch.DType, error) {
	dev, err := torch.ParseDevice(*f.device)
	if err != nil {
		return dev, 0, usagef("--device: %v", err)
	}
	dt, err := torch.ParseDType(*f.dtype)
	if err != nil || (dt != torch.Float32 && dt != torch.BFloat16 && dt != torch.Float64) {
		return dev, dt, usagef("--dtype %q: want float32, bfloat16 or float64", *f.dtype)
	}
	return dev, dt, nil
}
