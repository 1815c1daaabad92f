package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/lvnet-go/lvnet/train"
)

// Step is one "kind":"step" line of a training log (train.StepRecord).
// Missing numbers are NaN, a missing epoch or step -1.
type Step struct {
	Epoch, Step                     int
	Loss, LossCls, LossSeg, Acc, LR float64
	ImagesPerS                      float64
}

// Epoch is one "kind":"epoch" line of a training log (train.EpochRecord).
// Missing numbers are NaN, a missing epoch -1.
type Epoch struct {
	Epoch                               int
	TrainLoss, TrainAcc, ValAUC, ValAcc float64
}

// TrainLog is the content of a metrics.jsonl file written during training.
type TrainLog struct {
	Steps  []Step
	Epochs []Epoch
}

func num(p *float64) float64 {
	if p == nil {
		return math.NaN()
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
		var head struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal([]byte(text), &head); err != nil {
			problems = append(problems, fmt.Sprintf("%s:%d: %v", path, n, err))
			continue
		}
		switch head.Kind {
		case train.KindStep:
			// Numbers absent from the line keep these values.
			nan := math.NaN()
			r := train.StepRecord{Epoch: -1, Step: -1, Loss: nan, LossCls: nan, LossSeg: nan, Acc: nan, LR: nan, ImagesPerS: nan}
			if err := json.Unmarshal([]byte(text), &r); err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %v", path, n, err))
				continue
			}
			log.Steps = append(log.Steps, Step{
				Epoch: r.Epoch, Step: r.Step,
				Loss: r.Loss, LossCls: r.LossCls, LossSeg: r.LossSeg,
				Acc: r.Acc, LR: r.LR, ImagesPerS: r.ImagesPerS,
			})
		case train.KindEpoch:
			r := train.EpochRecord{Epoch: -1}
			if err := json.Unmarshal([]byte(text), &r); err != nil {
				problems = append(problems, fmt.Sprintf("%s:%d: %v", path, n, err))
				continue
			}
			log.Epochs = append(log.Epochs, Epoch{
				Epoch:     r.Epoch,
				TrainLoss: num(r.TrainLoss), TrainAcc: num(r.TrainAcc),
				ValAUC: num(r.ValAUC), ValAcc: num(r.ValAcc),
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
