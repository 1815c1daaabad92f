package data

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lvnet-go/lvnet/augment"
)

// Sample is one face image of a dataset.
type Sample struct {
	// Path is the image file (for generated samples "SPEC#i").
	Path string
	// MaskPath is the pixel mask of the forged area (white = forged); ""
	// when there is none (an all-zero mask, or the mask panel of a Panel
	// image).
	MaskPath string
	// Label is 0 for real, 1 for fake.
	Label int
	// Video groups the frames of one video (video-level metrics).
	Video string
	// Frame is the frame number within Video.
	Frame int
	// Group is the source a split keeps on one side (a DFDC fake and the
	// real video it was made from); "" means derived from Video (see
	// sourceGroups).
	Group string
	// Method names the forgery method or subset the sample comes from.
	Method string
	// Landmarks are 68 (or more, dlib order) facial landmarks in image
	// coordinates; nil when unknown.
	Landmarks [][2]float32
	// LandmarkPath is a NumPy .npy file of landmarks, read when the sample
	// is loaded and Landmarks is nil (DeepfakeBench); "" when none.
	LandmarkPath string
	// Panel is 0 for a plain image; n >= 2 for the authors' n-panel images
	// (face | mask | extra side by side, n = 3), whose first panel is the
	// face and whose second the mask.
	Panel int

	gen    Generator // non-nil for generated samples
	genIdx int
}

// Generator produces samples on the fly (e.g. self-blended images). The
// dataset calls Generate with a random source seeded from (seed, epoch,
// sample), so a generated sample is reproducible. A Generator must be safe
// for concurrent use. Generated samples are fakes unless the generator also
// implements Labeler.
type Generator interface {
	// Len returns the number of samples per epoch.
	Len() int
	// Generate returns sample i: an image and its forgery mask (nil: none).
	Generate(i int, rng *rand.Rand) (img *image.RGBA, mask *image.Gray, err error)
}

// Labeler is implemented by generators whose samples are not all fakes.
type Labeler interface {
	// Label returns 0 (real) or 1 (fake) for sample i.
	Label(i int) int
}

// Options configures how a dataset is opened. The zero value is usable.
type Options struct {
	// Every keeps every Nth frame of each video (the paper trains on every
	// 3rd); 0 or 1 keeps all. A spec's ?every=N overrides it.
	Every int
	// Balance resamples the reals to as many as the fakes, as the authors'
	// training set does: whole copies of every real, then a seeded random
	// choice for the remainder (or a random subset when reals outnumber
	// fakes).
	Balance bool
	// Seed seeds the balancing choice (and the loader, see LoaderOptions).
	Seed int64
	// Limit caps the number of samples per class (evenly spaced over the
	// dataset order), for smoke runs; 0 means no cap.
	Limit int
	// ImageSize is the side of the square network input; 0 means 299.
	ImageSize int
	// Region picks the SSPSL reference region drawn from landmarks:
	// "mouth" (default), "nose", "eyes", or "none".
	Region string
	// Split names the split used by specs that do not give one: the
	// DeepfakeBench split, and ROOT/splits/<Split>.json for ffpp; default
	// "train".
	Split string
	// Warn receives warnings about skipped files; nil means os.Stderr.
	Warn io.Writer
	// Generators serves generated sources: the spec "NAME:ARG" (or a
	// spec equal to a key) opens the generator registered under the full
	// spec, else under NAME, e.g. "sbi".
	Generators map[string]Generator
}

func (o Options) withDefaults() Options {
	if o.Every <= 0 {
		o.Every = 1
	}
	if o.ImageSize <= 0 {
		o.ImageSize = 299
	}
	if o.Region == "" {
		o.Region = "mouth"
	}
	if o.Split == "" {
		o.Split = "train"
	}
	if o.Warn == nil {
		o.Warn = os.Stderr
	}
	return o
}

// Dataset is an ordered list of samples opened from a spec. It is safe for
// concurrent use by the loader's workers.
type Dataset struct {
	spec    string
	opts    Options
	samples []Sample
	regions bool

	mu      sync.Mutex
	bad     map[string]bool // paths found unreadable
	skipped int
}

