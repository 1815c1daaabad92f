// Package media decodes the photos and videos users hand to LVNet into RGB
// frames: images (JPEG with its EXIF orientation applied, PNG, WebP, BMP,
// GIF's first frame) and videos (any format the ffmpeg program reads,
// streamed as raw RGB over a pipe, every frame or a sample of them).
//
// Limits guard memory: the pixel count, file size, duration and frame count
// are checked from the headers before anything is decoded. Errors name the
// file and say what is wrong ("a.jpg: not an image (looks like text)",
// "x.png: truncated PNG"); they wrap ErrNotImage, ErrTruncated, ErrTooLarge,
// ErrEmpty or ErrCorrupt for errors.Is.
package media

import (
	"errors"
	"fmt"
	"time"
)

// Errors wrapped by the errors of this package.
var (
	ErrEmpty     = errors.New("empty file")
	ErrNotImage  = errors.New("not an image")
	ErrNotVideo  = errors.New("not a video")
	ErrTruncated = errors.New("truncated")
	ErrCorrupt   = errors.New("corrupt")
	ErrTooLarge  = errors.New("too large")
)

// Limits bound what a decode may cost. Zero fields select the defaults of
// DefaultLimits; negative ones disable a limit.
type Limits struct {
	// MaxPixels bounds width*height of an image or video frame (default
	// 50 megapixels).
	MaxPixels int64
	// MaxBytes bounds the size of an image file (default 256 MiB).
	MaxBytes int64
	// MaxDuration bounds the length of a video (default 4 hours).
	MaxDuration time.Duration
	// MaxFrames bounds the number of frames a video yields after sampling
	// (default 1,000,000).
	MaxFrames int
}

// DefaultLimits returns the limits used when none are given.
func DefaultLimits() Limits {
	return Limits{MaxPixels: 50_000_000, MaxBytes: 256 << 20, MaxDuration: 4 * time.Hour, MaxFrames: 1_000_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxPixels == 0 {
		l.MaxPixels = d.MaxPixels
	}
	if l.MaxBytes == 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDuration == 0 {
		l.MaxDuration = d.MaxDuration
	}
	if l.MaxFrames == 0 {
		l.MaxFrames = d.MaxFrames
	}
	return l
}

// checkPixels refuses a w x h picture above the pixel limit.
func (l Limits) checkPixels(name string, w, h int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%s: %w: header gives a %dx%d picture", name, ErrCorrupt, w, h)
	}
	if l.MaxPixels > 0 && int64(w)*int64(h) > l.MaxPixels {
		return fmt.Errorf("%s: %w: %dx%d is %.1f megapixels, the limit is %.1f", name, ErrTooLarge,
			w, h, float64(w)*float64(h)/1e6, float64(l.MaxPixels)/1e6)
	}
	return nil
}
