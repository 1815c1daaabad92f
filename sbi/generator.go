package sbi

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
)

// FaceDetector finds faces and their 68 landmarks in an image, largest
// first (*face.Detector is one).
type FaceDetector interface {
	Detect(img *image.RGBA) ([]face.Face, error)
}

// GeneratorOptions configure NewGenerator. The zero value is usable.
type GeneratorOptions struct {
	// Blend tunes the self-blending.
	Blend Options
	// Reals makes the generator yield the real faces too: sample 2k is
	// face k unchanged (label 0, no mask), sample 2k+1 a blend of it.
	// Without it every sample is a blend (label 1).
	Reals bool
	// Detector finds landmarks of faces that have none in the folder's
	// index or the cache. Nil: a face.Detector with face.TightOptions(),
	// loaded from ModelDir when first needed and closed by Close.
	Detector FaceDetector
	// ModelDir holds the face models (default face.DefaultModelDir()).
	ModelDir string
	// Subset keeps one side of a split of the faces by source ("train" or
	// "val", data.InHoldout with Holdout; "" keeps all). A face's source is
	// its path below DIR, or for a DFDC folder (DIR/metadata.csv) its video,
	// as the dfdc: data spec groups it.
	Subset  string
	Holdout float64
	// Limit keeps at most this many faces, evenly spaced (0: all).
	Limit int
	// Cache is the file where detected landmarks are kept for the next
	// run (one JSON line per image, keyed by its path, size and
	// modification time). Empty: a file named after DIR's absolute path in
	// the user's cache directory (lvnet/sbi/<hash>.jsonl; the faces folder
	// itself is never written to). "-" disables the cache.
	Cache string
}

// Generator makes self-blended images from a folder of real face crops. It
// implements data.Generator and data.Labeler: sample i blends face i (or,
// with Reals, alternates reals and blends). It is safe for concurrent use.
type Generator struct {
	dir    string
	opts   GeneratorOptions
	faces  []string // image paths
	rel    []string // paths relative to dir (cache keys)
	groups []string // source groups of the faces of an index (nil for a folder)

	mu            sync.Mutex
	lms           []*[face.NumLandmarks][2]float32 // nil: unknown
	noFace        []bool
	det           FaceDetector
	ownDet        *face.Detector
	detErr        error
	cache         *os.File // opened on the first append
	cachePathName string   // "" for no cache
	cacheTorn     bool     // the cache file ends in a torn line
	cacheErr      error
}

var (
	_ data.Generator = (*Generator)(nil)
	_ data.Labeler   = (*Generator)(nil)
)

