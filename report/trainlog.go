package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
)

// Step is one "kind":"step" line of a training log. Missing numbers are NaN.
type Step struct {
	Epoch, Step                     int
	Loss, LossCls, LossSeg, Acc, LR float64
	ImagesPerS                      float64
}

// Epoch is one "kind":"epoch" line of a training log. Missing numbers are
// NaN.
type Epoch struct {
	Epoch                               int
	TrainLoss, TrainAcc, ValAUC, ValAcc float64
}

// TrainLog is the content of a metrics.jsonl file written during training.
type TrainLog struct {
	Steps  []Step
	Epochs []Epoch
}

// logLine is the union of the line kinds, with pointers to tell missing
// numbers from zeros.
type logLine struct {
	Kind       string   `json:"kind"`
	Epoch      *int     `json:"epoch"`
	Step       *int     `json:"step"`
	Loss       *float64 `json:"loss"`
	LossCls    *float64 `json:"loss_cls"`
	LossSeg    *float64 `json:"loss_seg"`
	Acc        *float64 `json:"acc"`
	LR         *float64 `json:"lr"`
	ImagesPerS *float64 `json:"images_per_s"`
	TrainLoss  *float64 `json:"train_loss"`
	TrainAcc   *float64 `json:"train_acc"`
	ValAUC     *float64 `json:"val_auc"`
	ValAcc     *float64 `json:"val_acc"`
}

func num(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func integer(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// ReadTrainLog reads a training log: one JSON object per line, "kind"
// "step" or "epoch" (other kinds and blank lines are skipped). A line that
// is not valid JSON or has no kind does not stop the reading: it is
// reported in problems as "path:line: reason". err is set only when the
// file cannot be read at all.
func ReadTrainLog(path string) (log TrainLog, problems []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return log, nil, fmt.Errorf("read training log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var l logLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", path, n, err))
			continue
		}
		switch l.Kind {
		case "step":
			log.Steps = append(log.Steps, Step{
				Epoch: integer(l.Epoch), Step: integer(l.Step),
				Loss: num(l.Loss), LossCls: num(l.LossCls), LossSeg: num(l.LossSeg),
				Acc: num(l.Acc), LR: num(l.LR), ImagesPerS: num(l.ImagesPerS),
			})
		case "epoch":
			log.Epochs = append(log.Epochs, Epoch{
				Epoch:     integer(l.Epoch),
				TrainLoss: num(l.TrainLoss), TrainAcc: num(l.TrainAcc),
				ValAUC: num(l.ValAUC), ValAcc: num(l.ValAcc),
			})
		case "":
			problems = append(problems, fmt.Sprintf("%s:%d: no \"kind\"", path, n))
		}
	}
	if err := sc.Err(); err != nil {
		return log, problems, fmt.Errorf("read training log %s: %w", path, err)
	}
	return log, problems, nil
}
