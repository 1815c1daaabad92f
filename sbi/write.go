package sbi

import (
	"context"
	"errors"
	"fmt"
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/viz"
)

// WriteOptions configure WriteBlends.
type WriteOptions struct {
	Out     string // output folder: fake/, masks/, real/
	N       int    // number of blends (0: one per face); faces are reused in order
	Seed    uint64 // blend k is fixed by (Seed, k)
	Workers int    // blends made at once (0: 1)
	// Done is called after each blend (written, skipped or failed); Failed
	// with the file name and the reason of a blend that could not be made
	// (no face found, ...). Both may be nil; they are called from the
	// workers, one at a time.
	Done   func()
	Failed func(name string, err error)
}

// WriteStats count what WriteBlends did.
type WriteStats struct {
	Total, Written, Skipped, Failed int
}

// ErrWrite marks output errors, which stop WriteBlends.
var ErrWrite = errors.New("write")

// WriteBlends writes blends of g's faces as OUT/fake/NNNN.png, their masks
// as OUT/masks/NNNN.png and the source faces as OUT/real/NNNN.png, with
// several workers. Blends whose three files exist are skipped, so a rerun
// finishes an interrupted one. It stops at the first output error (wrapping
// ErrWrite) or when ctx ends (returning ctx's error); blends that cannot be
// made are counted and reported through Failed.
func WriteBlends(ctx context.Context, g *Generator, o WriteOptions) (WriteStats, error) {
	st := WriteStats{Total: o.N}
	if st.Total == 0 {
		st.Total = g.Faces()
	}
	workers := max(1, o.Workers)
	width := max(4, len(strconv.Itoa(st.Total-1)))
	for _, d := range []string{"fake", "masks", "real"} {
		if err := os.MkdirAll(filepath.Join(o.Out, d), 0o755); err != nil {
			return st, fmt.Errorf("%w: %v", ErrWrite, err)
		}
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				name := fmt.Sprintf("%0*d.png", width, k)
				wrote, err := writeBlend(g, o.Out, name, k%g.Faces(), rand.New(rand.NewPCG(o.Seed, uint64(k))))
				mu.Lock()
				switch {
				case err != nil && errors.Is(err, ErrWrite):
					if firstErr == nil {
						firstErr = err
					}
				case err != nil:
					st.Failed++
					if o.Failed != nil {
						o.Failed(name, err)
					}
				case !wrote:
					st.Skipped++
				default:
					st.Written++
				}
				if o.Done != nil {
					o.Done()
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for k := 0; k < st.Total; k++ {
		mu.Lock()
		stop := firstErr != nil
		mu.Unlock()
		if stop {
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
	if firstErr != nil {
		return st, firstErr
	}
	return st, ctx.Err()
}

// writeBlend writes blend name of face k (fake/, masks/ and the face in
// real/), unless all three files exist already.
func writeBlend(g *Generator, out, name string, k int, rng *rand.Rand) (bool, error) {
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
			return false, fmt.Errorf("%w: %v", ErrWrite, err)
		}
	}
	return true, nil
}
