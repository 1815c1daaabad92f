package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/sbi"
)

// synthMain writes self-blended images (SBI) made from a folder of real
// faces.
func synthMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlags(stderr, "synth", "--faces DIR --out DIR")
	facesDir := fs.String("faces", "", "folder of real face crops (with index.jsonl from lvnet prepare, or images whose landmarks are detected)")
	out := fs.String("out", "", "output folder: fake/NNNN.png, masks/NNNN.png and the source faces in real/NNNN.png")
	n := fs.Int("n", 0, "number of blends (default: one per face); faces are reused in order")
	seed := fs.Uint64("seed", 1, "random seed; blend k is fixed by (seed, k)")
	hulls := fs.String("hulls", "", "mask shapes to draw from: face,dfl,components,extended (default all)")
	ratios := fs.String("ratios", "", "blend ratios to draw from, comma-separated in (0, 1] (default 0.25,0.5,0.75,1,1,1)")
	workers := fs.Int("workers", runtime.NumCPU(), "blends made at once")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case *facesDir == "" || *out == "":
		return usagef("--faces and --out are required")
	case fs.NArg() > 0:
		return usagef("unexpected arguments %q", fs.Args())
	case *n < 0:
		return usagef("--n %d: want 0 (one per face) or more", *n)
	case *workers < 1:
		return usagef("--workers %d: want at least 1", *workers)
	}
	var gopts sbi.GeneratorOptions
	for _, h := range splitList(*hulls) {
		k, err := sbi.ParseHull(h)
		if err != nil {
			return usagef("--hulls: %v", err)
		}
		gopts.Blend.Hulls = append(gopts.Blend.Hulls, k)
	}
	for _, r := range splitList(*ratios) {
		v, err := strconv.ParseFloat(r, 64)
		if err != nil || !(v > 0 && v <= 1) {
			return usagef("--ratios: %q is not a number in (0, 1]", r)
		}
		gopts.Blend.BlendRatios = append(gopts.Blend.BlendRatios, v)
	}
	g, err := sbi.NewGenerator(*facesDir, gopts)
	if err != nil {
		return err
	}
	defer g.Close()
	total := *n
	if total == 0 {
		total = g.Faces()
	}
	bar := progress.Quiet()
	if !*quiet {
		bar = progress.NewTo(stderr, isTerminal(stderr), "synth", int64(total), "img")
	}
	st, err := sbi.WriteBlends(ctx, g, sbi.WriteOptions{Out: *out, N: total, Seed: *seed, Workers: *workers,
		Done:   func() { bar.Add(1) },
		Failed: func(name string, err error) { fmt.Fprintf(stderr, "lvnet synth: %s: %v\n", name, err) }})
	bar.Finish()
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("interrupted; run the same command again to finish (done blends are kept)")
	}
	if err != nil {
		return err
	}
	if err := g.CacheErr(); err != nil {
		fmt.Fprintf(stderr, "lvnet synth: warning: detected landmarks were not cached: %v\n", err)
	}
	fmt.Fprintf(stderr, "synth: %d blends in %s (%d already there, %d failed) from %d faces\n", st.Total-st.Failed, *out, st.Skipped, st.Failed, g.Faces())
	if st.Failed > 0 {
		return &partialError{failed: st.Failed}
	}
	return nil
}

// sbiGenerators opens a self-blending generator for every sbi:DIR part of
// the data specs (parts joined with "+", as data.Open splits them), keyed
// by the part as data looks it up. close closes them all.
func sbiGenerators(specs ...string) (gens map[string]data.Generator, closeAll func(), err error) {
	var opened []*sbi.Generator
	closeAll = func() {
		for _, g := range opened {
			g.Close()
		}
	}
	for _, spec := range specs {
		for _, part := range specParts(spec) {
			if !strings.HasPrefix(part, "sbi:") {
				continue
			}
			if _, ok := gens[part]; ok {
				continue
			}
			dir, o, err := sbi.ParseSpec(part)
			if err != nil {
				closeAll()
				return nil, func() {}, err
			}
			g, err := sbi.NewGenerator(dir, o)
			if err != nil {
				closeAll()
				return nil, func() {}, err
			}
			opened = append(opened, g)
			if gens == nil {
				gens = map[string]data.Generator{}
			}
			gens[part] = g
		}
	}
	return gens, closeAll, nil
}

// specParts splits "A+B" data specs like data.Open: a "+" separates parts
// only when what follows starts a spec (a scheme or an existing path), so
// paths such as FaceForensics++/x stay whole.
func specParts(spec string) []string {
	if spec == "" {
		return nil
	}
	pieces := strings.Split(spec, "+")
	starts := func(p string) bool {
		if name, _, ok := strings.Cut(p, ":"); ok {
			switch name {
			case "ffpp", "dfb", "folder", "index", "sbi":
				return true
			}
		}
		bare := p
		if i := strings.LastIndexByte(p, '?'); i >= 0 {
			bare = p[:i]
		}
		_, err := os.Stat(bare)
		return err == nil
	}
	var out []string
	cur := pieces[0]
	for _, p := range pieces[1:] {
		if p != "" && cur != "" && starts(p) {
			out = append(out, cur)
			cur = p
			continue
		}
		cur += "+" + p
	}
	return append(out, cur)
}
