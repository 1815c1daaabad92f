package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/internal/progress"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/sbi"
	"github.com/lvnet-go/lvnet/viz"
)

// runSynth writes self-blended images (SBI) made from a folder of real
// faces.
func runSynth(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return synthMain(ctx, args, os.Stderr, isTerminal(os.Stderr))
}

func synthMain(ctx context.Context, args []string, stderr io.Writer, tty bool) error {
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
	width := max(4, len(strconv.Itoa(total-1)))
	for _, d := range []string{"fake", "masks", "real"} {
		if err := os.MkdirAll(filepath.Join(*out, d), 0o755); err != nil {
			return err
		}
	}
	bar := progress.Quiet()
	if !*quiet {
		bar = progress.NewTo(stderr, tty, "synth", int64(total), "img")
	}
	var (
		mu       sync.Mutex
		failed   int
		skipped  int
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				name := fmt.Sprintf("%0*d.png", width, k)
				wrote, err := synthOne(g, *out, name, k%g.Faces(), rand.New(rand.NewPCG(*seed, uint64(k))))
				mu.Lock()
				switch {
				case err != nil && errors.Is(err, errWrite):
					if firstErr == nil {
						firstErr = err
					}
				case err != nil:
					failed++
					fmt.Fprintf(stderr, "lvnet synth: %s: %v\n", name, err)
				case !wrote:
					skipped++
				}
				mu.Unlock()
				bar.Add(1)
			}
		}()
	}
feed:
	for k := 0; k < total; k++ {
		mu.Lock()
		stopNow := firstErr != nil
		mu.Unlock()
		if stopNow {
			break
		}
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	bar.Finish()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted; run the same command again to finish (done blends are kept)")
	}
	if err := g.CacheErr(); err != nil {
		fmt.Fprintf(stderr, "lvnet synth: warning: detected landmarks were not cached: %v\n", err)
	}
	fmt.Fprintf(stderr, "synth: %d blends in %s (%d already there, %d failed) from %d faces\n", total-failed, *out, skipped, failed, g.Faces())
	if failed > 0 {
		return &partialError{failed: failed}
	}
	return nil
}

// errWrite marks output errors, which stop lvnet synth.
var errWrite = errors.New("write")

// synthOne writes blend name of face k (fake/, masks/ and the face in
// real/), unless all three files exist already.
func synthOne(g *sbi.Generator, out, name string, k int, rng *rand.Rand) (bool, error) {
	paths := []string{filepath.Join(out, "fake", name), filepath.Join(out, "masks", name), filepath.Join(out, "real", name)}
	have := 0
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			have++
		}
	}
	if have == len(paths) {
		return false, nil
	}
	img, mask, err := g.Generate(k, rng)
	if err != nil {
		return false, err
	}
	src, err := media.DecodeImage(g.FacePath(k))
	if err != nil {
		return false, err
	}
	for i, im := range []image.Image{img, mask, src} {
		if err := viz.WritePNG(paths[i], im); err != nil {
			return false, fmt.Errorf("%w: %v", errWrite, err)
		}
	}
	return true, nil
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
