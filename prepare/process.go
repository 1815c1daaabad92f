package prepare

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/lvnet-go/lvnet/data"
	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
)

// processor turns jobs into crops. It is safe for concurrent use.
type processor struct {
	o       Options
	det     Detector
	tmpRoot string
}

// result is a finished job, ready to be committed to the index.
type result struct {
	key      string
	entries  []data.IndexEntry
	frames   int   // frames decoded
	noMask   int   // fake faces left out: empty mask
	failed   error // the input is damaged (frames before the damage are kept)
	warnings []string
}

// inputError reports whether err is the input's fault (unreadable,
// corrupt, not a video or image, too large) rather than the machine's.
func inputError(err error) bool {
	for _, e := range []error{media.ErrEmpty, media.ErrNotImage, media.ErrNotVideo, media.ErrTruncated, media.ErrCorrupt, media.ErrTooLarge} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// frame is one decoded picture of a job.
type frame struct {
	idx int
	img *image.RGBA
}

// source yields the frames of a job: io.EOF after the last.
type source interface {
	next() (frame, error)
	close()
}

type videoSource struct{ v *media.Video }

func (s *videoSource) next() (frame, error) {
	f, err := s.v.Next()
	return frame{f.Index, f.Img}, err
}
func (s *videoSource) close() { s.v.Close() }

type imageSource struct {
	img  *image.RGBA
	done bool
}

func (s *imageSource) next() (frame, error) {
	if s.done {
		return frame{}, io.EOF
	}
	s.done = true
	return frame{0, s.img}, nil
}
func (s *imageSource) close() {}

// maskSource gives the mask frame of a frame index (nil, nil: none).
type maskSource interface {
	at(idx int) (*image.Gray, error)
	close()
}

// videoMask reads a mask video in step with the frames asked for.
type videoMask struct {
	v    *media.Video
	cur  media.Frame
	have bool
	err  error
}

func (m *videoMask) at(idx int) (*image.Gray, error) {
	for m.err == nil && (!m.have || m.cur.Index < idx) {
		f, err := m.v.Next()
		if err != nil {
			m.err = err
			break
		}
		m.cur, m.have = f, true
	}
	if m.have && m.cur.Index == idx {
		return toGray(m.cur.Img), nil
	}
	if m.err != nil && m.err != io.EOF {
		return nil, m.err
	}
	return nil, nil
}
func (m *videoMask) close() { m.v.Close() }

// staticMask is one mask image for every frame.
type staticMask struct{ g *image.Gray }

func (m staticMask) at(int) (*image.Gray, error) { return m.g, nil }
func (m staticMask) close()                      {}

// open starts reading the frames of j.
func (p *processor) open(j job) (source, error) {
	if !j.video {
		img, err := media.DecodeImage(j.src)
		if err != nil {
			return nil, err
		}
		return &imageSource{img: img}, nil
	}
	v, err := media.OpenVideo(j.src, media.VideoOptions{Every: p.o.Every, Count: p.o.Frames})
	if err != nil {
		return nil, err
	}
	return &videoSource{v: v}, nil
}

// openMask opens the mask of j. A mask video is sampled like the video;
// when spreading Frames over videos of different lengths the mask video is
// read whole so that the same frame numbers are found.
func (p *processor) openMask(j job, src source) (maskSource, error) {
	if !media.IsVideo(j.mask) {
		img, err := media.DecodeImage(j.mask)
		if err != nil {
			return nil, err
		}
		return staticMask{toGray(img)}, nil
	}
	opts := media.VideoOptions{Every: p.o.Every, Count: p.o.Frames}
	if !j.video {
		opts = media.VideoOptions{Count: 1}
	}
	v, err := media.OpenVideo(j.mask, opts)
	if err != nil {
		return nil, err
	}
	if vs, ok := src.(*videoSource); ok && p.o.Frames > 0 && vs.v.Info.Frames != v.Info.Frames {
		v.Close()
		if v, err = media.OpenVideo(j.mask, media.VideoOptions{}); err != nil {
			return nil, err
		}
	}
	return &videoMask{v: v}, nil
}

// cropRec is one face crop written to the job's temporary folder.
type cropRec struct {
	frame, track     int
	lm               [face.NumLandmarks][2]float32
	area             float64 // face box area in frame pixels
	img, mask, panel string  // temporary files ("" none)
}

// process detects, crops and writes the faces of one job, then moves the
// kept crops into place. It returns an error only for failures that stop
// the run (the machine's, or ctx ending); damaged inputs give a result
// with failed set.
func (p *processor) process(ctx context.Context, j job) (result, error) {
	r := result{key: j.key}
	sum := sha256.Sum256([]byte(j.key))
	tmp := filepath.Join(p.tmpRoot, hex.EncodeToString(sum[:10]))
	if err := os.RemoveAll(tmp); err != nil {
		return r, fmt.Errorf("prepare: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return r, fmt.Errorf("prepare: %w", err)
	}
	defer os.RemoveAll(tmp)

	src, err := p.open(j)
	if err != nil {
		if inputError(err) {
			r.failed = err
			return r, p.place(j, &r, nil)
		}
		return r, fmt.Errorf("prepare %s: %w", j.src, err)
	}
	defer src.close()
	var masks maskSource
	if j.mask != "" && j.label == 1 {
		if masks, err = p.openMask(j, src); err != nil {
			if !inputError(err) {
				return r, fmt.Errorf("prepare %s: mask: %w", j.src, err)
			}
			r.warnings = append(r.warnings, fmt.Sprintf("%s: mask unusable, crops kept without masks: %v", j.src, err))
			masks = nil
		} else {
			defer masks.close()
		}
	}

	copts := face.CropOptions{Scale: p.o.Scale, Size: p.o.Size, Clamp: p.o.Clamp}
	tracker := face.NewTracker(face.TrackerOptions{MaxGap: 5})
	var crops []cropRec
	batch := make([]frame, 0, p.o.BatchFrames)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		imgs := make([]*image.RGBA, len(batch))
		for i, f := range batch {
			imgs[i] = f.img
		}
		found, err := p.det.DetectBatch(imgs)
		if err != nil {
			return fmt.Errorf("prepare %s: detect faces: %w", j.src, err)
		}
		for k, fr := range batch {
			faces := found[k][:0:0]
			for _, f := range found[k] {
				if f.Box.W() >= p.o.MinFace && f.Box.H() >= p.o.MinFace {
					faces = append(faces, f)
				}
			}
			tracker.Update(faces)
			var mframe *image.Gray
			if masks != nil {
				if mframe, err = masks.at(fr.idx); err != nil {
					r.warnings = append(r.warnings, fmt.Sprintf("%s: mask video damaged, later crops kept without masks: %v", j.src, err))
					masks.close()
					masks, mframe = nil, nil
				}
			}
			for _, f := range faces {
				rec, ok, err := p.writeCrop(tmp, j, fr, f, mframe, copts)
				if err != nil {
					return err
				}
				if !ok {
					r.noMask++
					continue
				}
				crops = append(crops, rec)
			}
		}
		batch = batch[:0]
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return r, err
		}
		fr, err := src.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			r.failed = err // keep the frames before the damage
			break
		}
		r.frames++
		batch = append(batch, fr)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return r, err
			}
		}
	}
	if err := flush(); err != nil {
		return r, err
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	return r, p.place(j, &r, p.chooseTracks(crops))
}