// NewGenerator lists the real faces of dir: the real entries (label 0) of
// dir/index.jsonl with their landmarks when there is one (as written by
// `lvnet prepare`), else every image below dir (only those below
// directories named "real" when there are any; directories named "fake" or
// "masks" are left out). Faces without landmarks are detected when first
// used, and the landmarks cached (see GeneratorOptions.Cache).
func NewGenerator(dir string, opts GeneratorOptions) (*Generator, error) {
	if _, err := opts.Blend.resolved(); err != nil {
		return nil, fmt.Errorf("sbi generator %s: %w", dir, err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("sbi generator: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("sbi generator %s: not a directory", dir)
	}
	g := &Generator{dir: dir, opts: opts, det: opts.Detector}
	idx := filepath.Join(dir, data.IndexFile)
	if _, err := os.Stat(idx); err == nil {
		if err := g.listIndex(idx); err != nil {
			return nil, err
		}
	} else if err := g.listFolder(); err != nil {
		return nil, err
	}
	g.selectFaces()
	if len(g.faces) == 0 {
		return nil, fmt.Errorf("sbi generator %s: no real face images found", dir)
	}
	if err := g.openCache(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Generator) listIndex(path string) error {
	es, err := data.ReadIndex(path)
	if err != nil {
		return fmt.Errorf("sbi generator: %w", err)
	}
	// Source groups over every entry (fakes tie FaceForensics++ reals to
	// their pairs), so that subset= splits as the index: spec does.
	all := make([]data.Sample, len(es))
	for i, e := range es {
		all[i] = data.Sample{Video: e.Video}
		if e.Video == "" {
			all[i].Video = e.Image
		}
	}
	groups := data.SourceGroups(all)
	for i, e := range es {
		if e.Label != 0 {
			continue
		}
		g.groups = append(g.groups, groups[i])
		p := e.Image
		if !filepath.IsAbs(p) {
			p = filepath.Join(g.dir, filepath.FromSlash(p))
		}
		var lm *[face.NumLandmarks][2]float32
		if len(e.Landmarks) >= face.NumLandmarks {
			lm = new([face.NumLandmarks][2]float32)
			copy(lm[:], e.Landmarks[:face.NumLandmarks])
		}
		g.faces = append(g.faces, p)
		g.rel = append(g.rel, filepath.ToSlash(e.Image))
		g.lms = append(g.lms, lm)
	}
	g.noFace = make([]bool, len(g.faces))
	if len(g.faces) == 0 {
		return fmt.Errorf("sbi generator: %s lists no real faces (label 0)", path)
	}
	return nil
}

func (g *Generator) listFolder() error {
	var all, real []string
	err := filepath.WalkDir(g.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.ToLower(e.Name())
		if e.IsDir() {
			if path != g.dir && (strings.HasPrefix(name, ".") || name == "fake" || name == "masks" || name == "mask") {
				return fs.SkipDir
			}
			return nil
		}
		if !media.IsImageExt(name) {
			return nil
		}
		rel, err := filepath.Rel(g.dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		all = append(all, rel)
		for _, c := range strings.Split(rel, "/") {
			if strings.EqualFold(c, "real") {
				real = append(real, rel)
				break
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sbi generator %s: %w", g.dir, err)
	}
	if len(real) > 0 {
		all = real
	}
	sort.Strings(all)
	for _, rel := range all {
		g.faces = append(g.faces, filepath.Join(g.dir, filepath.FromSlash(rel)))
		g.rel = append(g.rel, rel)
	}
	g.lms = make([]*[face.NumLandmarks][2]float32, len(g.faces))
	g.noFace = make([]bool, len(g.faces))
	return nil
}

// selectFaces applies Subset and Limit.
func (g *Generator) selectFaces() {
	_, err := os.Stat(filepath.Join(g.dir, "metadata.csv"))
	dfdc := err == nil
	keep := func(i int) bool {
		if g.opts.Subset == "" {
			return true
		}
		group := g.rel[i]
		if g.groups != nil {
			group = g.groups[i]
		} else if dfdc {
			group = "dfdc/" + strings.TrimSuffix(path.Base(group), path.Ext(group))
		}
		holdout := g.opts.Holdout
		if holdout == 0 {
			holdout = data.DefaultHoldout
		}
		return data.InHoldout(group, holdout) == (g.opts.Subset == "val")
	}
	var idx []int
	for i := range g.faces {
		if keep(i) {
			idx = append(idx, i)
		}
	}
	if g.opts.Limit > 0 && len(idx) > g.opts.Limit {
		sel := make([]int, g.opts.Limit)
		for k := range sel {
			sel[k] = idx[k*len(idx)/g.opts.Limit]
		}
		idx = sel
	}
	faces, rel := make([]string, len(idx)), make([]string, len(idx))
	lms, noFace := make([]*[face.NumLandmarks][2]float32, len(idx)), make([]bool, len(idx))
	for k, i := range idx {
		faces[k], rel[k], lms[k], noFace[k] = g.faces[i], g.rel[i], g.lms[i], g.noFace[i]
	}
	if g.groups != nil {
		groups := make([]string, len(idx))
		for k, i := range idx {
			groups[k] = g.groups[i]
		}
		g.groups = groups
	}
	g.faces, g.rel, g.lms, g.noFace = faces, rel, lms, noFace
}

// cacheLine is one line of the landmark cache.
type cacheLine struct {
	Image     string       `json:"image"`
	Size      int64        `json:"size"`
	ModTime   int64        `json:"mtime"`
	Landmarks [][2]float32 `json:"landmarks,omitempty"`
	NoFace    bool         `json:"noface,omitempty"`
	// Padded marks a NoFace found also in the padded image (older
	// NoFace lines, written without the padded retry, are retried).
	Padded bool `json:"padded,omitempty"`
}

// cachePath picks the cache file (see GeneratorOptions.Cache).
func (g *Generator) cachePath() (string, bool) {
	switch g.opts.Cache {
	case "-":
		return "", false
	case "":
	default:
		return g.opts.Cache, true
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", false
	}
	abs, err := filepath.Abs(g.dir)
	if err != nil {
		abs = g.dir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(base, "lvnet", "sbi", hex.EncodeToString(sum[:8])+".jsonl"), true
}

// openCache reads the landmark cache. Lines whose image changed size or
// modification time are ignored, and so is a torn last line (a crash while
// writing). The file is opened for appending when the first landmarks are
// detected.
func (g *Generator) openCache() error {
	path, ok := g.cachePath()
	if !ok {
		return nil
	}
	g.cachePathName = path
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sbi generator: read landmark cache: %w", err)
	}
	g.cacheTorn = len(b) > 0 && b[len(b)-1] != '\n'
	byRel := make(map[string]int, len(g.rel))
	for i, r := range g.rel {
		byRel[r] = i
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var l cacheLine
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue // torn or foreign line
		}
		i, ok := byRel[l.Image]
		if !ok || g.lms[i] != nil {
			continue
		}
		st, err := os.Stat(g.faces[i])
		if err != nil || st.Size() != l.Size || st.ModTime().UnixNano() != l.ModTime {
			continue
		}
		switch {
		case l.NoFace && !l.Padded:
			continue // looked for before tight crops were padded: look again
		case l.NoFace:
			g.noFace[i] = true
		case len(l.Landmarks) == face.NumLandmarks:
			lm := new([face.NumLandmarks][2]float32)
			copy(lm[:], l.Landmarks)
			g.lms[i] = lm
		}
	}
	return nil
}

// Dir returns the folder the faces come from.
func (g *Generator) Dir() string { return g.dir }

// Faces returns the number of real faces.
func (g *Generator) Faces() int { return len(g.faces) }

// FacePath returns the image file of face k.
func (g *Generator) FacePath(k int) string { return g.faces[k] }

// Len returns the number of samples: one per face, two with Reals.
func (g *Generator) Len() int {
	if g.opts.Reals {
		return 2 * len(g.faces)
	}
	return len(g.faces)
}

// Label returns 1 (fake), or with Reals 0 for even i.
func (g *Generator) Label(i int) int {
	if g.opts.Reals && i%2 == 0 {
		return 0
	}
	return 1
}

// faceOf returns the face index of sample i.
func (g *Generator) faceOf(i int) int {
	if g.opts.Reals {
		return i / 2
	}
	return i
}

// Landmarks returns the landmarks of the face of sample i, in image
// coordinates, when known (from the index or cache, or detected by an
// earlier Generate); nil otherwise.
func (g *Generator) Landmarks(i int) [][2]float32 {
	if i < 0 || i >= g.Len() {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	lm := g.lms[g.faceOf(i)]
	if lm == nil {
		return nil
	}
	return append([][2]float32(nil), lm[:]...)
}

// Generate returns sample i: a self-blended image of face i and its soft
// mask (or, with Reals and even i, the real face and a nil mask).
func (g *Generator) Generate(i int, rng *rand.Rand) (*image.RGBA, *image.Gray, error) {
	if i < 0 || i >= g.Len() {
		return nil, nil, fmt.Errorf("sbi: sample %d out of range [0, %d)", i, g.Len())
	}
	k := g.faceOf(i)
	img, err := media.DecodeImage(g.faces[k])
	if err != nil {
		return nil, nil, fmt.Errorf("sbi: %w", err)
	}
	if g.Label(i) == 0 {
		return img, nil, nil
	}
	lm, err := g.landmarks(k, img)
	if err != nil {
		return nil, nil, err
	}
	out, mask, err := Blend(img, *lm, rng, g.opts.Blend)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", g.faces[k], err)
	}
	return out, mask, nil
}

// landmarks returns the landmarks of face k, detecting and caching them on
// first use.
func (g *Generator) landmarks(k int, img *image.RGBA) (*[face.NumLandmarks][2]float32, error) {
	g.mu.Lock()
	lm, none := g.lms[k], g.noFace[k]
	g.mu.Unlock()
	if lm != nil {
		return lm, nil
	}
	if none {
		return nil, fmt.Errorf("sbi: %s: no face found (cached)", g.faces[k])
	}
	det, err := g.detector()
	if err != nil {
		return nil, err
	}
	faces, err := det.Detect(img)
	if err == nil && len(faces) == 0 {
		faces, err = detectPadded(det, img)
	}
	if err != nil {
		return nil, fmt.Errorf("sbi: detect landmarks in %s: %w", g.faces[k], err)
	}
	line := cacheLine{Image: g.rel[k], Padded: true}
	if st, err := os.Stat(g.faces[k]); err == nil {
		line.Size, line.ModTime = st.Size(), st.ModTime().UnixNano()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(faces) == 0 {
		g.noFace[k] = true
		line.NoFace = true
		g.appendCache(line)
		return nil, fmt.Errorf("sbi: %s: no face found", g.faces[k])
	}
	lm = new([face.NumLandmarks][2]float32)
	*lm = faces[0].Landmarks
	g.lms[k] = lm
	line.Landmarks = lm[:]
	g.appendCache(line)
	return lm, nil
}

// TightPad is the border, as a fraction of the image's longer side, added
// on every side of a face crop in which the detector found no face: crops
// cut tight around the face (DFDC's) fill the picture more than the faces
// the detector was trained on, and it finds them once they fill a third of
// the frame. On the first 200 DFDC real crops: 37 without a face found
// unpadded, 34 with a border of 0.3, 22 with 0.6, 8 with 1.0.
const TightPad = 1.0

// detectPadded looks for faces in img framed by a mid-grey border of
// TightPad on every side, and returns them in img's coordinates.
func detectPadded(det FaceDetector, img *image.RGBA) ([]face.Face, error) {
	b := img.Bounds()
	p := int(TightPad * float64(max(b.Dx(), b.Dy())))
	padded := image.NewRGBA(image.Rect(0, 0, b.Dx()+2*p, b.Dy()+2*p))
	for i := range padded.Pix {
		padded.Pix[i] = 128
		if i%4 == 3 {
			padded.Pix[i] = 255
		}
	}
	draw.Draw(padded, image.Rect(p, p, p+b.Dx(), p+b.Dy()), img, b.Min, draw.Src)
	faces, err := det.Detect(padded)
	if err != nil {
		return nil, err
	}
	for i := range faces {
		for j := range faces[i].Landmarks {
			faces[i].Landmarks[j][0] -= float32(p - b.Min.X)
			faces[i].Landmarks[j][1] -= float32(p - b.Min.Y)
		}

		dx, dy := float32(p-b.Min.X), float32(p-b.Min.Y)
		bx := &faces[i].Box
		bx.X0, bx.X1, bx.Y0, bx.Y1 = bx.X0-dx, bx.X1-dx, bx.Y0-dy, bx.Y1-dy
	}
	return faces, nil
}

// appendCache writes one cache line (g.mu held), opening the cache file on
// first use. A failing cache is dropped: the landmarks stay in memory.
func (g *Generator) appendCache(l cacheLine) {
	if g.cachePathName == "" || g.cacheErr != nil {
		return
	}
	if g.cache == nil {
		if err := os.MkdirAll(filepath.Dir(g.cachePathName), 0o755); err != nil {
			g.cacheErr = err
			return
		}
		f, err := os.OpenFile(g.cachePathName, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			g.cacheErr = err
			return
		}
		if g.cacheTorn { // end the torn line so that ours starts afresh
			if _, err := f.Write([]byte("\n")); err != nil {
				f.Close()
				g.cacheErr = err
				return
			}
		}
		g.cache = f
	}
	b, err := json.Marshal(l)
	if err == nil {
		_, err = g.cache.Write(append(b, '\n'))
	}
	if err != nil {
		g.cacheErr = err
		g.cache.Close()
		g.cache = nil
	}
}

// detector returns the face detector, loading the default one on first use.
func (g *Generator) detector() (FaceDetector, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.det != nil {
		return g.det, nil
	}
	if g.detErr != nil {
		return nil, g.detErr
	}
	dir := g.opts.ModelDir
	if dir == "" {
		dir = face.DefaultModelDir()
	}
	d, err := face.NewDetector(dir, face.TightOptions())
	if err != nil {
		g.detErr = fmt.Errorf("sbi: faces in %s have no landmarks and the detector cannot be loaded: %w", g.dir, err)
		return nil, g.detErr
	}
	g.det, g.ownDet = d, d
	return d, nil
}

// Close closes the landmark cache and the detector the generator loaded.
func (g *Generator) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	if g.cache != nil {
		if err := g.cache.Close(); err != nil {
			errs = append(errs, fmt.Errorf("sbi: close landmark cache: %w", err))
		}
		g.cache = nil
	}
	if g.ownDet != nil {
		if err := g.ownDet.Close(); err != nil {
			errs = append(errs, err)
		}
		g.ownDet, g.det = nil, nil
	}
	return errors.Join(errs...)
}

// ParseSpec reads a training data spec "sbi:DIR[?reals=1&hulls=face,dfl&
// ratios=0.5,1&cache=FILE&subset=train|val&holdout=0.15&limit=N]" into the folder and generator options.
func ParseSpec(spec string) (dir string, o GeneratorOptions, err error) {
	rest, ok := strings.CutPrefix(spec, "sbi:")
	if !ok {
		return "", o, fmt.Errorf("sbi spec %q: want the form sbi:DIR", spec)
	}
	dir = rest
	if i := strings.LastIndexByte(rest, '?'); i >= 0 {
		dir = rest[:i]
		q, err := url.ParseQuery(rest[i+1:])
		if err != nil {
			return "", o, fmt.Errorf("sbi spec %q: %w", spec, err)
		}
		for k, vs := range q {
			v := vs[len(vs)-1]
			switch k {
			case "reals":
				if o.Reals, err = strconv.ParseBool(v); err != nil {
					return "", o, fmt.Errorf("sbi spec %q: reals=%q is not a boolean", spec, v)
				}
			case "hulls":
				for _, s := range strings.Split(v, ",") {
					h, err := ParseHull(s)
					if err != nil {
						return "", o, fmt.Errorf("sbi spec %q: %w", spec, err)
					}
					o.Blend.Hulls = append(o.Blend.Hulls, h)
				}
			case "ratios":
				for _, s := range strings.Split(v, ",") {
					r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
					if err != nil {
						return "", o, fmt.Errorf("sbi spec %q: ratio %q is not a number", spec, s)
					}
					o.Blend.BlendRatios = append(o.Blend.BlendRatios, r)
				}
			case "cache":
				o.Cache = v
			case "subset":
				if v != "train" && v != "val" && v != "all" {
					return "", o, fmt.Errorf("sbi spec %q: subset=%q (want train, val or all)", spec, v)
				}
				if v != "all" {
					o.Subset = v
				}
			case "holdout":
				if o.Holdout, err = strconv.ParseFloat(v, 64); err != nil || o.Holdout <= 0 || o.Holdout >= 1 {
					return "", o, fmt.Errorf("sbi spec %q: holdout=%q is not a fraction in (0, 1)", spec, v)
				}
			case "limit":
				if o.Limit, err = strconv.Atoi(v); err != nil || o.Limit < 1 {
					return "", o, fmt.Errorf("sbi spec %q: limit=%q is not a positive integer", spec, v)
				}
			default:
				return "", o, fmt.Errorf("sbi spec %q: unknown parameter %q (known: reals, hulls, ratios, cache, subset, holdout, limit)", spec, k)
			}
		}
	}
	if dir == "" {
		return "", o, fmt.Errorf("sbi spec %q: no folder", spec)
	}
	if _, err := o.Blend.resolved(); err != nil {
		return "", o, fmt.Errorf("sbi spec %q: %w", spec, err)
	}
	return dir, o, nil
}

// CacheErr returns why detected landmarks are not being cached, or nil.
func (g *Generator) CacheErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cacheErr
}
