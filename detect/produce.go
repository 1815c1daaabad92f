package detect

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/torch"
)

// produce reads input i, sends its frames with their faces cut out, then
// its end. It runs in a producer goroutine.
func (r *run) produce(ctx context.Context, i int) {
	d := &doneMsg{in: i}
	r.read(ctx, i, d)
	r.send(msg{done: d})
}

// read decodes input i as a photo or a video and sends its frames; what
// went wrong goes into d.
func (r *run) read(ctx context.Context, i int, d *doneMsg) {
	in := r.ins[i]
	lim := r.p.opts.Limits
	if in.Data == nil {
		var pe *fs.PathError
		if _, err := os.Stat(in.Path); errors.As(err, &pe) && in.Path != "" {
			d.err = fmt.Errorf("cannot open: %w", pe.Err)
			return
		}
		switch {
		case in.Path == "":
			d.err = errors.New("input has neither a path nor data")
		case media.IsVideo(in.Path):
			r.video(ctx, i, in.Path, d)
		default:
			img, err := lim.DecodeImage(in.Path)
			if err != nil {
				if in.Name != "" { // errors name the file, the user knows the input as Name
					err = renamed(err, filepath.Base(in.Path), in.Name)
				}
				d.err = err
				return
			}
			r.photo(i, img, d)
		}
		return
	}
	maxBytes := lim.MaxBytes
	if maxBytes == 0 {
		maxBytes = media.DefaultLimits().MaxBytes
	}
	rd := in.Data
	if maxBytes > 0 {
		rd = io.LimitReader(rd, maxBytes+1)
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		d.err = fmt.Errorf("read: %w", err)
		return
	}
	if maxBytes > 0 && int64(len(b)) > maxBytes {
		d.err = fmt.Errorf("%w: more than %d bytes", media.ErrTooLarge, maxBytes)
		return
	}
	img, err := lim.DecodeImageBytes(b, in.name())
	if errors.Is(err, media.ErrNotImage) {
		// Perhaps a video: ffmpeg reads files, so spool it to one.
		if path, ok := spoolVideo(b, in.name()); ok {
			defer os.Remove(path)
			r.video(ctx, i, path, d)
			return
		}
	}
	if err != nil {
		d.err = err
		return
	}
	r.photo(i, img, d)
}

// spoolVideo writes b to a temporary file (with the extension of name) and
// returns its path when media takes it for a video.
func spoolVideo(b []byte, name string) (string, bool) {
	ext := strings.ToLower(filepath.Ext(name))
	if len(ext) > 8 || strings.ContainsAny(ext, `/\*`) {
		ext = ""
	}
	f, err := os.CreateTemp("", "lvnet-input-*"+ext)
	if err != nil {
		return "", false
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || !media.IsVideo(f.Name()) {
		os.Remove(f.Name())
		return "", false
	}
	return f.Name(), true
}

// renamedError is an error whose message names the input differently
// (the input's name instead of a temporary file's); it unwraps to the
// original.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// renamed replaces from by to in err's message.
func renamed(err error, from, to string) error {
	if err == nil || from == "" || from == to {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), from, to)
	if msg == err.Error() {
		return err
	}
	return &renamedError{msg: msg, err: err}
}

// photo finds the faces of a picture and sends them (an aligned crop is one
// face: the whole picture).
func (r *run) photo(i int, img *image.RGBA, d *doneMsg) {
	b := img.Bounds()
	d.w, d.h = b.Dx(), b.Dy()
	if r.opts.Aligned {
		d.kind = KindFace
		x, err := r.tensor(img)
		if err != nil {
			d.err = err
			return
		}
		whole := face.Box{X0: float32(b.Min.X), Y0: float32(b.Min.Y), X1: float32(b.Max.X), Y1: float32(b.Max.Y)}
		r.send(msg{frame: &frameMsg{in: i, img: img, faces: []cropFace{{box: whole, crop: whole, score: 1, x: x}}}})
		return
	}
	d.kind = KindImage
	faces, err := r.p.opts.Faces.Detect(img)
	if err != nil {
		d.err = fmt.Errorf("find faces: %w", err)
		return
	}
	faces, left := r.largest(faces)
	if left > 0 {
		d.warnings = append(d.warnings, fmt.Sprintf("%d faces found: the %d largest were analysed, %d left out (max faces %d)",
			len(faces)+left, len(faces), left, r.opts.MaxFaces))
	}
	cfs, err := r.cut(img, faces)
	if err != nil {
		d.err = err
		return
	}
	r.send(msg{frame: &frameMsg{in: i, img: img, faces: cfs}})
}

// largest keeps the Options.MaxFaces largest faces with a usable box (in
// the detector's order among equals) and says how many were left out.
func (r *run) largest(faces []face.Face) ([]face.Face, int) {
	ok := faces[:0:0]
	for _, f := range faces {
		b := f.Box
		if b.W() > 0 && b.H() > 0 && !math.IsInf(float64(b.W()*b.H()), 0) {
			ok = append(ok, f)
		}
	}
	sort.SliceStable(ok, func(a, b int) bool { return ok[a].Box.Area() > ok[b].Box.Area() })
	if len(ok) <= r.opts.MaxFaces {
		return ok, 0
	}
	return ok[:r.opts.MaxFaces], len(ok) - r.opts.MaxFaces
}