// chooseTracks keeps every crop with AllFaces, else those of the track
// whose face boxes cover the most frame area summed over the video (the
// main subject: large and present throughout).
func (p *processor) chooseTracks(crops []cropRec) []cropRec {
	if p.o.AllFaces || len(crops) == 0 {
		return crops
	}
	weight := map[int]float64{}
	for _, c := range crops {
		weight[c.track] += c.area
	}
	best, bw := -1, -1.0
	for t, w := range weight {
		if w > bw || (w == bw && t < best) {
			best, bw = t, w
		}
	}
	var out []cropRec
	for _, c := range crops {
		if c.track == best {
			out = append(out, c)
		}
	}
	return out
}

// writeCrop cuts face f out of frame fr (and its mask frame, when there is
// one) into the job's temporary folder. ok is false when the face is left
// out: a fake whose mask is empty there.
func (p *processor) writeCrop(tmp string, j job, fr frame, f face.Face, mframe *image.Gray, copts face.CropOptions) (rec cropRec, ok bool, err error) {
	crop, lm, box := face.Crop(fr.img, f, copts)
	rec = cropRec{frame: fr.idx, track: f.TrackID, lm: lm, area: float64(f.Box.Area())}
	var mc *image.Gray
	if mframe != nil {
		mc = face.CropMask(mframe, scaleBox(box, fr.img.Rect, mframe.Rect), p.o.Size)
		if !binarize(mc, uint8(p.o.MaskThreshold)) {
			return rec, false, nil
		}
	}
	base := filepath.Join(tmp, fmt.Sprintf("t%d_%06d", f.TrackID, fr.idx))
	rec.img = base + ".png"
	if err := writePNG(rec.img, crop); err != nil {
		return rec, false, err
	}
	if mc != nil {
		rec.mask = base + "_mask.png"
		if err := writePNG(rec.mask, mc); err != nil {
			return rec, false, err
		}
	}
	if j.panel != "" {
		rec.panel = base + "_panel.png"
		if err := writePNG(rec.panel, panel(crop, mc)); err != nil {
			return rec, false, err
		}
	}
	return rec, true, nil
}

