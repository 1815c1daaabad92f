package data

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/lvnet-go/lvnet/augment"
)

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	// BatchSize is the number of samples per batch (default 16).
	BatchSize int
	// Workers decode and augment in parallel (default runtime.NumCPU()).
	Workers int
	// Train shuffles every epoch and augments; otherwise samples come in
	// dataset order, only resized to the input size.
	Train bool
	// Seed fixes the shuffles and augmentations.
	Seed int64
	// Prefetch is the number of batches prepared ahead of the consumer
	// (default 2).
	Prefetch int
	// DropLast drops the last, incomplete batch of an epoch.
	DropLast bool
	// Augment overrides the training augmentations (default
	// augment.Paper(ImageSize)); its Size is forced to the dataset's
	// ImageSize.
	Augment *augment.Config
	// Rank and World shard the samples between the World ranks of a
	// data-parallel job, as PyTorch's DistributedSampler does: in training
	// the epoch's order (the same permutation on every rank) is padded
	// with its first samples to a multiple of World and rank r takes
	// positions r, r+World, ...; otherwise rank r takes the samples
	// r, r+World, ... of the dataset, unpadded. World 0 or 1: all samples.
	Rank, World int
}

// Batch is a batch of network inputs as flat slices (row-major).
type Batch struct {
	// Images is B x 3 x S x S: RGB scaled to [0,1], then (x-0.5)/0.5.
	Images []float32
	// Masks is B x 1 x S x S, 1 where forged, else 0.
	Masks []float32
	// Regions is B x 1 x S x S, 1 inside the SSPSL reference box; nil
	// unless the dataset carries landmarks and a region is requested
	// (samples without landmarks then have an all-zero region).
	Regions []float32
	// HasMask tells, per sample, whether Masks is ground truth: true for
	// reals (all zero by definition) and for fakes with a mask; false for
	// fakes without one, whose patch targets are unknown.
	HasMask []bool
	// Labels are 0 (real) or 1 (fake).
	Labels []int64
	// Paths and Videos identify the samples (after any substitution of an
	// unreadable sample).
	Paths, Videos []string
	// Size is the image side S; the batch holds len(Labels) samples.
	Size int
	// Index is the batch number within the epoch.
	Index int
}

// maxSubstitutes bounds how far the loader looks for a readable sample to
// stand in for an unreadable one.
const maxSubstitutes = 64

// Loader produces batches of a dataset, decoding and augmenting in parallel.
// Batches are deterministic: the epoch's order is a permutation drawn from
// (Seed, epoch) and each sample's augmentation from (Seed, epoch, sample),
// so the output does not depend on worker scheduling, and starting an
// epoch at batch k yields exactly the batches k, k+1, ... of a full run.
// An unreadable sample is replaced by the next readable one in the epoch's
// order (and counted in Dataset.Skipped).
type Loader struct {
	ds   *Dataset
	opts LoaderOptions
	aug  augment.Config
	lut  [256]float32
}

// NewLoader returns a loader over ds.
func NewLoader(ds *Dataset, opts LoaderOptions) *Loader {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 16
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.NumCPU()
	}
	if opts.Prefetch <= 0 {
		opts.Prefetch = 2
	}
	if opts.World < 1 {
		opts.World, opts.Rank = 1, 0
	}
	l := &Loader{ds: ds, opts: opts}
	if opts.Augment != nil {
		l.aug = *opts.Augment
	} else {
		l.aug = augment.Paper(ds.ImageSize())
	}
	l.aug.Size = ds.ImageSize()
	for v := range l.lut {
		l.lut[v] = (float32(v)/255 - 0.5) / 0.5
	}
	return l
}

// Dataset returns the loader's dataset.
func (l *Loader) Dataset() *Dataset { return l.ds }

// Samples returns the number of samples per epoch (of this rank).
func (l *Loader) Samples() int {
	n, w := l.ds.Len(), l.opts.World
	if l.opts.Train {
		return (n + w - 1) / w
	}
	return max(0, (n-l.opts.Rank+w-1)/w)
}

