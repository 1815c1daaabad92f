package train

import (
	"fmt"
	"strings"
)

// The kinds of the lines of metrics.jsonl.
const (
	KindStep  = "step"
	KindEpoch = "epoch"
)

// StepRecord is one "kind":"step" line of a run's metrics.jsonl: the numbers
// of one training step. The writer (Run) fills every field; report reads
// the lines back.
type StepRecord struct {
	Kind       string  `json:"kind"`  // KindStep
	Epoch      int     `json:"epoch"` // 0-based
	Step       int     `json:"step"`  // steps done, this one included
	Batch      int     `json:"batch"` // index of the batch in its epoch
	Loss       float64 `json:"loss"`
	LossCls    float64 `json:"loss_cls"`
	LossSeg    float64 `json:"loss_seg"`
	Acc        float64 `json:"acc"`    // fraction of the batch classified right
	Lambda     float64 `json:"lambda"` // mixup lambda (1: not mixed)
	LR         float64 `json:"lr"`
	ImagesPerS float64 `json:"images_per_s"`
}

// EpochRecord is one "kind":"epoch" line of a run's metrics.jsonl: the
// summary of an epoch (the training numbers are means over its images; the
// validation numbers are there when the run validates). Absent numbers are
// nil and left out of the line.
type EpochRecord struct {
	Kind         string   `json:"kind"`  // KindEpoch
	Epoch        int      `json:"epoch"` // 0-based
	Step         int      `json:"step"`  // steps done at the end of the epoch
	Seconds      float64  `json:"seconds"`
	TrainLoss    *float64 `json:"train_loss,omitempty"`
	TrainAcc     *float64 `json:"train_acc,omitempty"`
	TrainLossCls *float64 `json:"train_loss_cls,omitempty"`
	TrainLossSeg *float64 `json:"train_loss_seg,omitempty"`
	ValAUC       *float64 `json:"val_auc,omitempty"`
	ValAcc       *float64 `json:"val_acc,omitempty"`
}

// Map returns the record as the map its JSON line encodes (absent numbers
// left out), the form checkpoints keep it in (SaveFunc's meta "metrics").
func (r EpochRecord) Map() map[string]any {
	m := map[string]any{"kind": r.Kind, "epoch": r.Epoch, "step": r.Step, "seconds": r.Seconds}
	for _, f := range r.optional() {
		if f.v != nil {
			m[f.key] = *f.v
		}
	}
	return m
}

type optionalField struct {
	key string
	v   *float64
}

func (r EpochRecord) optional() []optionalField {
	return []optionalField{
		{"train_loss", r.TrainLoss}, {"train_acc", r.TrainAcc},
		{"train_loss_cls", r.TrainLossCls}, {"train_loss_seg", r.TrainLossSeg},
		{"val_auc", r.ValAUC}, {"val_acc", r.ValAcc},
	}
}

// summary words the record for the log: train_loss, train_acc, val_auc,
// val_acc (those present) and seconds.
func (r EpochRecord) summary() string {
	var parts []string
	for _, f := range []optionalField{{"train_loss", r.TrainLoss}, {"train_acc", r.TrainAcc}, {"val_auc", r.ValAUC}, {"val_acc", r.ValAcc}} {
		if f.v != nil {
			parts = append(parts, fmt.Sprintf("%s %.4f", f.key, *f.v))
		}
	}
	parts = append(parts, fmt.Sprintf("seconds %.4f", r.Seconds))
	return strings.Join(parts, ", ")
}

func ptr(v float64) *float64 { return &v }
