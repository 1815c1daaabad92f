// Package face finds faces in images and video frames, puts 68 landmarks on
// them, cuts the square crops LVNet looks at, and tracks faces across the
// frames of a video.
//
// Detection is face-api's SSD-MobileNetV1 face detector and landmarks its
// FaceLandmark68Net (npm package @vladmandic/face-api, MIT licence), ported
// layer by layer to Go over the project's tensor engine (package torch). The
// weights are not part of the project: scripts/fetch-face-models.sh installs
// them from the npm registry into DefaultModelDir.
//
//	det, err := face.NewDetector(face.DefaultModelDir(), face.Options{})
//	if err != nil { ... }
//	defer det.Close()
//	faces, err := det.Detect(img)            // largest first
//	crop, lm, box := face.Crop(img, faces[0], face.CropOptions{})
package face

import (
	"image"
	"math"
	"os"
	"path/filepath"
)

// ModelsEnv names the environment variable that overrides DefaultModelDir.
const ModelsEnv = "LVNET_MODELS"

// DefaultModelDir returns where the face models are looked for and installed:
// $LVNET_MODELS, else ~/.cache/lvnet/models.
func DefaultModelDir() string {
	if d := os.Getenv(ModelsEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "lvnet-models")
	}
	return filepath.Join(home, ".cache", "lvnet", "models")
}

// NumLandmarks is the number of landmark points (the iBUG 300-W layout: jaw
// 0-16, eyebrows 17-26, nose 27-35, eyes 36-47, mouth 48-67).
const NumLandmarks = 68

// Index ranges [Start, End) of the 68-point layout. Left and right are the
// subject's: the right eye is on the left of the image.
const (
	JawStart, JawEnd             = 0, 17
	RightBrowStart, RightBrowEnd = 17, 22
	LeftBrowStart, LeftBrowEnd   = 22, 27
	NoseStart, NoseEnd           = 27, 36
	RightEyeStart, RightEyeEnd   = 36, 42
	LeftEyeStart, LeftEyeEnd     = 42, 48
	MouthStart, MouthEnd         = 48, 68
)

// Box is an axis-aligned rectangle in image pixel coordinates: (X0, Y0) the
// top-left corner, (X1, Y1) the bottom-right one.
type Box struct {
	X0, Y0, X1, Y1 float32
}

// W returns the width.
func (b Box) W() float32 { return b.X1 - b.X0 }

// H returns the height.
func (b Box) H() float32 { return b.Y1 - b.Y0 }

// Area returns the area (0 for an empty box).
func (b Box) Area() float32 {
	if b.X1 <= b.X0 || b.Y1 <= b.Y0 {
		return 0
	}
	return b.W() * b.H()
}

// Center returns the centre point.
func (b Box) Center() (x, y float32) { return (b.X0 + b.X1) / 2, (b.Y0 + b.Y1) / 2 }

// IoU returns the intersection over union of two boxes (0 when either is
// empty).
func (b Box) IoU(o Box) float32 {
	ix := min(b.X1, o.X1) - max(b.X0, o.X0)
	iy := min(b.Y1, o.Y1) - max(b.Y0, o.Y0)
	if ix <= 0 || iy <= 0 {
		return 0
	}
	inter := ix * iy
	u := b.Area() + o.Area() - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// Rect returns the smallest integer rectangle that contains the box.
func (b Box) Rect() image.Rectangle {
	return image.Rect(int(math.Floor(float64(b.X0))), int(math.Floor(float64(b.Y0))),
		int(math.Ceil(float64(b.X1))), int(math.Ceil(float64(b.Y1))))
}

// Face is one detected face.
type Face struct {
	// Box is the detector's box in image pixels. It may reach past the
	// image borders when the face does (tight crops).
	Box Box
	// Score is the detector's confidence in (0, 1).
	Score float32
	// Landmarks are the 68 points (x, y) in image pixels (zero when
	// landmarks were not computed).
	Landmarks [NumLandmarks][2]float32
	// TrackID identifies the person across the frames of a video (set by
	// Tracker; 0 before).
	TrackID int
}

// Options tune a Detector. Zero values select the defaults.
type Options struct {
	// MinScore is the detection threshold (default 0.5).
	MinScore float32
	// MaxFaces keeps at most this many faces, the largest (default 100).
	MaxFaces int
	// MinSize drops faces whose box is narrower or shorter than this many
	// image pixels (default 0: keep all).
	MinSize float32
	// InputSize is the side, in pixels, that the longer side of the image
	// is resized to for the detector: a multiple of 32 from 128 to 1024
	// (default 416; face-api uses 512, the size the detector was trained
	// at). Smaller is faster and misses small faces: at 416 faces below
	// about 30 input pixels (75 pixels of a 1280-wide frame), too small
	// for LVNet's 299x299 crops anyway.
	InputSize int
	// SquareInput pads the resized image to an InputSize square as
	// face-api does. By default the shorter side is only padded up to a
	// multiple of 32, which gives the same anchors and nearly the same
	// detections for less work on wide frames.
	SquareInput bool
	// Pad adds a black border of this fraction of the width (left and
	// right) and height (top and bottom) before detection. Tightly cropped
	// faces, which fill the whole image, are found far more reliably with
	// one (0.3 works well).
	Pad float32
	// Retry lists further passes, tried in order on an image where the
	// passes before found nothing. Single-shot detectors have blind spots
	// at some face sizes; another input size or a border usually finds
	// the face. Nil selects DefaultRetry; NoRetry disables them.
	Retry   []Pass
	NoRetry bool
	// NoLandmarks skips the landmark net.
	NoLandmarks bool
}

// Pass is one detection pass: the detector input size and the border added
// (see Options.InputSize and Options.Pad); zero fields keep the values of
// the first pass.
type Pass struct {
	InputSize int
	Pad       float32
}

// DefaultRetry returns the passes tried when the first finds nothing: a
// larger input (for small faces, and faces of 70-90 input pixels, which
// fall between the detector's anchor sizes), then a black border around a
// smaller input (for faces cropped tightly, which fill the picture).
func DefaultRetry() []Pass {
	return []Pass{{InputSize: 512}, {InputSize: 320, Pad: 0.3}}
}

// TightOptions returns options for pictures that are already tight face
// crops (the face fills the picture, as in FaceForensics++ crop datasets):
// one pass at 320 with a 30% black border, which finds the face in all but
// a few of the 650 crops of ../shared/data/ffpp-crops at a quarter of the
// cost of the default passes.
func TightOptions() Options {
	return Options{InputSize: 320, Pad: 0.3, NoRetry: true}
}

func (o Options) withDefaults() Options {
	if o.MinScore <= 0 {
		o.MinScore = 0.5
	}
	if o.MaxFaces <= 0 {
		o.MaxFaces = 100
	}
	if o.InputSize == 0 {
		o.InputSize = 416
	}
	if o.Retry == nil && !o.NoRetry {
		o.Retry = DefaultRetry()
	}
	if o.NoRetry {
		o.Retry = nil
	}
	return o
}
