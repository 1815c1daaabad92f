// Package checkpoint saves and loads LVNet models in the project's native
// format: a safetensors file holding every tensor of the model under its
// state-dict name, with string metadata describing the model (its
// configuration), where the weights came from, and training progress.
//
// Metadata keys of a checkpoint (format "lvnet/1"):
//
//	format      "lvnet/1"
//	config      model.Config as JSON
//	provenance  Provenance as JSON (source, created, lvnet and torch versions, ...)
//	metrics     JSON object, free-form (validation AUC, loss, ...)
//	epoch, step decimal integers
//
// Import converts the authors' PyTorch checkpoints and the ImageNet Xception
// file into a model.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/torch"
	"github.com/lvnet-go/lvnet/weights"
)

// Format is the value of the "format" metadata key of a checkpoint.
const Format = "lvnet/1"

// Metadata keys of a checkpoint.
const (
	KeyFormat      = "format"
	KeyConfig      = "config"
	KeyProvenance  = "provenance"
	KeyMetrics     = "metrics"
	KeyEpoch       = "epoch"
	KeyStep        = "step"
	KeyCalibration = "calibration"
)

// Sources of weights recorded in Provenance.Source.
const (
	SourceTrained       = "trained"       // written by the training loop
	SourceImported      = "imported"      // converted from another format (Provenance.From)
	SourceDeterministic = "deterministic" // the golden deterministic rule (tests, parity)
	SourceInit          = "init"          // default initialisation
)

// Provenance records where the weights of a checkpoint came from.
type Provenance struct {
	Source      string `json:"source"`                 // one of the Source* constants, or free text
	From        string `json:"from,omitempty"`         // imported: the source file's name
	FromFormat  string `json:"from_format,omitempty"`  // imported: its format (official, xception-imagenet)
	FromSHA256  string `json:"from_sha256,omitempty"`  // imported: the source file's SHA-256, hex
	SourceEpoch *int64 `json:"source_epoch,omitempty"` // imported official checkpoint: its epoch
	Created     string `json:"created"`                // RFC 3339, UTC
	LVNet       string `json:"lvnet"`                  // version of the program that wrote the file
	Torch       string `json:"torch"`                  // libtorch version
	Seed        uint64 `json:"seed,omitempty"`         // seed of the default initialisation, when used
	Note        string `json:"note,omitempty"`
	// Of a trained model: the data, the command that trained it and the
	// commit of the code (git describe) it was trained with.
	Data    string `json:"data,omitempty"`
	Command string `json:"command,omitempty"`
	Commit  string `json:"commit,omitempty"`
}

// Meta is the metadata of a checkpoint besides its tensors.
type Meta struct {
	// Config is the model's configuration. Save takes it from the model;
	// Load returns the stored one.
	Config     model.Config
	Provenance Provenance
	// Metrics is free-form (JSON object): validation scores, losses.
	Metrics map[string]any
	Epoch   int64
	Step    int64
	// Calibration turns the model's logits into calibrated probabilities
	// and labels; nil for an uncalibrated model (temperature 1, threshold
	// 0.5).
	Calibration *Calibration
}

// Calibration is what `lvnet calibrate` chose on a validation set.
type Calibration struct {
	// Temperature divides the class logits before the softmax (1: none).
	Temperature float64 `json:"temperature"`
	// Threshold is the decision threshold on the calibrated p_fake: a face
	// with p_fake >= Threshold is labelled fake.
	Threshold float64 `json:"threshold"`
	// ThresholdRule says how Threshold was chosen (e.g. "reals-0.95": 95%
	// of the validation reals fall below it).
	ThresholdRule string `json:"threshold_rule,omitempty"`
	// Validation names the data it was fitted on.
	Validation string `json:"validation,omitempty"`
	// LogLossRaw and LogLoss are the validation log loss at temperature 1
	// and at Temperature.
	LogLossRaw float64 `json:"log_loss_raw,omitempty"`
	LogLoss    float64 `json:"log_loss,omitempty"`
}