// Open opens the dataset named by spec (see the package documentation).
func Open(spec string, opts Options) (*Dataset, error) {
	opts = opts.withDefaults()
	switch opts.Region {
	case "mouth", "nose", "eyes", "none":
	default:
		return nil, fmt.Errorf("open %q: unknown reference region %q (want mouth, nose, eyes or none)", spec, opts.Region)
	}
	if opts.Limit < 0 {
		return nil, fmt.Errorf("open %q: negative limit %d", spec, opts.Limit)
	}
	d := &Dataset{spec: spec, opts: opts, bad: map[string]bool{}}
	parts := splitSpec(spec, opts)
	if len(parts) == 0 {
		return nil, errors.New("open: empty dataset spec")
	}
	for _, part := range parts {
		ss, err := d.openSource(part)
		if err != nil {
			return nil, err
		}
		d.samples = append(d.samples, ss...)
	}
	if opts.Limit > 0 {
		d.samples = limitPerClass(d.samples, opts.Limit)
	}
	if opts.Balance {
		d.samples = d.balance(d.samples)
	}
	if len(d.samples) == 0 {
		return nil, fmt.Errorf("open %q: no samples", spec)
	}
	if opts.Region != "none" {
		for i := range d.samples {
			_, lmGen := d.samples[i].gen.(interface{ Landmarks(i int) [][2]float32 })
			if d.samples[i].Landmarks != nil || d.samples[i].LandmarkPath != "" || lmGen {
				d.regions = true
				break
			}
		}
	}
	return d, nil
}

// schemes are the spec prefixes handled here.
var schemes = []string{"ffpp", "dfb", "folder", "index", "dfdc"}

// hasScheme reports whether s starts with a known "scheme:" prefix.
func hasScheme(s string, opts Options) bool {
	name, _, ok := strings.Cut(s, ":")
	if !ok {
		return false
	}
	for _, k := range schemes {
		if name == k {
			return true
		}
	}
	if _, ok := opts.Generators[name]; ok {
		return true
	}
	_, ok = opts.Generators[s]
	return ok || name == "sbi"
}

// splitSpec splits "A+B+C" into parts. A '+' only separates specs when
// what follows starts a spec (a known scheme or an existing path), so paths
// such as "FaceForensics++/x" survive.
func splitSpec(spec string, opts Options) []string {
	pieces := strings.Split(spec, "+")
	var out []string
	cur := pieces[0]
	for _, p := range pieces[1:] {
		if p != "" && (hasScheme(p, opts) || exists(stripQuery(p))) && cur != "" {
			out = append(out, cur)
			cur = p
			continue
		}
		cur += "+" + p
	}
	if strings.TrimSpace(cur) != "" {
		out = append(out, cur)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func stripQuery(s string) string {
	if i := strings.LastIndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}

// parseQuery splits "PATH?k=v&..." and checks the keys against allowed.
func parseQuery(part, path string, allowed ...string) (string, url.Values, error) {
	i := strings.LastIndexByte(path, '?')
	if i < 0 {
		return path, url.Values{}, nil
	}
	q, err := url.ParseQuery(path[i+1:])
	if err != nil {
		return "", nil, fmt.Errorf("open %q: bad parameters: %w", part, err)
	}
	if v, ok := q["every"]; ok {
		if n, err := strconv.Atoi(v[0]); err != nil || n < 1 {
			return "", nil, fmt.Errorf("open %q: every=%q is not a positive integer", part, v[0])
		}
	}
	for k := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return "", nil, fmt.Errorf("open %q: unknown parameter %q (known: %s)", part, k, strings.Join(allowed, ", "))
		}
	}
	return path[:i], q, nil
}

