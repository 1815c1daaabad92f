package face

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"sync"

	"github.com/lvnet-go/lvnet/torch"
)

// Detector finds faces and their landmarks. Detect and DetectBatch are safe
// for concurrent use; Close frees the weights and must come after them.
type Detector struct {
	opts Options
	ssd  *ssdNet
	lm   *landmarkNet
	// nchw feeds the nets contiguous NCHW tensors instead of channels-last
	// ones (for the benchmark that compares the layouts).
	nchw bool
	// bufs recycles the network input buffers (megabytes per frame).
	bufs sync.Pool
}

// buffer returns a recycled float32 buffer of length n (put it back with
// d.bufs.Put).
func (d *Detector) buffer(n int) *[]float32 {
	if p, ok := d.bufs.Get().(*[]float32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]float32, n)
	return &b
}

// NewDetector loads the detector and landmark models from modelDir (see
// DefaultModelDir and scripts/fetch-face-models.sh).
func NewDetector(modelDir string, opts Options) (*Detector, error) {
	opts = opts.withDefaults()
	passes := append([]Pass{{opts.InputSize, opts.Pad}}, opts.Retry...)
	for i, p := range passes {
		if p.InputSize == 0 {
			p.InputSize = opts.InputSize
		}
		if p.InputSize%32 != 0 || p.InputSize < 128 || p.InputSize > 1024 {
			return nil, fmt.Errorf("face: pass %d: InputSize %d: want a multiple of 32 from 128 to 1024", i, p.InputSize)
		}
		if p.Pad < 0 || p.Pad > 2 {
			return nil, fmt.Errorf("face: pass %d: Pad %g: want a fraction from 0 to 2", i, p.Pad)
		}
	}
	if opts.MinScore >= 1 {
		return nil, fmt.Errorf("face: MinScore %g: want a value below 1", opts.MinScore)
	}
	ssd, err := loadSSD(modelDir)
	if err != nil {
		return nil, err
	}
	d := &Detector{opts: opts, ssd: ssd}
	if !opts.NoLandmarks {
		if d.lm, err = loadLandmarkNet(modelDir); err != nil {
			ssd.free()
			return nil, err
		}
	}
	return d, nil
}

// Options returns the options in use, defaults filled in.
func (d *Detector) Options() Options { return d.opts }

// Close frees the model weights. The detector must not be used afterwards.
func (d *Detector) Close() error {
	if d.ssd != nil {
		d.ssd.free()
		d.ssd = nil
	}
	if d.lm != nil {
		d.lm.free()
		d.lm = nil
	}
	return nil
}

// errClosed is returned by a closed detector.
var errClosed = errors.New("face: detector is closed")

