package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lvnet-go/lvnet/checkpoint"
	"github.com/lvnet-go/lvnet/model"
)

// runImport converts the authors' PyTorch checkpoints and the ImageNet
// Xception file into an LVNet checkpoint.
func importMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "import", "--format official|xception-imagenet IN.pth[.tar] --out OUT.safetensors")
	format := fs.String("format", "", "format of IN: official (the authors' training checkpoint {epoch, state_dict, optimizer}) or xception-imagenet (the ImageNet Xception state dict, for both backbones)")
	out := fs.String("out", "", "output checkpoint (.safetensors)")
	fs.StringVar(out, "o", "", "short for --out")
	allowPartial := fs.Bool("allow-partial", false, "accept files lacking tensors (they keep the default initialisation) or holding tensors the model lacks (dropped)")
	seed := fs.Uint64("seed", 1, "seed of the default initialisation of the tensors IN does not provide")
	sspsl := fs.Bool("sspsl", false, "xception-imagenet: build the semi-supervised model (with pro_header); official checkpoints say it themselves")
	verbose := fs.Bool("v", false, "list every missing and unexpected tensor")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 1:
		return usagef("want one input file, got %d", fs.NArg())
	case *format == "":
		return usagef("--format is required: official or xception-imagenet")
	case *format != checkpoint.FormatOfficial && *format != checkpoint.FormatXceptionImageNet:
		return usagef("unknown --format %q: want official or xception-imagenet", *format)
	case *out == "":
		return usagef("--out OUT.safetensors is required")
	case *sspsl && *format != checkpoint.FormatXceptionImageNet:
		return usagef("--sspsl applies to xception-imagenet only (official checkpoints are detected from their keys)")
	}
	in := fs.Arg(0)
	opts := checkpoint.ImportOptions{Format: *format, AllowPartial: *allowPartial, Seed: *seed}
	if *format == checkpoint.FormatXceptionImageNet {
		opts.Config = model.Paper()
		opts.Config.SSPSL = *sspsl
	}
	imp, err := checkpoint.Import(in, opts)
	if imp != nil {
		printImportReport(stderr, in, imp, *allowPartial, *verbose)
	}
	if err != nil {
		return err
	}
	defer imp.Model.Free()
	imp.Meta.Provenance.LVNet = Version
	if err := checkpoint.Save(*out, imp.Model, imp.Meta); err != nil {
		return err
	}
	prov := imp.Meta.Provenance
	from := prov.FromFormat
	if prov.SourceEpoch != nil {
		from += fmt.Sprintf(", epoch %d", *prov.SourceEpoch)
	}
	kind := "supervised"
	if imp.Model.Config.SSPSL {
		kind = "semi-supervised (SSPSL)"
	}
	fmt.Fprintf(stdout, "wrote %s: %s LVNet, %d tensors from %s (%s, sha256 %.12s), %d at default initialisation (seed %d)\n",
		*out, kind, imp.Loaded, in, from, prov.FromSHA256, len(imp.Defaulted), *seed)
	return nil
}

// printImportReport lists what did not match: grouped by module, or every
// key with verbose.
func printImportReport(w io.Writer, in string, imp *checkpoint.Imported, partial, verbose bool) {
	r := imp.Report
	list := func(what string, keys []string) {
		if len(keys) == 0 {
			return
		}
		if verbose {
			fmt.Fprintf(w, "lvnet import: %s: %d %s:\n  %s\n", in, len(keys), what, strings.Join(keys, "\n  "))
			return
		}
		fmt.Fprintf(w, "lvnet import: %s: %d %s: %s\n", in, len(keys), what, checkpoint.GroupKeys(keys))
	}
	missing, unexpected := "tensors missing from the file", "tensors the model lacks"
	if partial {
		missing += " (default initialisation kept)"
		unexpected += " (dropped)"
	}
	list(missing, r.Missing)
	list(unexpected, r.Unexpected)
	for _, m := range r.Mismatched {
		fmt.Fprintf(w, "lvnet import: %s: %s: shape %v %s in the file, the model wants %v %s\n", in, m.Key, m.Got, m.GotDType, m.Want, m.WantDType)
	}
}