// Validate checks that the calibration can be applied.
func (c *Calibration) Validate() error {
	if c == nil {
		return nil
	}
	if !(c.Temperature > 0) || c.Temperature > 1e3 {
		return fmt.Errorf("calibration: temperature %v outside (0, 1000]", c.Temperature)
	}
	if !(c.Threshold > 0 && c.Threshold <= 1) {
		return fmt.Errorf("calibration: threshold %v outside (0, 1]", c.Threshold)
	}
	return nil
}

// TemperatureOr1 returns the calibration temperature, 1 when uncalibrated.
func (m Meta) TemperatureOr1() float64 {
	if m.Calibration == nil {
		return 1
	}
	return m.Calibration.Temperature
}

// ThresholdOr returns the calibrated threshold, or def when uncalibrated.
func (m Meta) ThresholdOr(def float64) float64 {
	if m.Calibration == nil {
		return def
	}
	return m.Calibration.Threshold
}

// LoadOptions select where a loaded model lives.
type LoadOptions struct {
	Device torch.Device // default CPU
	// DType of the weights: torch.Float32 (the default; the zero value,
	// torch.Uint8, also means Float32), torch.Float64 or, for inference,
	// torch.BFloat16.
	DType torch.DType
}

// version returns the module version of the running program, for
// Provenance.LVNet when the caller leaves it empty.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "unknown"
}

// fillProvenance completes the fields Save fills when left empty.
func fillProvenance(p *Provenance) {
	if p.Source == "" {
		p.Source = SourceTrained
	}
	if p.Created == "" {
		p.Created = time.Now().UTC().Format(time.RFC3339)
	}
	if p.LVNet == "" {
		p.LVNet = version()
	}
	if p.Torch == "" {
		if info, err := torch.RuntimeInfo(); err == nil {
			p.Torch = info.TorchVersion
		}
	}
}

// encodeMeta renders meta as safetensors string metadata.
func encodeMeta(meta Meta) (map[string]string, error) {
	cfg, err := json.Marshal(meta.Config)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	prov, err := json.Marshal(meta.Provenance)
	if err != nil {
		return nil, fmt.Errorf("encode provenance: %w", err)
	}
	metrics := meta.Metrics
	if metrics == nil {
		metrics = map[string]any{}
	}
	met, err := json.Marshal(metrics)
	if err != nil {
		return nil, fmt.Errorf("encode metrics: %w", err)
	}
	md := map[string]string{
		KeyFormat:     Format,
		KeyConfig:     string(cfg),
		KeyProvenance: string(prov),
		KeyMetrics:    string(met),
		KeyEpoch:      strconv.FormatInt(meta.Epoch, 10),
		KeyStep:       strconv.FormatInt(meta.Step, 10),
	}
	if meta.Calibration != nil {
		if err := meta.Calibration.Validate(); err != nil {
			return nil, err
		}
		b, err := json.Marshal(meta.Calibration)
		if err != nil {
			return nil, fmt.Errorf("encode calibration: %w", err)
		}
		md[KeyCalibration] = string(b)
	}
	return md, nil
}

// ErrNotCheckpoint is wrapped by the errors of Load and ReadMeta for files
// that are valid safetensors files but lack LVNet's metadata.
var ErrNotCheckpoint = errors.New("not an LVNet checkpoint")

