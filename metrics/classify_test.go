package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func sliceNear(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !(near(a[i], b[i]) || (math.IsInf(a[i], 1) && math.IsInf(b[i], 1))) {
			return false
		}
	}
	return true
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name   string
		scores []float64
		labels []int
		want   float64
	}{
		// Pairs (fake, real): 0.9>0.5 twice = 2, 0.5 vs 0.5 ties twice = 1 -> 3/4.
		{"ties", []float64{0.5, 0.5, 0.5, 0.9}, []int{0, 1, 0, 1}, 0.75},
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []int{0, 0, 1, 1}, 1},
		{"inverted", []float64{0.9, 0.8, 0.2, 0.1}, []int{0, 0, 1, 1}, 0},
		{"all tied", []float64{0.3, 0.3, 0.3}, []int{0, 1, 1}, 0.5},
		// scikit-learn's roc_auc_score documentation example.
		{"sklearn example", []float64{0.1, 0.4, 0.35, 0.8}, []int{0, 0, 1, 1}, 0.75},
		// Fakes 0.9, 0.3 against reals 0.2, 0.7, 0.1: 3 + 2 wins of 6.
		{"five", []float64{0.2, 0.7, 0.9, 0.3, 0.1}, []int{0, 0, 1, 1, 0}, 5.0 / 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AUC(tc.scores, tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want) {
				t.Errorf("AUC = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name    string
		scores  []float64
		labels  []int
		wantMsg string
	}{
		{"one class", []float64{0.1, 0.9}, []int{1, 1}, "only one class"},
		{"only reals", []float64{0.1, 0.9}, []int{0, 0}, "only one class"},
		{"nan", []float64{0.1, math.NaN()}, []int{0, 1}, "score 1 is NaN"},
		{"inf", []float64{math.Inf(1), 0.2}, []int{0, 1}, "score 0 is +Inf"},
		{"length", []float64{0.1, 0.2}, []int{0}, "2 scores but 1 labels"},
		{"empty", nil, nil, "no samples"},
		{"label", []float64{0.1, 0.2}, []int{0, 2}, "label 1 is 2"},
	}
	funcs := map[string]func(s []float64, l []int) error{
		"AUC": func(s []float64, l []int) error { _, err := AUC(s, l); return err },
		"ROC": func(s []float64, l []int) error { _, _, _, err := ROC(s, l); return err },
		"EER": func(s []float64, l []int) error { _, _, err := EER(s, l); return err },
	}
	for _, tc := range tests {
		for fname, f := range funcs {
			t.Run(tc.name+"/"+fname, func(t *testing.T) {
				err := f(tc.scores, tc.labels)
				if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantMsg)
				}
			})
		}
	}
	if _, err := AUC([]float64{0.1, 0.9}, []int{1, 1}); !errors.Is(err, ErrOneClass) {
		t.Errorf("one-class error %v does not wrap ErrOneClass", err)
	}
	if _, err := AveragePrecision([]float64{0.1, 0.9}, []int{0, 0}); !errors.Is(err, ErrOneClass) {
		t.Errorf("AP without fakes: error %v, want ErrOneClass", err)
	}
	if _, _, _, err := Accuracy([]float64{math.NaN()}, []int{0}, 0.5); err == nil {
		t.Error("Accuracy accepted a NaN score")
	}
}

