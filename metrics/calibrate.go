package metrics

import (
	"errors"
	"fmt"
	"math"
	"sort"
)

// Logit returns log(p / (1-p)), the logit difference l1 - l0 of a
// two-class softmax whose second component is p (clamped away from 0 and 1
// so that saturated scores stay finite).
func Logit(p float64) float64 {
	const eps = 1e-12
	p = math.Min(math.Max(p, eps), 1-eps)
	return math.Log(p / (1 - p))
}

// Sigmoid returns 1 / (1 + exp(-z)).
func Sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// LogLoss returns the mean binary cross entropy of the probabilities
// p = sigmoid(z / t) for the logits z and labels (0 real, 1 fake) at
// temperature t, computed stably from the logits.
func LogLoss(z []float64, labels []int, t float64) (float64, error) {
	if len(z) == 0 || len(z) != len(labels) {
		return 0, fmt.Errorf("log loss: %d logits, %d labels", len(z), len(labels))
	}
	if !(t > 0) || math.IsInf(t, 0) {
		return 0, fmt.Errorf("log loss: temperature %v must be positive and finite", t)
	}
	var sum float64
	for i, zi := range z {
		a := zi / t
		if labels[i] == 0 {
			a = -a
		}
		sum += softplus(-a) // -log sigmoid(a)
	}
	return sum / float64(len(z)), nil
}

// softplus returns log(1 + exp(x)) without overflow.
func softplus(x float64) float64 {
	if x > 30 {
		return x
	}
	return math.Log1p(math.Exp(x))
}

// Calibration is the result of temperature scaling on a validation set.
type Calibration struct {
	Temperature float64 `json:"temperature"`      // divide the logit difference by it
	LogLossRaw  float64 `json:"log_loss_raw"`     // at temperature 1
	LogLoss     float64 `json:"log_loss"`         // at Temperature
	Improved    bool    `json:"improved"`         // Temperature != 1 lowers the log loss
	N           int     `json:"n"`                // records fitted
	Note        string  `json:"note,omitempty"`   // why the temperature was kept at 1
	Source      string  `json:"source,omitempty"` // the validation set
}

// FitTemperature chooses the temperature T > 0 that minimises the log loss
// of sigmoid(z/T) on validation logits z (Guo et al. 2017, for two
// classes): a golden-section search over log T in [log 0.05, log 20], the
// loss being unimodal in 1/T. The temperature stays 1 when scaling does not
// lower the loss by at least 1e-4 (a calibrated model is left alone).
func FitTemperature(z []float64, labels []int) (Calibration, error) {
	if err := checkBoth(z, labels); err != nil {
		return Calibration{}, fmt.Errorf("temperature: %w", err)
	}
	for i, v := range z {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Calibration{}, fmt.Errorf("temperature: logit %d is %v", i, v)
		}
	}
	f := func(logT float64) float64 {
		l, _ := LogLoss(z, labels, math.Exp(logT))
		return l
	}
	a, b := math.Log(0.05), math.Log(20)
	phi := (math.Sqrt(5) - 1) / 2
	c, d := b-phi*(b-a), a+phi*(b-a)
	fc, fd := f(c), f(d)
	for i := 0; i < 80; i++ {
		if fc < fd {
			b, d, fd = d, c, fc
			c = b - phi*(b-a)
			fc = f(c)
		} else {
			a, c, fc = c, d, fd
			d = a + phi*(b-a)
			fd = f(d)
		}
	}
	t := math.Exp((a + b) / 2)
	raw := f(0)
	cal := Calibration{Temperature: 1, LogLossRaw: raw, LogLoss: raw, N: len(z)}
	if best := f(math.Log(t)); best < raw-1e-4 {
		cal.Temperature, cal.LogLoss, cal.Improved = t, best, true
	} else {
		cal.Note = "temperature scaling did not lower the validation log loss"
	}
	return cal, nil
}

// ThresholdAtRealRate returns the smallest threshold on p_fake at which at
// least the fraction keep of the real scores fall below it (are called
// real): the keep-quantile of the reals, placed halfway to the next higher
// score so that ties and rounding do not flip it. keep is in (0, 1].
func ThresholdAtRealRate(scores []float64, labels []int, keep float64) (float64, error) {
	if err := check(scores, labels); err != nil {
		return 0, fmt.Errorf("threshold: %w", err)
	}
	if !(keep > 0 && keep <= 1) {
		return 0, fmt.Errorf("threshold: fraction of reals %v outside (0, 1]", keep)
	}
	var reals, all []float64
	for i, s := range scores {
		all = append(all, s)
		if labels[i] == 0 {
			reals = append(reals, s)
		}
	}
	if len(reals) == 0 {
		return 0, errors.New("threshold: no real scores")
	}
	sort.Float64s(reals)
	sort.Float64s(all)
	k := int(math.Ceil(keep*float64(len(reals)))) - 1 // reals[0..k] must be below
	v := reals[k]
	// The next score above v among all records: the threshold sits between.
	j := sort.SearchFloat64s(all, math.Nextafter(v, math.Inf(1)))
	if j == len(all) {
		return math.Min(1, math.Nextafter(v, math.Inf(1))), nil
	}
	return (v + all[j]) / 2, nil
}

// ThresholdBalanced returns the threshold on p_fake that maximises the
// balanced accuracy (mean of the accuracy on reals and on fakes; Youden's
// J), placed halfway between the two scores it separates.
func ThresholdBalanced(scores []float64, labels []int) (float64, error) {
	if err := checkBoth(scores, labels); err != nil {
		return 0, fmt.Errorf("threshold: %w", err)
	}
	ss := sorted(scores, labels, false) // ascending
	neg, pos := counts(labels)
	// Threshold below ss[0]: everything fake.
	realsBelow, fakesBelow := 0, 0
	best, bestThr := -1.0, ss[0].s/2
	for i := 0; i <= len(ss); i++ {
		if i == 0 || i == len(ss) || ss[i].s != ss[i-1].s {
			thr := 0.0
			switch {
			case i == 0:
				thr = ss[0].s / 2
			case i == len(ss):
				thr = (ss[i-1].s + 1) / 2
			default:
				thr = (ss[i-1].s + ss[i].s) / 2
			}
			bal := (float64(realsBelow)/float64(neg) + float64(pos-fakesBelow)/float64(pos)) / 2
			if bal > best {
				best, bestThr = bal, thr
			}
		}
		if i < len(ss) {
			if ss[i].l == 0 {
				realsBelow++
			} else {
				fakesBelow++
			}
		}
	}
	return bestThr, nil
}

// ApplyTemperature rescales the p_fake of every record to
// sigmoid(logit(p_fake) / t) in place (t = 1 leaves them unchanged).
func ApplyTemperature(recs []Record, t float64) {
	if t == 1 {
		return
	}
	for i := range recs {
		recs[i].PFake = Sigmoid(Logit(recs[i].PFake) / t)
	}
}
