// Package model is LVNet, the two-stream network of "Locate and Verify"
// (Shuai et al., ACM MM 2023), on the torch engine: an RGB and an SRM-noise
// Xception stream coupled by CMCE and LFGA, a localisation branch (MPFF) that
// predicts a GxG map of forged patches, and a verification branch (Hadamard
// bilinear fusion) that classifies the face as real or fake.
//
// One file per building block: srm.go, xception.go, cmce.go, lfga.go,
// mpff.go, fusion.go, heads.go; lvnet.go wires them as the paper's figure.
// Tensor names are the authors' state-dict keys, so checkpoints map one to one.
package model

import (
	"fmt"
	"math"
)

// Config describes an LVNet. The zero value is invalid; start from Paper().
type Config struct {
	ImageSize int     `json:"image_size" yaml:"image_size"` // input side in pixels (299 in the paper; >= 64)
	Width     float64 `json:"width" yaml:"width"`           // channel multiplier (1 in the paper)
	CMCE      bool    `json:"cmce" yaml:"cmce"`             // cross-modality consistency enhancement
	LFGA      bool    `json:"lfga" yaml:"lfga"`             // local forgery guided attention
	Localize  bool    `json:"localize" yaml:"localize"`     // the localisation branch (MPFF + patch head)
	SRMStream bool    `json:"srm_stream" yaml:"srm_stream"` // false: RGB stream only
	SSPSL     bool    `json:"sspsl" yaml:"sspsl"`           // the semi-supervised head pro_header on x5
	Dropout   float64 `json:"dropout" yaml:"dropout"`       // dropout in HBFusion and the class head (0.5)
}

// Paper returns the configuration of the paper and the authors' code.
func Paper() Config {
	return Config{ImageSize: 299, Width: 1, CMCE: true, LFGA: true, Localize: true, SRMStream: true, SSPSL: true, Dropout: 0.5}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.ImageSize < 64 {
		return fmt.Errorf("model config: image size %d is below the minimum 64", c.ImageSize)
	}
	if c.Width <= 0 || c.Width > 4 || math.IsNaN(c.Width) {
		return fmt.Errorf("model config: width %v outside (0, 4]", c.Width)
	}
	if !c.SRMStream && (c.CMCE || c.LFGA) {
		return fmt.Errorf("model config: CMCE and LFGA couple the two streams; an RGB-only model needs both off")
	}
	if c.Dropout < 0 || c.Dropout >= 1 {
		return fmt.Errorf("model config: dropout %v outside [0, 1)", c.Dropout)
	}
	return nil
}

// Ch scales a channel count of the paper by the width multiplier.
func (c Config) Ch(n int) int64 {
	if c.Width == 1 {
		return int64(n)
	}
	v := int64(math.Round(float64(n) * c.Width))
	if v < 4 {
		v = 4
	}
	return v
}

// conv output size of kernel 3, stride 2, padding 1 (stem, and every max pool).
func half(n int) int { return (n-1)/2 + 1 }

// Sizes returns the spatial sides of the feature maps: x0 (stem), x1, x2, x3
// (= the patch grid G) and the exit flow (the class grid).
func (c Config) Sizes() (s0, s1, s2, g, cls int) {
	s0 = half(c.ImageSize)
	s1 = half(s0)
	s2 = half(s1)
	g = half(s2)
	cls = half(g)
	return
}

// Grid returns G, the side of the patch map (19 at 299).
func (c Config) Grid() int {
	_, _, _, g, _ := c.Sizes()
	return g
}

// window returns the MPFF window of a level of side n for a grid g: the
// padded side divided by g.
func window(n, g int) int {
	p := (g - n%g) % g
	return (n + p) / g
}

// SegChannels returns the number of channels of seg_features: the MPFF
// windows squared of x0..x4 plus the channels of x5 (814 at 299).
func (c Config) SegChannels() int64 {
	s0, s1, s2, g, _ := c.Sizes()
	n := 0
	for _, s := range []int{s0, s1, s2, g, g} {
		w := window(s, g)
		n += w * w
	}
	return int64(n) + c.Ch(728)
}