func TestROC(t *testing.T) {
	// scikit-learn's roc_curve documentation example.
	fpr, tpr, thr, err := ROC([]float64{0.1, 0.4, 0.35, 0.8}, []int{0, 0, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0, 0, 0.5, 0.5, 1}; !sliceNear(fpr, want) {
		t.Errorf("fpr = %v, want %v", fpr, want)
	}
	if want := []float64{0, 0.5, 0.5, 1, 1}; !sliceNear(tpr, want) {
		t.Errorf("tpr = %v, want %v", tpr, want)
	}
	if want := []float64{math.Inf(1), 0.8, 0.4, 0.35, 0.1}; !sliceNear(thr, want) {
		t.Errorf("thresholds = %v, want %v", thr, want)
	}
	// Ties collapse into one point.
	fpr, tpr, _, err = ROC([]float64{0.5, 0.5, 0.5, 0.9}, []int{0, 1, 0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if !sliceNear(fpr, []float64{0, 0, 1}) || !sliceNear(tpr, []float64{0, 0.5, 1}) {
		t.Errorf("tied ROC = %v, %v; want [0 0 1], [0 0.5 1]", fpr, tpr)
	}
}

func TestPRAndAP(t *testing.T) {
	// scikit-learn's precision_recall_curve / average_precision_score
	// documentation example. Descending: 0.8 fake, 0.4 real, 0.35 fake,
	// 0.1 real -> (P,R) = (1,.5) (.5,.5) (2/3,1) (.5,1);
	// AP = .5*1 + 0*.5 + .5*2/3 + 0*.5 = 5/6.
	s, l := []float64{0.1, 0.4, 0.35, 0.8}, []int{0, 0, 1, 1}
	p, r, thr, err := PR(s, l)
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{0.5, 2.0 / 3, 0.5, 1, 1}; !sliceNear(p, want) {
		t.Errorf("precision = %v, want %v", p, want)
	}
	if want := []float64{1, 1, 0.5, 0.5, 0}; !sliceNear(r, want) {
		t.Errorf("recall = %v, want %v", r, want)
	}
	if want := []float64{0.1, 0.35, 0.4, 0.8}; !sliceNear(thr, want) {
		t.Errorf("thresholds = %v, want %v", thr, want)
	}
	tests := []struct {
		name   string
		scores []float64
		labels []int
		want   float64
	}{
		{"sklearn example", s, l, 5.0 / 6},
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []int{0, 0, 1, 1}, 1},
		// Inverted: fakes found last, at precision 1/3 then 2/4.
		{"inverted", []float64{0.9, 0.8, 0.2, 0.1}, []int{0, 0, 1, 1}, 0.5*1.0/3 + 0.5*0.5},
		// One tied group of everything: precision 2/4 at recall 1.
		{"all tied", []float64{0.5, 0.5, 0.5, 0.5}, []int{0, 1, 0, 1}, 0.5},
		{"no reals", []float64{0.3, 0.7}, []int{1, 1}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AveragePrecision(tc.scores, tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			if !near(got, tc.want) {
				t.Errorf("AP = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestEER(t *testing.T) {
	tests := []struct {
		name          string
		scores        []float64
		labels        []int
		wantEER, wThr float64
	}{
		// ROC (fpr, fnr): (0,1) (0,.5)@.9 (1/3,.5)@.8 (1/3,0)@.7 ...
		// FPR-FNR goes -1/6 -> 1/3 between thresholds .8 and .7, t = 1/3:
		// EER = 1/3, threshold = .8 - .1/3.
		{"vertical step", []float64{0.9, 0.8, 0.7, 0.6, 0.5}, []int{1, 0, 1, 0, 0}, 1.0 / 3, 0.8 - 0.1/3},
		// (0,.5)@.9 then the tie at .6 jumps to (.5,0): d -.5 -> .5, t = .5:
		// EER = .25, threshold = .75.
		{"diagonal tie", []float64{0.9, 0.6, 0.6, 0.2}, []int{1, 1, 0, 0}, 0.25, 0.75},
		// Exact crossing at (.5,.5) with threshold .4.
		{"exact", []float64{0.1, 0.4, 0.35, 0.8}, []int{0, 0, 1, 1}, 0.5, 0.4},
		// Perfect: FPR = FNR = 0 at the lowest fake score.
		{"perfect", []float64{0.1, 0.2, 0.8, 0.9}, []int{0, 0, 1, 1}, 0, 0.8},
		// Inverted: (fpr, fnr) = (0,1) (.5,1)@.9 (1,1)@.8: d = -1, -.5, 0,
		// an exact crossing at EER 1, threshold .8.
		{"inverted", []float64{0.9, 0.8, 0.2, 0.1}, []int{0, 0, 1, 1}, 1, 0.8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			eer, thr, err := EER(tc.scores, tc.labels)
			if err != nil {
				t.Fatal(err)
			}
			if !near(eer, tc.wantEER) || !near(thr, tc.wThr) {
				t.Errorf("EER = %v at %v, want %v at %v", eer, thr, tc.wantEER, tc.wThr)
			}
		})
	}
}

func TestAccuracy(t *testing.T) {
	// Predictions at 0.5 (strictly above is fake): 0 0 1 0 1.
	all, real, fake, err := Accuracy([]float64{0.2, 0.5, 0.7, 0.4, 0.9}, []int{0, 0, 0, 1, 1}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if !near(all, 3.0/5) || !near(real, 2.0/3) || !near(fake, 1.0/2) {
		t.Errorf("accuracy = %v, %v, %v; want 3/5, 2/3, 1/2", all, real, fake)
	}
	_, real, fake, err = Accuracy([]float64{0.9, 0.8}, []int{1, 1}, 0.5)
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(real) || fake != 1 {
		t.Errorf("fakes only: real %v fake %v, want NaN and 1", real, fake)
	}
}

func TestGroupMean(t *testing.T) {
	s := []float64{0.2, 0.7, 0.9, 0.3, 0.1}
	l := []int{0, 0, 1, 1, 0}
	g := []string{"a", "a", "b", "b", "c"}
	vs, vl, err := GroupMean(s, l, g)
	if err != nil {
		t.Fatal(err)
	}
	if !sliceNear(vs, []float64{0.45, 0.6, 0.1}) || len(vl) != 3 || vl[0] != 0 || vl[1] != 1 || vl[2] != 0 {
		t.Errorf("GroupMean = %v %v, want [0.45 0.6 0.1] [0 1 0]", vs, vl)
	}
	// Frame AUC is 5/6 (TestAUC "five"); per video the fake wins both pairs.
	auc, err := VideoAUC(s, l, g)
	if err != nil {
		t.Fatal(err)
	}
	if auc != 1 {
		t.Errorf("VideoAUC = %v, want 1", auc)
	}
	if _, _, err := GroupMean(s, []int{0, 1, 1, 1, 0}, g); err == nil || !strings.Contains(err.Error(), `video "a"`) {
		t.Errorf("mixed labels in a video: error %v, want one naming video a", err)
	}
	if _, _, err := GroupMean(s, l, g[:2]); err == nil {
		t.Error("GroupMean accepted fewer groups than scores")
	}
}

func BenchmarkAUC(b *testing.B) {
	n := 100000
	s := make([]float64, n)
	l := make([]int, n)
	for i := range s {
		s[i] = math.Mod(float64(i)*0.6180339887, 1)
		l[i] = i % 2
	}
	for b.Loop() {
		if _, err := AUC(s, l); err != nil {
			b.Fatal(err)
		}
	}
}