// Detect returns the faces of img, largest first.
func (d *Detector) Detect(img *image.RGBA) ([]Face, error) {
	res, err := d.DetectBatch([]*image.RGBA{img})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// DetectBatch detects faces in several images (e.g. video frames), running
// images of the same size through the detector as one batch and all the
// faces found through the landmark net as one batch.
func (d *Detector) DetectBatch(imgs []*image.RGBA) ([][]Face, error) {
	if d.ssd == nil {
		return nil, errClosed
	}
	for i, img := range imgs {
		if img == nil || img.Rect.Empty() {
			return nil, fmt.Errorf("face: image %d is empty", i)
		}
	}
	out := make([][]Face, len(imgs))
	// Group images by size.
	groups := map[image.Point][]int{}
	var order []image.Point
	for i, img := range imgs {
		sz := img.Rect.Size()
		if _, ok := groups[sz]; !ok {
			order = append(order, sz)
		}
		groups[sz] = append(groups[sz], i)
	}
	for _, sz := range order {
		idx := groups[sz]
		batch := make([]*image.RGBA, len(idx))
		for k, i := range idx {
			batch[k] = imgs[i]
		}
		res, err := d.detectBoxes(batch, Pass{d.opts.InputSize, d.opts.Pad})
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			out[i] = res[k]
		}
	}
	for _, p := range d.opts.Retry {
		if p.InputSize == 0 {
			p.InputSize = d.opts.InputSize
		}
		if p == (Pass{d.opts.InputSize, d.opts.Pad}) {
			continue // the first pass again
		}
		for i, img := range imgs {
			if len(out[i]) > 0 {
				continue
			}
			res, err := d.detectBoxes([]*image.RGBA{img}, p)
			if err != nil {
				return nil, err
			}
			out[i] = res[0]
		}
	}
	if d.lm != nil {
		if err := d.landmarks(imgs, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// geometry is where the image sits in the detector input.
type geometry struct {
	s          sampler
	origin     [2]float64 // image coordinates of input pixel (0, 0)
	scale      float64    // image pixels per input pixel
	hIn, wIn   int        // input size
	imgW, imgH int
	padX, padY int // border, image pixels
}

// detectGeometry lays an image of size w x h, with the border of pass p,
// into the detector input.
func (d *Detector) detectGeometry(w, h int, p Pass) geometry {
	px := int(math.Round(float64(p.Pad) * float64(w)))
	py := int(math.Round(float64(p.Pad) * float64(h)))
	cw, ch := w+2*px, h+2*py
	side := max(cw, ch)
	s := p.InputSize
	scale := float64(side) / float64(s)
	fit := func(c int) int {
		if d.opts.SquareInput || c == side {
			return s
		}
		n := int(math.Ceil(float64(c) / scale))
		n = (n + 31) / 32 * 32
		return min(n, s)
	}
	g := geometry{scale: scale, hIn: fit(ch), wIn: fit(cw), imgW: w, imgH: h, padX: px, padY: py}
	g.origin = [2]float64{float64(-px), float64(-py)}
	g.s = sampler{
		Valid:  image.Rect(0, 0, w, h),
		Origin: image.Pt(-px, -py),
		Side:   side,
		Scale:  scale,
		W:      g.wIn, H: g.hIn,
		Mul: 1 / 127.5, Add: [3]float32{-1, -1, -1},
	}
	return g
}

// detectBoxes runs the detector on same-size images.
func (d *Detector) detectBoxes(imgs []*image.RGBA, p Pass) ([][]Face, error) {
	b := imgs[0].Rect.Size()
	g := d.detectGeometry(b.X, b.Y, p)
	plane := 3 * g.hIn * g.wIn
	bp := d.buffer(len(imgs) * plane)
	defer d.bufs.Put(bp)
	buf := *bp
	for i, img := range imgs {
		s := g.s
		s.Valid = s.Valid.Add(img.Rect.Min)
		s.Origin = s.Origin.Add(img.Rect.Min)
		s.Planar = d.nchw
		s.fill(img, buf[i*plane:(i+1)*plane])
	}
	var loc, cls []float32
	err := torch.InferenceMode(func() error {
		sc := torch.NewScope()
		defer sc.Close()
		x := d.input(sc, buf, len(imgs), g.hIn, g.wIn)
		var err error
		loc, cls, err = d.ssd.forward(x)
		return err
	})
	if err != nil {
		return nil, err
	}
	anchors := ssdAnchors(g.hIn, g.wIn)
	nA := len(anchors) / 4
	if len(loc) != len(imgs)*nA*4 {
		return nil, fmt.Errorf("face detector: %d box encodings for %d anchors", len(loc)/4, nA*len(imgs))
	}
	out := make([][]Face, len(imgs))
	for i := range imgs {
		out[i] = d.decode(loc[i*nA*4:(i+1)*nA*4], cls[i*nA*3:(i+1)*nA*3], anchors, g)
	}
	return out, nil
}

// decode turns the raw outputs for one image into faces in image
// coordinates: threshold, box decoding, face-api's non-maximum suppression
// (IoU 0.5), minimum size, largest first.
func (d *Detector) decode(loc, cls, anchors []float32, g geometry) []Face {
	type cand struct {
		score float32
		box   Box // input pixels
	}
	var cands []cand
	thr := float64(d.opts.MinScore)
	for a := 0; a < len(anchors)/4; a++ {
		score := 1 / (1 + math.Exp(-float64(cls[a*3+1])))
		if score <= thr {
			continue
		}
		cy, cx, ha, wa := float64(anchors[a*4]), float64(anchors[a*4+1]), float64(anchors[a*4+2]), float64(anchors[a*4+3])
		e := loc[a*4 : a*4+4]
		yc := float64(e[0])/10*ha + cy
		xc := float64(e[1])/10*wa + cx
		hh := math.Exp(float64(e[2])/5) * ha / 2
		hw := math.Exp(float64(e[3])/5) * wa / 2
		cands = append(cands, cand{float32(score), Box{float32(xc - hw), float32(yc - hh), float32(xc + hw), float32(yc + hh)}})
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	var kept []cand
	for _, c := range cands {
		if len(kept) >= 100 {
			break
		}
		ok := true
		for j := len(kept) - 1; j >= 0; j-- {
			if c.box.IoU(kept[j].box) > 0.5 {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	var faces []Face
	for _, c := range kept {
		sc := float32(g.scale)
		ox, oy := float32(g.origin[0]), float32(g.origin[1])
		b := Box{c.box.X0*sc + ox, c.box.Y0*sc + oy, c.box.X1*sc + ox, c.box.Y1*sc + oy}
		// Keep the part of the box over the padded canvas, as face-api
		// clips to its input square.
		b.X0 = max(b.X0, ox)
		b.Y0 = max(b.Y0, oy)
		b.X1 = min(b.X1, float32(g.imgW+g.padX))
		b.Y1 = min(b.Y1, float32(g.imgH+g.padY))
		if b.W() < d.opts.MinSize || b.H() < d.opts.MinSize || b.Area() <= 0 {
			continue
		}
		// A face must overlap the image.
		if b.X1 <= 0 || b.Y1 <= 0 || b.X0 >= float32(g.imgW) || b.Y0 >= float32(g.imgH) {
			continue
		}
		faces = append(faces, Face{Box: b, Score: c.score})
	}
	sort.SliceStable(faces, func(i, j int) bool { return faces[i].Box.Area() > faces[j].Box.Area() })
	if len(faces) > d.opts.MaxFaces {
		faces = faces[:d.opts.MaxFaces]
	}
	return faces
}

// input wraps n samples of h x w x 3 values as an (n, 3, h, w) tensor:
// channels-last (the data is interleaved; the layout oneDNN's convolutions
// prefer on the CPU) or contiguous when d.nchw.
func (d *Detector) input(s *torch.Scope, buf []float32, n, h, w int) *torch.Tensor {
	if d.nchw {
		return torch.FromSlice(s, buf, int64(n), 3, int64(h), int64(w))
	}
	return torch.FromSlice(s, buf, int64(n), int64(h), int64(w), 3).Permute(0, 3, 1, 2)
}

// landmarkRegion is face-api's crop for the landmark net: the box clipped at
// the image borders, corners floored.
func landmarkRegion(b Box, w, h int) image.Rectangle {
	x := math.Max(float64(b.X0), 0)
	y := math.Max(float64(b.Y0), 0)
	cw := math.Min(float64(b.X1)-x, float64(w)-x)
	ch := math.Min(float64(b.Y1)-y, float64(h)-y)
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	return image.Rect(x0, y0, x0+int(math.Floor(cw)), y0+int(math.Floor(ch)))
}

// landmarks fills in the landmarks of every face in faces (per image), in
// one batch.
func (d *Detector) landmarks(imgs []*image.RGBA, faces [][]Face) error {
	type ref struct{ img, face int }
	var refs []ref
	var regions []image.Rectangle
	for i := range faces {
		keep := faces[i][:0]
		for _, f := range faces[i] {
			sz := imgs[i].Rect.Size()
			r := landmarkRegion(f.Box, sz.X, sz.Y)
			if r.Dx() <= 0 || r.Dy() <= 0 {
				continue // nothing of the face inside the image
			}
			keep = append(keep, f)
			refs = append(refs, ref{i, len(keep) - 1})
			regions = append(regions, r)
		}
		faces[i] = keep
	}
	if len(refs) == 0 {
		return nil
	}
	const n = landmarkSize
	plane := 3 * n * n
	bp := d.buffer(len(refs) * plane)
	defer d.bufs.Put(bp)
	buf := *bp
	for k, rf := range refs {
		img := imgs[rf.img]
		r := regions[k]
		side := max(r.Dx(), r.Dy())
		diff := r.Dx() - r.Dy()
		ox, oy := 0, 0
		if diff < 0 { // taller than wide: pad left and right
			after := int(math.Round(float64(-diff) * 0.5))
			ox = -diff - after
		} else if diff > 0 {
			after := int(math.Round(float64(diff) * 0.5))
			oy = diff - after
		}
		s := sampler{
			Valid:  r.Add(img.Rect.Min),
			Origin: image.Pt(r.Min.X-ox, r.Min.Y-oy).Add(img.Rect.Min),
			Side:   side,
			Scale:  float64(side) / n,
			W:      n, H: n,
			Mul: 1.0 / 255, Add: [3]float32{-meanR / 255, -meanG / 255, -meanB / 255},
		}
		s.Planar = d.nchw
		s.fill(img, buf[k*plane:(k+1)*plane])
	}
	var raw []float32
	err := torch.InferenceMode(func() error {
		sc := torch.NewScope()
		defer sc.Close()
		x := d.input(sc, buf, len(refs), n, n)
		var err error
		raw, err = torch.Data[float32](d.lm.forward(x))
		return err
	})
	if err != nil {
		return fmt.Errorf("face landmarks: %w", err)
	}
	for k, rf := range refs {
		r := regions[k]
		w, h := float64(r.Dx()), float64(r.Dy())
		sc := n / math.Max(w, h)
		iw, ih := w*sc, h*sc
		var padX, padY float64
		if iw < ih {
			padX = (ih - iw) / 2
		} else if ih < iw {
			padY = (iw - ih) / 2
		}
		f := &faces[rf.img][rf.face]
		o := raw[k*2*NumLandmarks : (k+1)*2*NumLandmarks]
		for p := 0; p < NumLandmarks; p++ {
			rx := (float64(o[2*p])*n - padX) / iw
			ry := (float64(o[2*p+1])*n - padY) / ih
			f.Landmarks[p] = [2]float32{float32(rx*w + float64(r.Min.X)), float32(ry*h + float64(r.Min.Y))}
		}
	}
	return nil
}