// place moves the kept crops of job j into the output folders (replacing
// what an interrupted run may have left there) and fills r.entries.
func (p *processor) place(j job, r *result, crops []cropRec) error {
	labelDir := "real"
	if j.label == 1 {
		labelDir = "fake"
	}
	imgDir := filepath.Join(p.o.Out, labelDir, filepath.FromSlash(j.key))
	maskDir := filepath.Join(p.o.Out, "masks", filepath.FromSlash(j.key))
	dirs := []string{imgDir, maskDir}
	var panelDir string
	if j.panel != "" {
		panelDir = filepath.Join(p.o.Out, filepath.FromSlash(j.panel))
		dirs = append(dirs, panelDir)
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
	}
	sort.Slice(crops, func(a, b int) bool {
		if crops[a].frame != crops[b].frame {
			return crops[a].frame < crops[b].frame
		}
		return crops[a].track < crops[b].track
	})
	move := func(from, dir, rel string) error {
		to := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		if err := os.Rename(from, to); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		return nil
	}
	for _, c := range crops {
		rel := fmt.Sprintf("%04d.png", c.frame)
		video := j.key
		if p.o.AllFaces {
			rel = fmt.Sprintf("face%d/%04d.png", c.track, c.frame)
			video = fmt.Sprintf("%s/face%d", j.key, c.track)
		}
		e := data.IndexEntry{
			Image:     labelDir + "/" + j.key + "/" + rel,
			Landmarks: append([][2]float32(nil), c.lm[:]...),
			Label:     j.label,
			Video:     video,
			Frame:     c.frame,
			Method:    j.method,
		}
		if err := move(c.img, imgDir, rel); err != nil {
			return err
		}
		if c.mask != "" {
			if err := move(c.mask, maskDir, rel); err != nil {
				return err
			}
			e.Mask = "masks/" + j.key + "/" + rel
		}
		if c.panel != "" {
			if err := move(c.panel, panelDir, rel); err != nil {
				return err
			}
		}
		r.entries = append(r.entries, e)
	}
	return nil
}

// scaleBox maps a box in a frame of bounds from into a mask frame of
// bounds to (the same picture at another size).
func scaleBox(b face.Box, from, to image.Rectangle) face.Box {
	if from.Size() == to.Size() {
		return b
	}
	sx := float32(to.Dx()) / float32(from.Dx())
	sy := float32(to.Dy()) / float32(from.Dy())
	return face.Box{X0: b.X0 * sx, Y0: b.Y0 * sy, X1: b.X1 * sx, Y1: b.Y1 * sy}
}

// toGray converts a mask frame to luma (OpenCV's RGB2GRAY weights).
func toGray(img *image.RGBA) *image.Gray {
	r := img.Rect
	g := image.NewGray(image.Rect(0, 0, r.Dx(), r.Dy()))
	for y := 0; y < r.Dy(); y++ {
		row := img.Pix[y*img.Stride:]
		out := g.Pix[y*g.Stride:]
		for x := 0; x < r.Dx(); x++ {
			rr, gg, bb := uint32(row[4*x]), uint32(row[4*x+1]), uint32(row[4*x+2])
			out[x] = uint8((rr*4899 + gg*9617 + bb*1868 + 8192) >> 14)
		}
	}
	return g
}

// binarize sets mask values above thr to 255 and the others to 0, and
// reports whether any pixel is set.
func binarize(m *image.Gray, thr uint8) bool {
	set := false
	for i, v := range m.Pix {
		if v > thr {
			m.Pix[i] = 255
			set = true
		} else {
			m.Pix[i] = 0
		}
	}
	return set
}

// panel lays out the authors' 3-panel frame: face | mask | mask, the mask
// panels black when there is no mask.
func panel(crop *image.RGBA, mask *image.Gray) *image.RGBA {
	s := crop.Rect.Dx()
	out := image.NewRGBA(image.Rect(0, 0, 3*s, s))
	for y := 0; y < s; y++ {
		row := out.Pix[y*out.Stride:]
		copy(row[:4*s], crop.Pix[y*crop.Stride:y*crop.Stride+4*s])
		for x := s; x < 3*s; x++ {
			var v uint8
			if mask != nil {
				v = mask.Pix[y*mask.Stride+x%s]
			}
			row[4*x], row[4*x+1], row[4*x+2], row[4*x+3] = v, v, v, 255
		}
	}
	return out
}

// writePNG encodes img into a new file (in a temporary folder: the file
// is moved into place whole).
func writePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(w, img); err != nil {
		f.Close()
		return fmt.Errorf("prepare: write %s: %w", path, err)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("prepare: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("prepare: write %s: %w", path, err)
	}
	return nil
}
