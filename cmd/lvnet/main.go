// Command lvnet is the LVNet deepfake detector: it verifies (real or forged?)
// and locates (which patches?) face forgeries in photos and videos, trains and
// evaluates the model, and serves it over HTTP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand of lvnet. Every command is a function of its
// context (cancelled by SIGINT and SIGTERM), arguments and standard streams,
// so tests run it as the program does.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// commands lists every subcommand; each lives in its own cmd_*.go file.
func commands() []command {
	return []command{
		{"version", "print versions, libtorch capabilities, threads and BLAS", versionMain},
		{"demo", "run the shipped detector on photos, their forgeries and example frames (what `make demo` shows)", demoMain},
		{"import", "convert the authors' PyTorch checkpoint or ImageNet Xception weights to an LVNet checkpoint", importMain},
		{"prepare", "face crops, masks, landmarks and index from videos, photos or a FaceForensics++ download (resumable)", prepareMain},
		{"synth", "write self-blended images (SBI): forged faces with exact masks made from real faces", synthMain},
		{"train", "train LVNet (presets default, paper, smoke), resumable", trainMain},
		{"calibrate", "fit a checkpoint's temperature and decision threshold on validation data (written into a copy)", calibrateMain},
		{"eval", "evaluate a checkpoint: AUC, video AUC, EER, AP, accuracy, localisation; --report for plots", evalMain},
		{"bench", "time eval (batch 1, 8) and a training step (batch 4) like the authors' timing script", benchMain},
		{"detect", "find faces in photos, videos and folders: how likely each is forged, and where (heatmaps)", detectMain},
		{"serve", "HTTP API (POST /v1/detect, /healthz, /metrics) and a web page to drop photos on", serveCmd},
		{"merge", "combine the shards of a batch job (detect --out DIR --shard K/N, prepare --shard K/N) into one output", mergeMain},
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
	// One signal context for every command: Ctrl-C or SIGTERM cancels it,
	// and the command stops cleanly (saving what it must).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		err := c.run(ctx, os.Args[2:], os.Stdin, os.Stdout, os.Stderr)
		stop()
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