// cut crops the faces out of img as the training crops were cut and turns
// them into model inputs.
func (r *run) cut(img *image.RGBA, faces []face.Face) ([]cropFace, error) {
	out := make([]cropFace, 0, len(faces))
	for _, f := range faces {
		crop, _, sq := face.Crop(img, f, face.CropOptions{Scale: CropScale, Size: r.size})
		x, err := r.tensor(crop)
		if err != nil {
			for _, c := range out {
				c.x.Free()
			}
			return nil, err
		}
		out = append(out, cropFace{box: f.Box, crop: sq, score: f.Score, id: f.TrackID, x: x})
	}
	return out, nil
}

// tensor turns a picture into an owned model input.
func (r *run) tensor(img *image.RGBA) (*torch.Tensor, error) {
	s := torch.NewScope()
	defer s.Close()
	x := Preprocess(s, img, r.size)
	if err := x.Err(); err != nil {
		return nil, fmt.Errorf("preprocess: %w", err)
	}
	return x.Keep(), nil
}

// defaultEvery is the sampling step giving about VideoSampleRate frames per
// second of a video at fps (12 when the rate is unknown).
func defaultEvery(fps float64) int {
	if !(fps > 0) || math.IsInf(fps, 0) {
		return 12
	}
	return max(1, int(math.Round(fps/VideoSampleRate)))
}

// video streams the sampled frames of the video at path, finds and tracks
// the faces of each and sends them. A video that breaks off after some
// frames were read ends with a warning and d.incomplete; one of which no
// frame could be read fails.
func (r *run) video(ctx context.Context, i int, path string, d *doneMsg) {
	in := r.ins[i]
	from, to := filepath.Base(path), filepath.Base(in.name())
	if in.Data == nil && in.Name == "" {
		to = from
	}
	d.kind = KindVideo
	info, err := media.ProbeVideo(path)
	if err != nil {
		d.err = renamed(err, from, to)
		return
	}
	every := r.opts.Every
	if every == 0 {
		every = defaultEvery(info.FPS)
	}
	vo := media.VideoOptions{Every: every, Limits: r.p.opts.Limits}
	mf := r.opts.MaxFrames
	capped := false // stop after mf frames (the frame count is unknown)
	if mf > 0 {
		switch {
		case info.Frames > 0 && (info.Frames+every-1)/every > mf:
			vo.Count = mf // spread over the whole video
		case info.Frames <= 0:
			capped = true
		}
	}
	v, err := media.OpenVideo(path, vo)
	if err != nil {
		d.err = renamed(err, from, to)
		return
	}
	defer v.Close()
	info = v.Info
	d.w, d.h, d.video = info.Width, info.Height, &info
	tr := face.NewTracker(face.TrackerOptions{})
	var frames, left, leftFrames, most int
	for {
		if err := ctx.Err(); err != nil {
			d.err = err
			return
		}
		if capped && frames >= mf {
			d.warnings = append(d.warnings, fmt.Sprintf("stopped after %d frames (max frames %d): the video's length is unknown", frames, mf))
			break
		}
		f, err := v.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			err = renamed(err, from, to)
			if frames == 0 {
				d.err = err
				return
			}
			d.incomplete = true
			d.warnings = append(d.warnings, strings.TrimPrefix(err.Error(), to+": ")+"; the results cover the frames read before")
			break
		}
		frames++
		var cfs []cropFace
		if r.opts.Aligned {
			x, err := r.tensor(f.Img)
			if err != nil {
				d.err = err
				return
			}
			b := f.Img.Bounds()
			whole := face.Box{X0: float32(b.Min.X), Y0: float32(b.Min.Y), X1: float32(b.Max.X), Y1: float32(b.Max.Y)}
			cfs = []cropFace{{box: whole, crop: whole, score: 1, id: 1, x: x}}
		} else {
			faces, err := r.p.opts.Faces.Detect(f.Img)
			if err != nil {
				d.err = fmt.Errorf("find faces in frame %d: %w", f.Index, err)
				return
			}
			faces, n := r.largest(faces)
			if n > 0 {
				left, leftFrames, most = left+n, leftFrames+1, max(most, len(faces)+n)
			}
			if cfs, err = r.cut(f.Img, tr.Update(faces)); err != nil {
				d.err = err
				return
			}
		}
		if !r.send(msg{frame: &frameMsg{in: i, index: f.Index, time: f.Time, img: f.Img, video: true, faces: cfs}}) {
			return
		}
	}
	if left > 0 {
		d.warnings = append(d.warnings, fmt.Sprintf("up to %d faces in a frame: the %d largest of each were analysed, %d left out in %d frames (max faces %d)",
			most, r.opts.MaxFaces, left, leftFrames, r.opts.MaxFaces))
	}
}
