package metrics

import (
	"math"
	"testing"
)

func TestLogLossByHand(t *testing.T) {
	// z = 0: p = 0.5 whatever the label, loss log 2.
	// z = log 3 (p = 0.75), label 1: -log 0.75; label 0: -log 0.25.
	z := []float64{0, math.Log(3), math.Log(3)}
	y := []int{1, 1, 0}
	want := (math.Log(2) - math.Log(0.75) - math.Log(0.25)) / 3
	got, err := LogLoss(z, y, 1)
	if err != nil || math.Abs(got-want) > 1e-12 {
		t.Fatalf("LogLoss = %v, %v; want %v", got, err, want)
	}
	// Temperature 2 halves the logit: p = sigmoid(log(3)/2) = sqrt(3)/(1+sqrt(3)).
	p := math.Sqrt(3) / (1 + math.Sqrt(3))
	want = (math.Log(2) - math.Log(p) - math.Log(1-p)) / 3
	if got, _ = LogLoss(z, y, 2); math.Abs(got-want) > 1e-12 {
		t.Fatalf("LogLoss(T=2) = %v, want %v", got, want)
	}
	if _, err := LogLoss(z, y, 0); err == nil {
		t.Fatal("temperature 0 accepted")
	}
	if _, err := LogLoss(z, y[:2], 1); err == nil {
		t.Fatal("length mismatch accepted")
	}
}

func TestFitTemperature(t *testing.T) {
	// One real at z = -a and one fake at z = +a, plus one fake at -a:
	// with s = a/T, loss(s) = (2 log(1+e^-s) + log(1+e^s)) / 3, whose
	// minimum is at e^s = 2, s = log 2. With a = 4 log 2: T = 4.
	a := 4 * math.Log(2)
	z := []float64{-a, a, -a}
	y := []int{0, 1, 1}
	cal, err := FitTemperature(z, y)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(cal.Temperature-4) > 1e-6 || !cal.Improved {
		t.Fatalf("temperature %v (improved %v), want 4", cal.Temperature, cal.Improved)
	}
	want := (2*math.Log(1.5) + math.Log(3)) / 3
	if math.Abs(cal.LogLoss-want) > 1e-9 {
		t.Fatalf("log loss %v, want %v", cal.LogLoss, want)
	}
	// Already calibrated: the optimum of the same data is at s = log 2, so
	// logits of exactly +-log 2 need no scaling.
	cal, err = FitTemperature([]float64{-math.Log(2), math.Log(2), -math.Log(2)}, y)
	if err != nil || cal.Temperature != 1 || cal.Improved || cal.Note == "" {
		t.Fatalf("calibrated input: %+v, %v", cal, err)
	}
	if _, err := FitTemperature([]float64{1, 2}, []int{1, 1}); err == nil {
		t.Fatal("one class accepted")
	}
	if _, err := FitTemperature([]float64{math.Inf(1), 2}, []int{0, 1}); err == nil {
		t.Fatal("infinite logit accepted")
	}
}

func TestThresholds(t *testing.T) {
	scores := []float64{0.1, 0.2, 0.3, 0.4, 0.35, 0.6, 0.9}
	labels := []int{0, 0, 0, 0, 1, 1, 1}
	tests := []struct {
		keep, want float64
	}{
		{1, 0.5},      // all four reals below: between 0.4 and 0.6
		{0.75, 0.325}, // three reals (0.1, 0.2, 0.3): between 0.3 and 0.35
		{0.5, 0.25},   // two reals: between 0.2 and 0.3
		{0.01, 0.15},  // one real
	}
	for _, tc := range tests {
		got, err := ThresholdAtRealRate(scores, labels, tc.keep)
		if err != nil || math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("keep %v: %v, %v; want %v", tc.keep, got, err, tc.want)
		}
	}
	// The highest score is a real: the threshold lies just above it.
	if got, _ := ThresholdAtRealRate([]float64{0.2, 0.7}, []int{1, 0}, 1); !(got > 0.7 && got < 0.7+1e-9) {
		t.Errorf("top real: %v", got)
	}
	if _, err := ThresholdAtRealRate(scores, labels, 0); err == nil {
		t.Error("keep 0 accepted")
	}
	if _, err := ThresholdAtRealRate([]float64{0.5}, []int{1}, 0.9); err == nil {
		t.Error("no reals accepted")
	}
	// Balanced accuracy: at 0.325 reals 3/4, fakes 3/3 -> 0.875; at 0.5
	// reals 4/4, fakes 2/3 -> 0.833; at 0.375 reals 3/4, fakes 2/3. Best 0.325.
	got, err := ThresholdBalanced(scores, labels)
	if err != nil || math.Abs(got-0.325) > 1e-12 {
		t.Errorf("balanced: %v, %v; want 0.325", got, err)
	}
	// Perfect separation: halfway between the classes.
	if got, _ := ThresholdBalanced([]float64{0.1, 0.2, 0.8}, []int{0, 0, 1}); math.Abs(got-0.5) > 1e-12 {
		t.Errorf("separable: %v, want 0.5", got)
	}
	// Logit and Sigmoid invert each other.
	for _, p := range []float64{0.01, 0.5, 0.73} {
		if q := Sigmoid(Logit(p)); math.Abs(q-p) > 1e-12 {
			t.Errorf("Sigmoid(Logit(%v)) = %v", p, q)
		}
	}
}
