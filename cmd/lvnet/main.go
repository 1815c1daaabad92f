// Command lvnet is the LVNet deepfake detector: it verifies (real or forged?)
// and locates (which patches?) face forgeries in photos and videos, trains and
// evaluates the model, and serves it over HTTP.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
)

// command is one subcommand of lvnet.
type command struct {
	name    string
	summary string
	run     func(args []string) error
}

// commands lists every subcommand; each lives in its own cmd_*.go file.
func commands() []command {
	return []command{
		{"version", "print versions, libtorch capabilities, threads and BLAS", runVersion},
		{"demo", "run the main job on bundled inputs (what `make demo` shows)", runDemo},
		{"import", "convert the authors' PyTorch checkpoint or ImageNet Xception weights to an LVNet checkpoint", runImport},
		{"prepare", "face crops, masks, landmarks and index from videos, photos or a FaceForensics++ download (resumable)", runPrepare},
		{"synth", "write self-blended images (SBI): forged faces with exact masks made from real faces", runSynth},
		{"train", "train LVNet (the paper's recipe, presets paper and smoke), resumable", runTrain},
		{"eval", "evaluate a checkpoint: AUC, video AUC, EER, AP, accuracy, localisation; --report for plots", runEval},
		{"bench", "time eval (batch 1, 8) and a training step (batch 4) like the authors' timing script", runBench},
		{"detect", "find faces in photos, videos and folders: how likely each is forged, and where (heatmaps)", runDetect},
		{"serve", "HTTP API (POST /v1/detect, /healthz, /metrics) and a web page to drop photos on", runServe},
	}
}

// usageError marks errors in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// partialError marks runs where some inputs failed but others succeeded
// (exit status 1, after the results were printed).
type partialError struct{ failed int }

func (e *partialError) Error() string {
	return fmt.Sprintf("%d input(s) could not be processed", e.failed)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lvnet <command> [flags] [args]\n\ncommands:")
	cmds := commands()
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	for _, c := range cmds {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'lvnet <command> -h' for the flags of a command.")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	name := os.Args[1]
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(os.Args[2:])
		if err == nil {
			return
		}
		var ue *usageError
		var pe *partialError
		switch {
		case errors.As(err, &ue):
			fmt.Fprintf(os.Stderr, "lvnet %s: %v\n", name, err)
			os.Exit(2)
		case errors.As(err, &pe):
			fmt.Fprintf(os.Stderr, "lvnet %s: %v\n", name, err)
			os.Exit(1)
		case errors.Is(err, errHelp):
			return
		default:
			fmt.Fprintf(os.Stderr, "lvnet %s: %v\n", name, err)
			os.Exit(1)
		}
	}
	fmt.Fprintf(os.Stderr, "lvnet: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