// decodeMeta parses the string metadata of a checkpoint.
func decodeMeta(md map[string]string) (Meta, error) {
	var meta Meta
	f, ok := md[KeyFormat]
	if !ok {
		return meta, fmt.Errorf("%w: no %q metadata (a plain safetensors file? convert it with lvnet import)", ErrNotCheckpoint, KeyFormat)
	}
	if f != Format {
		if strings.HasPrefix(f, "lvnet/") {
			return meta, fmt.Errorf("checkpoint format %q is not supported (this build reads %s)", f, Format)
		}
		return meta, fmt.Errorf("%w: format %q (want %s)", ErrNotCheckpoint, f, Format)
	}
	cs, ok := md[KeyConfig]
	if !ok {
		return meta, fmt.Errorf("%w: no %q metadata", ErrNotCheckpoint, KeyConfig)
	}
	dec := json.NewDecoder(strings.NewReader(cs))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&meta.Config); err != nil {
		return meta, fmt.Errorf("config metadata: %w", err)
	}
	if err := meta.Config.Validate(); err != nil {
		return meta, fmt.Errorf("config metadata: %w", err)
	}
	if s, ok := md[KeyProvenance]; ok {
		if err := json.Unmarshal([]byte(s), &meta.Provenance); err != nil {
			return meta, fmt.Errorf("provenance metadata: %w", err)
		}
	}
	if s, ok := md[KeyMetrics]; ok {
		if err := json.Unmarshal([]byte(s), &meta.Metrics); err != nil {
			return meta, fmt.Errorf("metrics metadata: %w", err)
		}
	}
	if s, ok := md[KeyCalibration]; ok {
		meta.Calibration = new(Calibration)
		if err := json.Unmarshal([]byte(s), meta.Calibration); err != nil {
			return meta, fmt.Errorf("calibration metadata: %w", err)
		}
		if err := meta.Calibration.Validate(); err != nil {
			return meta, fmt.Errorf("calibration metadata: %w", err)
		}
	}
	for _, f := range []struct {
		key string
		dst *int64
	}{{KeyEpoch, &meta.Epoch}, {KeyStep, &meta.Step}} {
		s, ok := md[f.key]
		if !ok {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return meta, fmt.Errorf("%s metadata %q is not a non-negative integer", f.key, s)
		}
		*f.dst = v
	}
	return meta, nil
}

// Save writes every tensor of m (exported from the engine as float32 or
// int64 CPU copies) and meta to path, atomically: the file is written to a
// temporary file in the same directory and renamed into place, so a failed
// save leaves any previous file intact. meta.Config is replaced by
// m.Config; empty Provenance fields Source (trained), Created (now), LVNet
// and Torch are filled in.
func Save(path string, m *model.LVNet, meta Meta) error {
	if m == nil {
		return fmt.Errorf("save checkpoint %s: nil model", path)
	}
	meta.Config = m.Config
	fillProvenance(&meta.Provenance)
	md, err := encodeMeta(meta)
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	state, err := m.State()
	if err != nil {
		return fmt.Errorf("save checkpoint %s: %w", path, err)
	}
	if err := weights.WriteSafetensors(path, state, md); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// ReadMeta reads only the metadata of the checkpoint at path.
func ReadMeta(path string) (Meta, error) {
	_, md, err := weights.ReadSafetensorsMeta(path)
	if err != nil {
		return Meta{}, fmt.Errorf("load checkpoint: %w", err)
	}
	meta, err := decodeMeta(md)
	if err != nil {
		return Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	return meta, nil
}

// Load reads the checkpoint at path: it builds the model from the stored
// configuration and loads its tensors, strictly (every tensor of the model
// present with its shape and dtype, nothing else; the error lists the
// differences), then moves it to opts.Device and opts.DType. Damaged,
// foreign and non-LVNet files give an error naming the file and the reason.
func Load(path string, opts LoadOptions) (*model.LVNet, Meta, error) {
	dt := opts.DType
	if dt == torch.Uint8 {
		dt = torch.Float32
	}
	switch dt {
	case torch.Float32, torch.Float64, torch.BFloat16:
	default:
		return nil, Meta{}, fmt.Errorf("load checkpoint %s: model dtype %v is not a floating-point type", path, dt)
	}
	tensors, md, err := weights.ReadSafetensors(path)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("load checkpoint: %w", err)
	}
	meta, err := decodeMeta(md)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	m, err := model.New(meta.Config, 0)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	if rep := weights.Check(m.KeyShapes(), tensors); !rep.OK() {
		m.Free()
		return nil, Meta{}, fmt.Errorf("load checkpoint %s: tensors do not match the stored config: %s", path, rep.String())
	}
	if _, err := m.SetState(tensors); err != nil {
		m.Free()
		return nil, Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
	}
	if dt != torch.Float32 || opts.Device != torch.CPU {
		if err := m.To(dt, opts.Device); err != nil {
			m.Free()
			return nil, Meta{}, fmt.Errorf("load checkpoint %s: %w", path, err)
		}
	}
	return m, meta, nil
}
