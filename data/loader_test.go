package data

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/lvnet-go/lvnet/augment"
	"github.com/lvnet-go/lvnet/internal/shared"
)

// sceneFolder writes n fake scenes (red square at varying places, with
// masks) and n real flat images into a folder dataset.
func sceneFolder(t testing.TB, n, size int) string {
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		side := size / 3
		x0, y0 := (i*7)%(size-side), (i*13)%(size-side)
		img, mask := scene(size, size, x0, y0, side)
		name := fmt.Sprintf("image_%d_%d.png", i/2, i)
		writePNG(t, filepath.Join(dir, "m", "fake", name), img)
		writePNG(t, filepath.Join(dir, "m", "masks", name), mask)
		writePNG(t, filepath.Join(dir, "m", "real", name), flat(size, size, teal))
	}
	return dir
}

// collect runs an epoch from startBatch and returns its batches.
func collect(t *testing.T, l *Loader, epoch, start int) []Batch {
	t.Helper()
	it := l.Epoch(epoch, start)
	defer it.Close()
	var out []Batch
	for {
		b, ok := it.Next()
		if !ok {
			break
		}
		out = append(out, b)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoaderDeterministicAndResumable(t *testing.T) {
	dir := sceneFolder(t, 10, 40)
	ds, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ds.opts.ImageSize = 32
	opts := LoaderOptions{BatchSize: 3, Train: true, Seed: 42, Workers: 1}
	a := collect(t, NewLoader(ds, opts), 2, 0)
	opts.Workers, opts.Prefetch = 4, 5
	l := NewLoader(ds, opts)
	b := collect(t, l, 2, 0)
	if len(a) != 7 || l.Len() != 7 {
		t.Fatalf("%d batches (Len %d), want 7 = ceil(20/3)", len(a), l.Len())
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatal("1 worker and 4 workers give different batches")
	}
	if last := a[6]; len(last.Labels) != 2 || len(last.Images) != 2*3*32*32 || last.Index != 6 || last.Size != 32 {
		t.Errorf("last batch: %d labels, %d floats, index %d, size %d", len(last.Labels), len(last.Images), last.Index, last.Size)
	}
	for k := 0; k < len(a); k++ {
		r := collect(t, l, 2, k)
		if len(r) != len(a)-k || !reflect.DeepEqual(r[0], a[k]) || !reflect.DeepEqual(r, a[k:]) {
			t.Fatalf("resuming at batch %d does not reproduce the full run", k)
		}
	}
	// Another epoch: another order and other augmentations, every sample once.
	c := collect(t, l, 3, 0)
	if reflect.DeepEqual(a[0].Paths, c[0].Paths) && reflect.DeepEqual(a[1].Paths, c[1].Paths) {
		t.Error("epochs 2 and 3 start with the same samples")
	}
	seen := map[string]int{}
	for _, bt := range c {
		for _, p := range bt.Paths {
			seen[p]++
		}
	}
	if len(seen) != 20 {
		t.Errorf("epoch covers %d distinct samples, want 20", len(seen))
	}
	// DropLast.
	opts.DropLast = true
	if d := collect(t, NewLoader(ds, opts), 2, 0); len(d) != 6 || !reflect.DeepEqual(d, a[:6]) {
		t.Errorf("DropLast: %d batches", len(d))
	}
	// Early Close does not hang, and a closed iterator stops.
	it := l.Epoch(0, 0)
	if _, ok := it.Next(); !ok {
		t.Fatal("no first batch")
	}
	it.Close()
	it.Close()
	if _, ok := it.Next(); ok {
		t.Error("Next after Close returned a batch")
	}
}

func TestLoaderEvalValues(t *testing.T) {
	dir := t.TempDir()
	img, mask := scene(20, 20, 5, 6, 4)
	writePNG(t, filepath.Join(dir, "fake", "a.png"), img)
	writePNG(t, filepath.Join(dir, "masks", "a.png"), mask)
	writePNG(t, filepath.Join(dir, "real", "b.png"), flat(20, 20, teal))
	ds, err := Open(dir, Options{ImageSize: 20, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, NewLoader(ds, LoaderOptions{BatchSize: 4}), 0, 0)
	if len(bs) != 1 || len(bs[0].Labels) != 2 {
		t.Fatalf("got %d batches", len(bs))
	}
	b := bs[0]
	if !reflect.DeepEqual(b.Labels, []int64{1, 0}) || b.Regions != nil {
		t.Fatalf("labels %v (want dataset order [1 0]), regions %v", b.Labels, b.Regions != nil)
	}
	plane := 400
	// Native size: no resampling; (v/255-0.5)/0.5 per channel, CHW.
	norm := func(v uint8) float32 { return (float32(v)/255 - 0.5) / 0.5 }
	at := func(s, c, x, y int) float32 { return b.Images[s*3*plane+c*plane+y*20+x] }
	for _, tc := range []struct {
		s, x, y int
		rgb     [3]uint8
		mask    float32
	}{
		{0, 5, 6, [3]uint8{255, 0, 0}, 1},
		{0, 8, 9, [3]uint8{255, 0, 0}, 1},
		{0, 9, 9, [3]uint8{0, 160, 255}, 0},
		{0, 0, 0, [3]uint8{0, 160, 255}, 0},
		{1, 7, 7, [3]uint8{0, 160, 255}, 0},
	} {
		for c := 0; c < 3; c++ {
			if got, want := at(tc.s, c, tc.x, tc.y), norm(tc.rgb[c]); got != want {
				t.Errorf("sample %d (%d,%d) channel %d = %v, want %v", tc.s, tc.x, tc.y, c, got, want)
			}
		}
		if got := b.Masks[tc.s*plane+tc.y*20+tc.x]; got != tc.mask {
			t.Errorf("sample %d mask (%d,%d) = %v, want %v", tc.s, tc.x, tc.y, got, tc.mask)
		}
	}
	sum := float32(0)
	for _, v := range b.Masks {
		sum += v
	}
	if sum != 16 {
		t.Errorf("%v forged pixels, want 16", sum)
	}
	// Another input size: bilinear resize of the image, nearest of the mask.
	ds.opts.ImageSize = 40
	b = collect(t, NewLoader(ds, LoaderOptions{BatchSize: 4}), 0, 0)[0]
	sum = 0
	for _, v := range b.Masks[:1600] {
		sum += v
	}
	if b.Size != 40 || len(b.Images) != 2*3*1600 || sum != 64 {
		t.Errorf("resized to 40: size %d, %d floats, %v forged pixels (want 64)", b.Size, len(b.Images), sum)
	}
}

func TestLoaderSkipsCorruptFile(t *testing.T) {
	dir := sceneFolder(t, 4, 24)
	// Truncate one PNG: its header survives, its pixel data does not.
	bad := filepath.Join(dir, "m", "fake", "image_0_1.png")
	raw, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, raw[:len(raw)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	ds, err := Open(dir, Options{ImageSize: 24, Warn: &warn})
	if err != nil {
		t.Fatal(err)
	}
	for _, train := range []bool{false, true} {
		l := NewLoader(ds, LoaderOptions{BatchSize: 3, Train: train, Seed: 1, Workers: 2})
		bs := collect(t, l, 0, 0)
		n := 0
		for _, b := range bs {
			n += len(b.Labels)
			for _, p := range b.Paths {
				if p == bad {
					t.Fatalf("train=%v: corrupt file in a batch", train)
				}
			}
		}
		if n != 8 || len(bs) != 3 {
			t.Errorf("train=%v: %d samples in %d batches, want 8 in 3 (a stand-in for the corrupt one)", train, n, len(bs))
		}
	}
	if ds.Skipped() != 1 || strings.Count(warn.String(), "skipping") != 1 || !strings.Contains(warn.String(), "image_0_1.png") {
		t.Errorf("Skipped = %d, warnings %q", ds.Skipped(), warn.String())
	}
}

func TestLoaderAllUnreadable(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "real", "a.png"), "not a png")
	writeFile(t, filepath.Join(dir, "fake", "b.png"), "")
	ds, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	it := NewLoader(ds, LoaderOptions{BatchSize: 2}).Epoch(0, 0)
	defer it.Close()
	if _, ok := it.Next(); ok || it.Err() == nil || !strings.Contains(it.Err().Error(), "no readable sample") {
		t.Errorf("Next on unreadable data: err %v", it.Err())
	}
	if ds.Skipped() != 2 {
		t.Errorf("Skipped = %d, want 2", ds.Skipped())
	}
}

func TestLoaderAugmentKeepsMaskAligned(t *testing.T) {
	dir := sceneFolder(t, 6, 48)
	ds, err := Open(dir, Options{ImageSize: 40, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	cfg := augment.Paper(40)
	cfg.GrayP, cfg.JPEGP, cfg.BlurP, cfg.NoiseP, cfg.ColorP = 0, 0, 0, 0, 0 // keep colours exact
	l := NewLoader(ds, LoaderOptions{BatchSize: 4, Train: true, Seed: 9, Augment: &cfg})
	S, plane := 40, 1600
	checked := 0
	for epoch := 0; epoch < 4; epoch++ {
		for _, b := range collect(t, l, epoch, 0) {
			for s := range b.Labels {
				m := b.Masks[s*plane : (s+1)*plane]
				img := b.Images[s*3*plane : (s+1)*3*plane]
				for y := 1; y < S-1; y++ {
					for x := 1; x < S-1; x++ {
						on, off := true, true
						for dy := -1; dy <= 1; dy++ {
							for dx := -1; dx <= 1; dx++ {
								v := m[(y+dy)*S+x+dx]
								on, off = on && v == 1, off && v == 0
							}
						}
						r, g := img[y*S+x], img[plane+y*S+x]
						isRed := r > 0.6 && g < -0.6
						if on && !isRed {
							t.Fatalf("epoch %d %s: masked (%d,%d) is not red: %v %v", epoch, b.Paths[s], x, y, r, g)
						}
						if off && isRed {
							t.Fatalf("epoch %d %s: unmasked (%d,%d) is red", epoch, b.Paths[s], x, y)
						}
						if on {
							checked++
						}
					}
				}
			}
		}
	}
	if checked < 1000 {
		t.Errorf("only %d masked interior pixels checked", checked)
	}
}

func TestLoaderRegions(t *testing.T) {
	dir := t.TempDir()
	writePNG(t, filepath.Join(dir, "a.png"), flat(60, 60, teal))
	writePNG(t, filepath.Join(dir, "b.png"), flat(60, 60, red))
	w, _ := OpenIndexWriter(filepath.Join(dir, IndexFile))
	w.Append(IndexEntry{Image: "a.png", Label: 0, Landmarks: landmarks68()})
	w.Append(IndexEntry{Image: "b.png", Label: 1})
	w.Close()
	ds, err := Open(dir, Options{ImageSize: 60, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	b := collect(t, NewLoader(ds, LoaderOptions{BatchSize: 2}), 0, 0)[0]
	if len(b.Regions) != 2*3600 {
		t.Fatalf("Regions has %d values", len(b.Regions))
	}
	var a, c float32
	for i := 0; i < 3600; i++ {
		a += b.Regions[i]
		c += b.Regions[3600+i]
	}
	// Mouth box 20x14 for the first sample, nothing for the second.
	if a != 20*14 || c != 0 {
		t.Errorf("region areas %v, %v; want 280, 0", a, c)
	}
	// Training: the region goes through the image's geometry. Paint the
	// mouth box red in the image; after augmentation the region's interior
	// pixels must be red.
	box, _ := scene(60, 60, 0, 0, 0)
	for y := 35; y < 49; y++ {
		for x := 15; x < 35; x++ {
			box.SetRGBA(x, y, red)
		}
	}
	writePNG(t, filepath.Join(dir, "a.png"), box)
	cfg := augment.Paper(60)
	cfg.GrayP, cfg.JPEGP, cfg.BlurP, cfg.NoiseP, cfg.ColorP = 0, 0, 0, 0, 0
	l := NewLoader(ds, LoaderOptions{BatchSize: 2, Train: true, Seed: 3, Augment: &cfg})
	nonEmpty := 0
	for epoch := 0; epoch < 10; epoch++ {
		for _, b := range collect(t, l, epoch, 0) {
			for s, p := range b.Paths {
				r := b.Regions[s*3600 : (s+1)*3600]
				img := b.Images[s*3*3600:]
				area := float32(0)
				for y := 1; y < 59; y++ {
					for x := 1; x < 59; x++ {
						area += r[y*60+x]
						if r[y*60+x] == 1 && r[(y-1)*60+x] == 1 && r[(y+1)*60+x] == 1 && r[y*60+x-1] == 1 && r[y*60+x+1] == 1 {
							if img[y*60+x] < 0.6 || img[3600+y*60+x] > -0.6 {
								t.Fatalf("epoch %d: region pixel (%d,%d) of %s is not red", epoch, x, y, p)
							}
						}
					}
				}
				if filepath.Base(p) == "b.png" && area != 0 {
					t.Fatalf("epoch %d: sample without landmarks has a region", epoch)
				}
				if area > 0 {
					nonEmpty++
				}
			}
		}
	}
	if nonEmpty < 5 {
		t.Errorf("region survived augmentation in only %d of 10 epochs", nonEmpty)
	}
}

func TestFFPPCropsLoad(t *testing.T) {
	dir := shared.Path(t, "data", "ffpp-crops")
	ds, err := Open(dir, Options{Limit: 8, Warn: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, NewLoader(ds, LoaderOptions{BatchSize: 8, Train: true, Seed: 1}), 0, 0)
	if len(bs) != 2 || ds.Skipped() != 0 {
		t.Fatalf("%d batches, %d skipped", len(bs), ds.Skipped())
	}
	ones := 0
	for _, b := range bs {
		if b.Size != 299 || len(b.Images) != 8*3*299*299 {
			t.Fatalf("batch size %d, %d floats", b.Size, len(b.Images))
		}
		for _, v := range b.Images {
			if v < -1 || v > 1 {
				t.Fatalf("image value %v outside [-1, 1]", v)
			}
		}
		for _, l := range b.Labels {
			ones += int(l)
		}
	}
	if ones != 8 {
		t.Errorf("%d fakes in 16 samples, want 8", ones)
	}
}

// BenchmarkLoaderBatch16 measures decoding and augmenting batches of 16
// 299x299 PNG crops with masks (all CPUs).
func BenchmarkLoaderBatch16(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i < 16; i++ {
		img, mask := scene(299, 299, 50+i*5, 60+i*3, 120)
		for k := 0; k < len(img.Pix); k += 4 { // texture, so PNG is not trivially small
			img.Pix[k] ^= uint8(k * 31 >> 2)
		}
		name := fmt.Sprintf("image_%d_0.png", i)
		writePNG(b, filepath.Join(dir, "fake", name), img)
		writePNG(b, filepath.Join(dir, "masks", name), mask)
	}
	ds, err := Open(dir, Options{Warn: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	l := NewLoader(ds, LoaderOptions{BatchSize: 16, Train: true, Seed: 1})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		it := l.Epoch(i, 0)
		if _, ok := it.Next(); !ok {
			b.Fatal(it.Err())
		}
		it.Close()
	}
	b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "img/s")
}

// Sharded between ranks (DistributedSampler semantics): in training, the
// ranks' batches b together are batch b of one loader with World times the
// batch size (same images, same augmentation), the epoch padded with its
// first samples; in evaluation every sample is in exactly one rank's share.
func TestLoaderShardsBetweenRanks(t *testing.T) {
	dir := sceneFolder(t, 9, 40) // 18 samples
	ds, err := Open(dir, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ds.opts.ImageSize = 32
	for _, world := range []int{1, 2, 3, 4, 5} {
		whole := collect(t, NewLoader(ds, LoaderOptions{BatchSize: 2 * world, Train: true, Seed: 7, Workers: 2}), 1, 0)
		ranks := make([][]Batch, world)
		for r := range ranks {
			l := NewLoader(ds, LoaderOptions{BatchSize: 2, Train: true, Seed: 7, Workers: 2, Rank: r, World: world})
			ranks[r] = collect(t, l, 1, 0)
			if want := (18 + world - 1) / world; l.Samples() != want || l.Len() != (want+1)/2 {
				t.Fatalf("world %d rank %d: %d samples, %d batches", world, r, l.Samples(), l.Len())
			}
		}
		img := 3 * 32 * 32
		for b, wb := range whole {
			for slot, p := range wb.Paths {
				r, j := slot%world, slot/world
				if b >= len(ranks[r]) || j >= len(ranks[r][b].Paths) {
					continue // the padded tail
				}
				rb := ranks[r][b]
				if rb.Paths[j] != p || !reflect.DeepEqual(rb.Images[j*img:(j+1)*img], wb.Images[slot*img:(slot+1)*img]) {
					t.Fatalf("world %d batch %d slot %d: rank %d has %s, the whole run %s", world, b, slot, r, rb.Paths[j], p)
				}
			}
		}
		// Every sample seen, the padding being repeats of the first ones.
		seen, total := map[string]bool{}, 0
		for _, bs := range ranks {
			for _, bt := range bs {
				for _, p := range bt.Paths {
					seen[p] = true
					total++
				}
			}
		}
		if pad := (world - 18%world) % world; len(seen) != 18 || total != 18+pad {
			t.Errorf("world %d: %d distinct of %d samples seen, want 18 of %d", world, len(seen), total, 18+pad)
		}
		// Evaluation: a partition, unpadded.
		count := map[string]int{}
		for r := 0; r < world; r++ {
			for _, bt := range collect(t, NewLoader(ds, LoaderOptions{BatchSize: 4, Workers: 1, Rank: r, World: world}), 0, 0) {
				for _, p := range bt.Paths {
					count[p]++
				}
			}
		}
		for p, c := range count {
			if c != 1 {
				t.Errorf("world %d eval: %s in %d shares", world, p, c)
			}
		}
		if len(count) != 18 {
			t.Errorf("world %d eval: %d samples, want 18", world, len(count))
		}
	}
}