// Len returns the number of batches per epoch.
func (l *Loader) Len() int {
	n, b := l.Samples(), l.opts.BatchSize
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// splitmix is the SplitMix64 finaliser, used to derive independent seeds.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// order returns the sample order of an epoch (this rank's share).
func (l *Loader) order(epoch int) []int {
	n, w, r := l.ds.Len(), l.opts.World, l.opts.Rank
	var p []int
	if l.opts.Train {
		rng := rand.New(rand.NewPCG(splitmix(uint64(l.opts.Seed)), splitmix(uint64(epoch)^0x5eed)))
		p = rng.Perm(n)
		for i := 0; len(p)%w != 0; i++ {
			p = append(p, p[i%n])
		}
	} else {
		p = make([]int, n)
		for i := range p {
			p[i] = i
		}
	}
	if w == 1 {
		return p
	}
	var mine []int
	for i := r; i < len(p); i += w {
		mine = append(mine, p[i])
	}
	return mine
}

// sampleRNG is the random source of one sample in one epoch.
func (l *Loader) sampleRNG(epoch, sample int) *rand.Rand {
	a := splitmix(uint64(l.opts.Seed) ^ splitmix(uint64(epoch)))
	return rand.New(rand.NewPCG(a, splitmix(uint64(sample)+0x51a9)))
}

// Iter iterates over the batches of one epoch. Call Close when done (also
// after an early stop).
type Iter struct {
	l      *Loader
	epoch  int
	order  []int
	ready  chan *pending
	quit   chan struct{}
	wg     sync.WaitGroup
	err    error
	closed bool
}

// pending is a batch being filled by the workers.
type pending struct {
	batch     Batch
	start     int // position in the epoch order of slot 0
	remaining atomic.Int32
	done      chan struct{}
	mu        sync.Mutex
	err       error
}

type job struct {
	p    *pending
	slot int
}

// Epoch starts iterating over epoch's batches from batch startBatch.
func (l *Loader) Epoch(epoch, startBatch int) *Iter {
	it := &Iter{
		l:     l,
		epoch: epoch,
		order: l.order(epoch),
		ready: make(chan *pending, l.opts.Prefetch),
		quit:  make(chan struct{}),
	}
	if startBatch < 0 {
		startBatch = 0
	}
	jobs := make(chan job, l.opts.Workers)
	it.wg.Add(1)
	go it.dispatch(startBatch, jobs)
	for w := 0; w < l.opts.Workers; w++ {
		it.wg.Add(1)
		go it.work(jobs)
	}
	return it
}

func (it *Iter) dispatch(start int, jobs chan<- job) {
	defer it.wg.Done()
	defer close(jobs)
	defer close(it.ready)
	l := it.l
	B, S := l.opts.BatchSize, l.ds.ImageSize()
	n := len(it.order)
	for b := start; b < l.Len(); b++ {
		size := min(B, n-b*B)
		p := &pending{start: b * B, done: make(chan struct{})}
		p.batch = Batch{
			Images:  make([]float32, size*3*S*S),
			Masks:   make([]float32, size*S*S),
			Labels:  make([]int64, size),
			HasMask: make([]bool, size),
			Paths:   make([]string, size),
			Videos:  make([]string, size),
			Size:    S,
			Index:   b,
		}
		if l.ds.HasRegions() {
			p.batch.Regions = make([]float32, size*S*S)
		}
		p.remaining.Store(int32(size))
		select {
		case it.ready <- p:
		case <-it.quit:
			return
		}
		for j := 0; j < size; j++ {
			select {
			case jobs <- job{p, j}:
			case <-it.quit:
				return
			}
		}
	}
}

func (it *Iter) work(jobs <-chan job) {
	defer it.wg.Done()
	for jb := range jobs {
		select {
		case <-it.quit:
		default:
			if err := it.fill(jb.p, jb.slot); err != nil {
				jb.p.mu.Lock()
				if jb.p.err == nil {
					jb.p.err = err
				}
				jb.p.mu.Unlock()
			}
		}
		if jb.p.remaining.Add(-1) == 0 {
			close(jb.p.done)
		}
	}
}

// fill loads, augments and writes one slot of a batch, substituting the
// following samples of the epoch order for unreadable ones.
func (it *Iter) fill(p *pending, slot int) error {
	l := it.l
	n := len(it.order)
	pos := p.start + slot
	var lastErr error
	for k := 0; k < maxSubstitutes && k < n; k++ {
		idx := it.order[(pos+k)%n]
		rng := l.sampleRNG(it.epoch, idx)
		item, err := l.ds.Load(idx, rng)
		if err != nil {
			lastErr = err
			continue
		}
		if err := l.put(&p.batch, slot, item, rng); err != nil {
			l.ds.markBad(item.Sample.Path, err)
			lastErr = err
			continue
		}
		return nil
	}
	return fmt.Errorf("batch %d: no readable sample at epoch position %d or the %d after it: %w", p.batch.Index, pos, maxSubstitutes-1, lastErr)
}

// put augments (train) or resizes (eval) an item and writes it into slot j.
func (l *Loader) put(b *Batch, j int, item *Item, rng *rand.Rand) error {
	S := b.Size
	img, mask, region := item.Image, item.Mask, item.Region
	if l.opts.Train {
		out, ms, err := l.aug.Apply(rng, img, mask, region)
		if err != nil {
			return err
		}
		img, mask, region = out, ms[0], ms[1]
	} else {
		var err error
		if img, err = augment.Resize(img, S, S); err != nil {
			return err
		}
		if mask != nil {
			if mask, err = augment.ResizeNearest(mask, S, S); err != nil {
				return err
			}
		}
		if region != nil {
			if region, err = augment.ResizeNearest(region, S, S); err != nil {
				return err
			}
		}
	}
	plane := S * S
	dst := b.Images[j*3*plane : (j+1)*3*plane]
	for i := 0; i < plane; i++ {
		dst[i] = l.lut[img.Pix[3*i]]
		dst[plane+i] = l.lut[img.Pix[3*i+1]]
		dst[2*plane+i] = l.lut[img.Pix[3*i+2]]
	}
	binary := func(dst []float32, m *augment.Image) {
		for i := range dst {
			if m != nil && m.Pix[i] > 0 {
				dst[i] = 1
			} else {
				dst[i] = 0
			}
		}
	}
	binary(b.Masks[j*plane:(j+1)*plane], mask)
	if b.Regions != nil {
		binary(b.Regions[j*plane:(j+1)*plane], region)
	}
	b.Labels[j] = int64(item.Sample.Label)
	b.HasMask[j] = item.Sample.Label == 0 || item.Mask != nil
	b.Paths[j] = item.Sample.Path
	b.Videos[j] = item.Sample.Video
	return nil
}

// Next returns the next batch, or false at the end of the epoch or after an
// error (see Err).
func (it *Iter) Next() (Batch, bool) {
	if it.err != nil || it.closed {
		return Batch{}, false
	}
	p, ok := <-it.ready
	if !ok {
		return Batch{}, false
	}
	<-p.done
	if p.err != nil {
		it.err = fmt.Errorf("epoch %d: %w", it.epoch, p.err)
		it.Close()
		return Batch{}, false
	}
	return p.batch, true
}

// Err returns the error that stopped the iteration, if any.
func (it *Iter) Err() error { return it.err }

// Close stops the workers and waits for them. It is safe to call twice.
func (it *Iter) Close() {
	if it.closed {
		return
	}
	it.closed = true
	close(it.quit)
	// Drain so the dispatcher is never blocked on a full ready channel.
	go func() {
		for range it.ready {
		}
	}()
	it.wg.Wait()
}