// openSource opens one spec part and applies its frame subsampling.
func (d *Dataset) openSource(part string) ([]Sample, error) {
	name, rest, hasColon := strings.Cut(part, ":")
	if g := d.opts.Generators[part]; g != nil {
		return d.openGenerator(part, g)
	}
	if hasColon {
		if g := d.opts.Generators[name]; g != nil {
			return d.openGenerator(part, g)
		}
	}
	var (
		path string
		q    url.Values
		err  error
		ss   []Sample
	)
	switch {
	case hasColon && name == "ffpp":
		if path, q, err = parseQuery(part, rest, "split", "methods", "every", "real"); err != nil {
			return nil, err
		}
		ss, err = d.openFFPP(path, q)
	case hasColon && name == "dfb":
		if path, q, err = parseQuery(part, rest, "dataset", "split", "compression", "root", "every"); err != nil {
			return nil, err
		}
		ss, err = d.openDFB(path, q)
	case hasColon && name == "folder":
		if path, q, err = parseQuery(part, rest, "every", "subset", "holdout", "method"); err != nil {
			return nil, err
		}
		ss, err = d.openFolder(path)
	case hasColon && name == "index":
		if path, q, err = parseQuery(part, rest, "every", "subset", "holdout", "method"); err != nil {
			return nil, err
		}
		if st, serr := os.Stat(path); serr == nil && st.IsDir() {
			path = filepath.Join(path, IndexFile) // index:DIR
		}
		ss, err = d.openIndex(path)
	case hasColon && name == "dfdc":
		if path, q, err = parseQuery(part, rest, "every", "subset", "holdout", "method"); err != nil {
			return nil, err
		}
		ss, err = d.openDFDC(path)
	case hasColon && name == "sbi":
		return nil, fmt.Errorf("open %q: no generator registered for %q or %q (Options.Generators)", part, part, name)
	default:
		bare := stripQuery(part)
		st, serr := os.Stat(bare)
		if serr != nil {
			return nil, fmt.Errorf("open %q: %w", part, serr)
		}
		isDFB := !st.IsDir() && strings.HasSuffix(bare, ".json")
		if isDFB {
			path, q, err = parseQuery(part, part, "dataset", "split", "compression", "root", "every")
		} else {
			path, q, err = parseQuery(part, part, "every", "subset", "holdout", "method")
		}
		if err != nil {
			return nil, err
		}
		switch {
		case st.IsDir() && exists(filepath.Join(path, IndexFile)):
			ss, err = d.openIndex(filepath.Join(path, IndexFile))
		case st.IsDir():
			ss, err = d.openFolder(path)
		case strings.HasSuffix(path, ".jsonl"):
			ss, err = d.openIndex(path)
		case isDFB:
			ss, err = d.openDFB(path, q)
		default:
			return nil, fmt.Errorf("open %q: not a directory, index.jsonl or DeepfakeBench .json", part)
		}
	}
	if err != nil {
		return nil, err
	}
	subset, holdout, err := subsetOf(part, q)
	if err != nil {
		return nil, err
	}
	ss = selectSubset(ss, subset, holdout)
	if v := q.Get("method"); v != "" && !strings.HasPrefix(part, "ffpp:") {
		ss = selectMethods(ss, strings.Split(v, ","))
	}
	every := d.opts.Every
	if v := q.Get("every"); v != "" {
		every, _ = strconv.Atoi(v) // checked by parseQuery
	}
	if every > 1 {
		ss = everyNth(ss, every)
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("open %q: no samples", part)
	}
	return ss, nil
}

// everyNth keeps frames 0, n, 2n, ... of each video (frames in frame
// order), keeping the order of first appearance of the videos.
func everyNth(ss []Sample, n int) []Sample {
	groups := map[string][]int{}
	var order []string
	for i, s := range ss {
		if _, ok := groups[s.Video]; !ok {
			order = append(order, s.Video)
		}
		groups[s.Video] = append(groups[s.Video], i)
	}
	out := make([]Sample, 0, len(ss)/n+len(order))
	for _, v := range order {
		idx := groups[v]
		sort.SliceStable(idx, func(a, b int) bool {
			sa, sb := &ss[idx[a]], &ss[idx[b]]
			if sa.Frame != sb.Frame {
				return sa.Frame < sb.Frame
			}
			return naturalLess(sa.Path, sb.Path)
		})
		for k := 0; k < len(idx); k += n {
			out = append(out, ss[idx[k]])
		}
	}
	return out
}

