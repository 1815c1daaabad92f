package train

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func keys(t *testing.T, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// The records write the keys metrics.jsonl has always had, and read lines
// written before they existed (maps marshalled with sorted keys).
func TestRecordsFormat(t *testing.T) {
	want := []string{"acc", "batch", "epoch", "images_per_s", "kind", "lambda", "loss", "loss_cls", "loss_seg", "lr", "step"}
	if got := keys(t, StepRecord{Kind: KindStep}); !slices.Equal(got, want) {
		t.Errorf("step keys %v, want %v", got, want)
	}
	if got, want := keys(t, EpochRecord{Kind: KindEpoch}), []string{"epoch", "kind", "seconds", "step"}; !slices.Equal(got, want) {
		t.Errorf("epoch keys without numbers %v, want %v", got, want)
	}
	full := EpochRecord{Kind: KindEpoch, Epoch: 1, Step: 6, Seconds: 2.5, TrainLoss: ptr(0.5), TrainAcc: ptr(0),
		TrainLossCls: ptr(0.25), TrainLossSeg: ptr(0.25), ValAUC: ptr(0.75), ValAcc: ptr(0)}
	want = []string{"epoch", "kind", "seconds", "step", "train_acc", "train_loss", "train_loss_cls", "train_loss_seg", "val_acc", "val_auc"}
	if got := keys(t, full); !slices.Equal(got, want) {
		t.Errorf("epoch keys %v, want %v (zeros kept)", got, want)
	}
	m := full.Map()
	if m["epoch"] != 1 || m["step"] != 6 || m["kind"] != "epoch" || m["train_acc"] != 0.0 || m["val_auc"] != 0.75 || len(m) != len(want) {
		t.Errorf("Map() = %v", m)
	}
	if got, want := full.summary(), "train_loss 0.5000, train_acc 0.0000, val_auc 0.7500, val_acc 0.0000, seconds 2.5000"; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}

	old := `{"acc":0.75,"batch":2,"epoch":0,"images_per_s":41.5,"kind":"step","lambda":1,"loss":0.6,"loss_cls":0.4,"loss_seg":0.2,"lr":0.0002,"step":3}`
	var s StepRecord
	if err := json.Unmarshal([]byte(old), &s); err != nil {
		t.Fatal(err)
	}
	if ws := (StepRecord{Kind: "step", Epoch: 0, Step: 3, Batch: 2, Loss: 0.6, LossCls: 0.4, LossSeg: 0.2, Acc: 0.75, Lambda: 1, LR: 0.0002, ImagesPerS: 41.5}); s != ws {
		t.Errorf("old step line read as %+v, want %+v", s, ws)
	}
	old = `{"epoch":0,"kind":"epoch","seconds":12.5,"step":3,"train_acc":0.5,"train_loss":0.7,"train_loss_cls":0.5,"train_loss_seg":0.2,"val_auc":0.9}`
	var e EpochRecord
	if err := json.Unmarshal([]byte(old), &e); err != nil {
		t.Fatal(err)
	}
	we := EpochRecord{Kind: "epoch", Step: 3, Seconds: 12.5, TrainLoss: ptr(0.7), TrainAcc: ptr(0.5), TrainLossCls: ptr(0.5), TrainLossSeg: ptr(0.2), ValAUC: ptr(0.9)}
	if !reflect.DeepEqual(e, we) {
		t.Errorf("old epoch line read as %+v, want %+v", e, we)
	}
}
