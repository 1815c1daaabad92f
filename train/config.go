// Package train trains and evaluates LVNet the way the paper does: cross
// entropy on the class logits plus patch cross entropy on the localisation map
// (or the semi-supervised SSPSL loss for data without masks), mixup, Adam with
// weight decay on weights only and a step learning-rate schedule, real/fake
// balanced sampling. Runs are resumable bit for bit: the data order, the
// augmentation and every random draw of a step derive from (seed, epoch,
// batch), and the complete training state is saved atomically after every
// step (configurable).
package train

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lvnet-go/lvnet/augment"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/optim"
)

// Config holds every hyperparameter of a run. The zero value is invalid;
// start from a preset.
type Config struct {
	Preset string       `yaml:"preset" json:"preset"`
	Model  model.Config `yaml:"model" json:"model"`

	Epochs    int `yaml:"epochs" json:"epochs"`
	BatchSize int `yaml:"batch_size" json:"batch_size"`

	LR          float64 `yaml:"lr" json:"lr"`
	Beta1       float64 `yaml:"beta1" json:"beta1"`
	Beta2       float64 `yaml:"beta2" json:"beta2"`
	Eps         float64 `yaml:"eps" json:"eps"`
	WeightDecay float64 `yaml:"weight_decay" json:"weight_decay"` // on weights of 2+ dimensions only
	StepSize    int     `yaml:"step_size" json:"step_size"`       // StepLR, in epochs
	Gamma       float64 `yaml:"gamma" json:"gamma"`
	Schedule    string  `yaml:"schedule" json:"schedule"`         // "step" (StepLR, the paper) or "cosine" (per step, to 0 at the last)
	WarmupSteps int     `yaml:"warmup_steps" json:"warmup_steps"` // linear warm-up of the learning rate over the first steps (0: none)

	Mixup      bool    `yaml:"mixup" json:"mixup"`             // supervised mode only
	MixupProb  float64 `yaml:"mixup_prob" json:"mixup_prob"`   // probability a batch is mixed (0.5)
	MixupAlpha float64 `yaml:"mixup_alpha" json:"mixup_alpha"` // lambda ~ Beta(alpha, alpha)

	SSPSL           bool   `yaml:"sspsl" json:"sspsl"`                         // semi-supervised patch loss (no masks needed)
	SSPSLWarmEpochs int    `yaml:"sspsl_warm_epochs" json:"sspsl_warm_epochs"` // epochs in which reals' maps are also trained towards 0
	Region          string `yaml:"region" json:"region"`                       // SSPSL reference region: mouth, nose, eyes

	Every   int  `yaml:"every" json:"every"`     // every Nth frame of each training video
	Balance bool `yaml:"balance" json:"balance"` // repeat reals to match fakes (the authors' sampling)
	Limit   int  `yaml:"limit" json:"limit"`     // cap per class (0: none)
	Augment bool `yaml:"augment" json:"augment"` // augment training images
	// AugmentSet picks the augmentations: "paper" (the authors') or
	// "light" (augment.Light, for small networks trained from scratch).
	AugmentSet string `yaml:"augment_set" json:"augment_set"`
	Seed       int64  `yaml:"seed" json:"seed"`

	Workers   int    `yaml:"workers" json:"workers"`       // data loading goroutines (0: all CPUs)
	SaveEvery int    `yaml:"save_every" json:"save_every"` // save the resume state every N steps (1: lose at most the current step)
	Init      string `yaml:"init" json:"init"`             // "" (PyTorch default init) or a .safetensors checkpoint to start from

	// SyncBN computes BatchNorm statistics over the whole global batch of
	// a data-parallel run (SyncBatchNorm); off, each rank normalises by
	// its own batch, as DistributedDataParallel does. No effect on one
	// process.
	SyncBN bool `yaml:"sync_batchnorm" json:"sync_batchnorm,omitempty"`
}