// limitPerClass keeps at most n samples of each label, evenly spaced over
// the dataset order.
func limitPerClass(ss []Sample, n int) []Sample {
	byLabel := map[int][]int{}
	for i, s := range ss {
		byLabel[s.Label] = append(byLabel[s.Label], i)
	}
	keep := make([]bool, len(ss))
	for _, idx := range byLabel {
		if len(idx) <= n {
			for _, i := range idx {
				keep[i] = true
			}
			continue
		}
		for k := 0; k < n; k++ {
			keep[idx[k*len(idx)/n]] = true
		}
	}
	out := ss[:0:0]
	for i, s := range ss {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}

// balance resamples the reals to the number of fakes (the authors'
// ff_all.py): F/R whole copies of the reals, then F mod R reals drawn
// without replacement.
func (d *Dataset) balance(ss []Sample) []Sample {
	var reals, fakes []Sample
	for _, s := range ss {
		if s.Label == 0 {
			reals = append(reals, s)
		} else {
			fakes = append(fakes, s)
		}
	}
	if len(reals) == 0 || len(fakes) == 0 {
		d.warnf("balance: dataset has %d reals and %d fakes; not balancing", len(reals), len(fakes))
		return ss
	}
	rng := rand.New(rand.NewPCG(uint64(d.opts.Seed), 0xba1a7ce))
	out := make([]Sample, 0, 2*len(fakes))
	for k := 0; k < len(fakes)/len(reals); k++ {
		out = append(out, reals...)
	}
	pick := rng.Perm(len(reals))[:len(fakes)%len(reals)]
	sort.Ints(pick)
	for _, i := range pick {
		out = append(out, reals[i])
	}
	return append(out, fakes...)
}

// Len returns the number of samples.
func (d *Dataset) Len() int { return len(d.samples) }

// Sample returns sample i.
func (d *Dataset) Sample(i int) Sample { return d.samples[i] }

// Samples returns a copy of the sample list.
func (d *Dataset) Samples() []Sample { return append([]Sample(nil), d.samples...) }

// Counts returns the number of real and fake samples.
func (d *Dataset) Counts() (real, fake int) {
	for _, s := range d.samples {
		if s.Label == 0 {
			real++
		} else {
			fake++
		}
	}
	return real, fake
}

// ImageSize returns the side of the network input.
func (d *Dataset) ImageSize() int { return d.opts.ImageSize }

// HasRegions reports whether samples carry landmarks and a reference region
// is requested, i.e. whether batches carry Regions.
func (d *Dataset) HasRegions() bool { return d.regions }

// Skipped returns the number of distinct files skipped as unreadable or
// corrupt so far (at Open and while loading).
func (d *Dataset) Skipped() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.skipped
}

func (d *Dataset) warnf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.opts.Warn, "data: warning: "+format+"\n", args...)
}

// markBad records an unreadable sample, warning and counting it once.
func (d *Dataset) markBad(path string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bad[path] {
		return
	}
	d.bad[path] = true
	d.skipped++
	fmt.Fprintf(d.opts.Warn, "data: warning: skipping %s: %v\n", path, err)
}

func (d *Dataset) isBad(path string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.bad[path]
}

// Item is a decoded sample at its source resolution.
type Item struct {
	Sample Sample
	// Image has 3 channels.
	Image *augment.Image
	// Mask (1 channel, the size of Image; white = forged) is nil when the
	// sample has none (all zero).
	Mask *augment.Image
	// Region (1 channel, the size of Image; 255 inside the reference box)
	// is nil when the sample has no landmarks or no region is requested.
	Region *augment.Image
}

// Load decodes sample i. rng drives generated samples. A sample that cannot
// be read is recorded (Skipped, one warning per file) and its error
// returned.
func (d *Dataset) Load(i int, rng *rand.Rand) (*Item, error) {
	if i < 0 || i >= len(d.samples) {
		return nil, fmt.Errorf("load: sample %d out of range [0, %d)", i, len(d.samples))
	}
	s := d.samples[i]
	if d.isBad(s.Path) {
		return nil, fmt.Errorf("load %s: known unreadable", s.Path)
	}
	it, err := d.load(s, rng)
	if err != nil {
		d.markBad(s.Path, err)
		return nil, fmt.Errorf("load %s: %w", s.Path, err)
	}
	return it, nil
}

