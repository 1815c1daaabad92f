package model_test

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/lvnet-go/lvnet/internal/modeltest"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/weights"
)

// The authors' state-dict layout (../shared/golden/state_dict_keys.json):
// its number of tensors and the digest of its keys, shapes and dtypes in
// order (layoutDigest), so that the layout is checked without ../shared.
const (
	authorsKeyCount  = 695
	authorsKeyDigest = "1027073159d0f668e2302e2934efb85bbdcf14e08ab0a2be1d25b692f13b62fe"
)

// layoutDigest is the SHA-256 of one "key shape dtype" line per tensor.
func layoutDigest(ks []weights.KeyShape) string {
	h := sha256.New()
	for _, k := range ks {
		fmt.Fprintf(h, "%s %v %s\n", k.Key, k.Shape, k.DType)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// supervisedKeys returns the key layout of the paper configuration without
// the SSPSL head, which the authors' supervised model lacks.
func supervisedKeys(t *testing.T) []weights.KeyShape {
	m, err := model.New(modeltest.PaperSupervised(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Free()
	return m.KeyShapes()
}

// The paper configuration has exactly the authors' state-dict keys, shapes,
// dtypes and order (by digest: TestStateDictKeysMatchAuthorsList names the
// first difference).
func TestStateDictKeysMatchAuthors(t *testing.T) {
	ks := supervisedKeys(t)
	if len(ks) != authorsKeyCount || layoutDigest(ks) != authorsKeyDigest {
		t.Errorf("layout of %d tensors (digest %s) differs from the authors' %d (%s)", len(ks), layoutDigest(ks), authorsKeyCount, authorsKeyDigest)
	}
}

// The same, key by key, against the authors' list in ../shared, whose digest
// is the one TestStateDictKeysMatchAuthors checks.
func TestStateDictKeysMatchAuthorsList(t *testing.T) {
	want := modeltest.AuthorsKeys(t)
	if len(want) != authorsKeyCount || layoutDigest(want) != authorsKeyDigest {
		t.Errorf("authors' list: %d tensors, digest %s; the constants say %d, %s", len(want), layoutDigest(want), authorsKeyCount, authorsKeyDigest)
	}
	got := supervisedKeys(t)
	if len(got) != len(want) {
		t.Errorf("model has %d tensors, authors' state dict %d", len(got), len(want))
	}
	for i := 0; i < len(got) && i < len(want); i++ {
		g, w := got[i], want[i]
		if g.Key != w.Key {
			t.Fatalf("tensor %d: name %s, authors' %s", i, g.Key, w.Key)
		}
		if !slices.Equal(g.Shape, w.Shape) {
			t.Errorf("%s: shape %v, authors' %v", g.Key, g.Shape, w.Shape)
		}
		if g.DType != w.DType {
			t.Errorf("%s: dtype %v, authors' %s", g.Key, g.DType, w.DType)
		}
	}
}