// Presets returns the named configurations.
func Presets() map[string]Config {
	paper := Config{
		Preset: "paper", Model: model.Paper(),
		Epochs: 30, BatchSize: 16,
		LR: 5e-4, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-5,
		StepSize: 5, Gamma: 0.5, Schedule: "step",
		Mixup: true, MixupProb: 0.5, MixupAlpha: 1,
		SSPSL: false, SSPSLWarmEpochs: 2, Region: "mouth",
		Every: 3, Balance: true, Augment: true, AugmentSet: "paper", Seed: 1234, SaveEvery: 1,
	}
	paper.Model.SSPSL = false
	smoke := paper
	smoke.Preset = "smoke"
	smoke.Model.ImageSize = 96
	smoke.Model.Width = 0.125
	smoke.Model.Dropout = 0.2
	smoke.Epochs = 2
	smoke.BatchSize = 16
	smoke.LR = 1e-3
	smoke.StepSize = 1
	smoke.Every = 1
	smoke.Limit = 96
	// The recipe of the shipped model (docs/MODEL.md): a reduced LVNet
	// with every block of the paper, trained from scratch on the CPU.
	def := paper
	def.Preset = "default"
	def.Model.ImageSize = 96
	def.Model.Width = 0.25
	def.Model.Dropout = 0.2
	def.Epochs = 11
	def.BatchSize = 32
	def.LR = 1e-3
	def.Schedule = "cosine"
	def.WarmupSteps = 200
	def.Mixup = false
	def.Every = 1
	def.AugmentSet = "light"
	def.SaveEvery = 20
	return map[string]Config{"paper": paper, "smoke": smoke, "default": def}
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	var n []string
	for k := range Presets() {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Preset returns a named preset.
func Preset(name string) (Config, error) {
	c, ok := Presets()[name]
	if !ok {
		return Config{}, fmt.Errorf("unknown preset %q (have %s)", name, strings.Join(PresetNames(), ", "))
	}
	return c, nil
}

// LoadConfig reads a YAML (or JSON) file over a base configuration: keys the
// file sets replace the base's, unknown keys are an error. A "preset" key in
// the file selects the base instead.
func LoadConfig(path string, base Config) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("read config %s: %w", path, err)
	}
	var probe struct {
		Preset string `yaml:"preset"`
	}
	_ = yaml.Unmarshal(b, &probe)
	if probe.Preset != "" {
		if base, err = Preset(probe.Preset); err != nil {
			return base, fmt.Errorf("config %s: %w", path, err)
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	cfg := base
	if err := dec.Decode(&cfg); err != nil {
		return base, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, cfg.Validate()
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if err := c.Model.Validate(); err != nil {
		return err
	}
	var bad []string
	check := func(ok bool, format string, args ...any) {
		if !ok {
			bad = append(bad, fmt.Sprintf(format, args...))
		}
	}
	check(c.Epochs > 0, "epochs %d must be positive", c.Epochs)
	check(c.BatchSize > 0, "batch_size %d must be positive", c.BatchSize)
	check(c.LR > 0, "lr %v must be positive", c.LR)
	check(c.Beta1 >= 0 && c.Beta1 < 1 && c.Beta2 >= 0 && c.Beta2 < 1, "betas (%v, %v) must lie in [0, 1)", c.Beta1, c.Beta2)
	check(c.Eps > 0, "eps %v must be positive", c.Eps)
	check(c.WeightDecay >= 0, "weight_decay %v must be >= 0", c.WeightDecay)
	check(c.StepSize > 0 && c.Gamma > 0, "step_size %d and gamma %v must be positive", c.StepSize, c.Gamma)
	check(c.MixupProb >= 0 && c.MixupProb <= 1, "mixup_prob %v outside [0, 1]", c.MixupProb)
	check(!c.Mixup || c.MixupAlpha > 0, "mixup_alpha %v must be positive", c.MixupAlpha)
	check(c.Every >= 1, "every %d must be >= 1", c.Every)
	check(c.Schedule == "step" || c.Schedule == "cosine", "schedule %q: want step or cosine", c.Schedule)
	check(c.WarmupSteps >= 0, "warmup_steps %d must be >= 0", c.WarmupSteps)
	check(c.AugmentSet == "paper" || c.AugmentSet == "light", "augment_set %q: want paper or light", c.AugmentSet)
	check(c.SaveEvery >= 1, "save_every %d must be >= 1", c.SaveEvery)
	check(c.Limit >= 0 && c.Workers >= 0, "limit and workers must be >= 0")
	check(!c.SSPSL || c.Model.SSPSL, "sspsl training needs the model's pro_header (model.sspsl: true)")
	check(!c.SSPSL || c.Model.Localize, "sspsl training needs the localisation branch")
	switch c.Region {
	case "mouth", "nose", "eyes":
	default:
		bad = append(bad, fmt.Sprintf("region %q: want mouth, nose or eyes", c.Region))
	}
	if len(bad) > 0 {
		return fmt.Errorf("train config: %s", strings.Join(bad, "; "))
	}
	return nil
}

// LRAt returns the learning rate of a step: the schedule's rate for the epoch
// (step) or the global step (cosine), times the linear warm-up factor.
// stepsPerEpoch is the number of batches of an epoch.
func (c Config) LRAt(epoch, step, stepsPerEpoch int) float64 {
	lr := c.LR
	switch c.Schedule {
	case "cosine":
		total := c.Epochs * stepsPerEpoch
		if total > 0 {
			lr = c.LR * 0.5 * (1 + math.Cos(math.Pi*float64(min(step, total))/float64(total)))
		}
	default:
		lr = optim.StepLR{StepSize: c.StepSize, Gamma: c.Gamma}.LR(c.LR, epoch)
	}
	if c.WarmupSteps > 0 && step < c.WarmupSteps {
		lr *= float64(step+1) / float64(c.WarmupSteps)
	}
	return lr
}

// Augmentation returns the augmentation settings of the configuration for
// its image size (only the final resize when Augment is off). Training
// images are first resized whole to the input size, as the detector feeds
// faces to the model.
func (c Config) Augmentation() augment.Config {
	a := augment.Config{Size: c.Model.ImageSize}
	if c.Augment {
		if c.AugmentSet == "light" {
			a = augment.Light(c.Model.ImageSize)
		} else {
			a = augment.Paper(c.Model.ImageSize)
		}
	}
	a.ResizeFirst = true
	return a
}

// YAML renders the configuration (for the run directory and --print-config).
func (c Config) YAML() string {
	b, _ := yaml.Marshal(c)
	return string(b)
}