func (d *Dataset) load(s Sample, rng *rand.Rand) (*Item, error) {
	it := &Item{Sample: s}
	if s.gen != nil {
		img, mask, err := s.gen.Generate(s.genIdx, rng)
		if err != nil {
			return nil, err
		}
		if img == nil || img.Bounds().Empty() {
			return nil, errors.New("generator returned no image")
		}
		it.Image = augment.FromRGBA(img)
		if mask != nil {
			it.Mask = augment.FromGray(mask)
		}
	} else {
		img, err := decodeRGB(s.Path)
		if err != nil {
			return nil, err
		}
		it.Image = img
		if s.Panel >= 2 {
			if it.Image, it.Mask, err = splitPanels(img, s.Panel); err != nil {
				return nil, err
			}
		}
		if s.MaskPath != "" {
			if it.Mask, err = decodeGray(s.MaskPath); err != nil {
				return nil, fmt.Errorf("mask: %w", err)
			}
		}
	}
	if it.Mask != nil && (it.Mask.W != it.Image.W || it.Mask.H != it.Image.H) {
		m, err := augment.ResizeNearest(it.Mask, it.Image.W, it.Image.H)
		if err != nil {
			return nil, fmt.Errorf("mask: %w", err)
		}
		it.Mask = m
	}
	if d.opts.Region != "none" {
		lm := s.Landmarks
		if lg, ok := s.gen.(interface{ Landmarks(i int) [][2]float32 }); ok && lm == nil {
			lm = lg.Landmarks(s.genIdx) // generated faces (SBI) know their landmarks
		}
		if lm == nil && s.LandmarkPath != "" {
			var err error
			if lm, err = readLandmarks(s.LandmarkPath); err != nil {
				return nil, err
			}
		}
		if lm != nil {
			it.Region = regionMask(lm, d.opts.Region, it.Image.W, it.Image.H)
		}
	}
	return it, nil
}

// openGenerator lists a generator's samples.
func (d *Dataset) openGenerator(spec string, g Generator) ([]Sample, error) {
	n := g.Len()
	if n <= 0 {
		return nil, fmt.Errorf("open %q: generator has no samples", spec)
	}
	lab, _ := g.(Labeler)
	ss := make([]Sample, n)
	for i := range ss {
		label := 1
		if lab != nil {
			label = lab.Label(i)
			if label != 0 && label != 1 {
				return nil, fmt.Errorf("open %q: generator labels sample %d as %d", spec, i, label)
			}
		}
		ss[i] = Sample{
			Path:   spec + "#" + strconv.Itoa(i),
			Label:  label,
			Video:  spec + "#" + strconv.Itoa(i),
			Method: spec,
			gen:    g,
			genIdx: i,
		}
	}
	return ss, nil
}

// naturalLess orders strings with digit runs compared as numbers
// ("frame2" < "frame10").
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ca, cb := a[0], b[0]
		if isDigit(ca) && isDigit(cb) {
			i, j := 0, 0
			for i < len(a) && isDigit(a[i]) {
				i++
			}
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if i != j { // same value, fewer leading zeros first
				return i < j
			}
			a, b = a[i:], b[j:]
			continue
		}
		if ca != cb {
			return ca < cb
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// trailingNumber returns the last run of digits in a file name (extension
// excluded), or -1 when there is none.
func trailingNumber(name string) int {
	base := strings.TrimSuffix(name, filepath.Ext(name))
	end := len(base)
	for end > 0 && !isDigit(base[end-1]) {
		end--
	}
	start := end
	for start > 0 && isDigit(base[start-1]) {
		start--
	}
	n, err := strconv.Atoi(base[start:end])
	if err != nil {
		return -1
	}
	return n
}
