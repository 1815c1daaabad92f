package model

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/lvnet-go/lvnet/internal/shared"
)

type keyShape struct {
	Key   string  `json:"key"`
	Shape []int64 `json:"shape"`
	DType string  `json:"dtype"`
}

func readKeys(t testing.TB) []keyShape {
	t.Helper()
	b, err := os.ReadFile(shared.Path(t, "golden", "state_dict_keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ks []keyShape
	if err := json.Unmarshal(b, &ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

// The paper configuration (without the SSPSL head, which the authors'
// supervised model lacks) has exactly the authors' state-dict keys, shapes and
// order.
func TestStateDictKeysMatchAuthors(t *testing.T) {
	ks := readKeys(t)
	cfg := Paper()
	cfg.SSPSL = false
	m, err := New(cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	es := m.Store.Entries()
	if len(es) != len(ks) {
		t.Errorf("model has %d tensors, authors' state dict %d", len(es), len(ks))
	}
	for i := 0; i < len(es) && i < len(ks); i++ {
		e, k := es[i], ks[i]
		if e.Name != k.Key {
			t.Fatalf("tensor %d: name %s, authors' %s", i, e.Name, k.Key)
		}
		got := e.T.Shape()
		if len(got) != len(k.Shape) {
			t.Errorf("%s: shape %v, authors' %v", e.Name, got, k.Shape)
			continue
		}
		for j := range got {
			if got[j] != k.Shape[j] {
				t.Errorf("%s: shape %v, authors' %v", e.Name, got, k.Shape)
				break
			}
		}
		if e.T.DType().String() != k.DType {
			t.Errorf("%s: dtype %v, authors' %s", e.Name, e.T.DType(), k.DType)
		}
	}
}
