package checkpoint

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/lvnet-go/lvnet/internal/fsutil"
	"github.com/lvnet-go/lvnet/model"
	"github.com/lvnet-go/lvnet/weights"
)

// Formats Import reads.
const (
	// FormatOfficial is a training checkpoint of the authors' code,
	// {"epoch", "state_dict", "optimizer"} written by torch.save, or a plain
	// state dict; keys may carry DistributedDataParallel's "module." prefix.
	// A "pro_header.*" entry marks the semi-supervised model
	// (LVNet_semi.py, Config.SSPSL).
	FormatOfficial = "official"
	// FormatXceptionImageNet is the ImageNet Xception state dict the authors
	// start from; it initialises both backbones.
	FormatXceptionImageNet = "xception-imagenet"
)

// srmKernel is the fixed SRM filter bank; the model builds it itself, so a
// file may lack it.
const srmKernel = "srm_conv0.kernel"

// ImportOptions adjust Import.
type ImportOptions struct {
	// Format of the file: FormatOfficial or FormatXceptionImageNet.
	Format string
	// AllowPartial accepts files that lack tensors they should hold (those
	// keep the model's default initialisation) or hold tensors the model
	// lacks (those are dropped). Mis-shaped tensors are always an error.
	AllowPartial bool
	// Seed of the default initialisation of the tensors the file does not
	// provide.
	Seed uint64
	// Config of the model to build; the zero value selects model.Paper().
	// For FormatOfficial, SSPSL is set from the file's keys.
	Config model.Config
}

// Imported is the outcome of Import.
type Imported struct {
	Model *model.LVNet
	// Meta holds the model's config and the provenance of the weights (the
	// source file's name, format and SHA-256; the epoch of an official
	// checkpoint). Pass it to Save.
	Meta Meta
	// Report compares the file (after key mapping) with the model:
	// Missing lists the tensors the format should provide but the file
	// lacks (left at the default initialisation), Unexpected the file's
	// tensors the model lacks (dropped), Mismatched those of the wrong
	// shape or dtype.
	Report weights.Report
	// Defaulted lists every tensor of the model left at its default
	// initialisation, sorted: Missing plus those the format never provides
	// (for xception-imagenet: everything outside the backbones).
	Defaulted []string
	// Loaded is the number of tensors taken from the file.
	Loaded int
}

// Import builds a model from a file of another format (see ImportOptions).
// The model is built with the default initialisation and the file's tensors
// are copied in. The file must provide every tensor its format holds and
// nothing the model lacks, unless opts.AllowPartial; the error then lists
// the differences (Imported is returned with it, without a model, so the
// caller can show them in full).
func Import(path string, opts ImportOptions) (*Imported, error) {
	cfg := opts.Config
	if cfg == (model.Config{}) {
		cfg = model.Paper()
	}
	switch opts.Format {
	case FormatOfficial, FormatXceptionImageNet:
	case "":
		return nil, fmt.Errorf("import %s: no format given (want %s or %s)", path, FormatOfficial, FormatXceptionImageNet)
	default:
		return nil, fmt.Errorf("import %s: unknown format %q (want %s or %s)", path, opts.Format, FormatOfficial, FormatXceptionImageNet)
	}
	sum, err := fsutil.SHA256(path)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	sd, other, err := weights.ReadStateDict(path)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	prov := Provenance{
		Source:     SourceImported,
		From:       filepath.Base(path),
		FromFormat: opts.Format,
		FromSHA256: sum,
		Seed:       opts.Seed,
	}
	var arrs map[string]weights.Array
	// required reports whether the format must provide a model key.
	var required func(key string) bool
	switch opts.Format {
	case FormatOfficial:
		arrs = weights.FromOfficial(sd)
		_, cfg.SSPSL = hasPrefix(arrs, "pro_header.")
		required = func(k string) bool { return k != srmKernel }
		if e, ok := other["epoch"]; ok {
			if n, ok := e.(int64); ok {
				prov.SourceEpoch = &n
			}
		}
	case FormatXceptionImageNet:
		if len(other) != 0 {
			return nil, fmt.Errorf("import %s: a training checkpoint (entries %s), not the plain ImageNet Xception state dict; use --format %s for the authors' checkpoints",
				path, strings.Join(sortedKeys(other), ", "), FormatOfficial)
		}
		if k, ok := hasPrefix(sd, "module."); ok {
			return nil, fmt.Errorf("import %s: key %q: an LVNet checkpoint, not the ImageNet Xception state dict; use --format %s", path, k, FormatOfficial)
		}
		if arrs, err = weights.FromXceptionImageNet(sd); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		required = func(k string) bool {
			for _, p := range []string{weights.RGBPrefix, weights.SRMPrefix} {
				if rest, ok := strings.CutPrefix(k, p); ok {
					return !strings.HasPrefix(rest, "last_linear.")
				}
			}
			return false
		}
	}

	m, err := model.New(cfg, opts.Seed)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", path, err)
	}
	rep := weights.Check(m.KeyShapes(), arrs)
	var missing, defaulted []string
	for _, k := range rep.Missing {
		defaulted = append(defaulted, k)
		if required(k) {
			missing = append(missing, k)
		}
	}
	rep.Missing = missing
	sort.Strings(defaulted)
	imp := &Imported{Report: rep, Defaulted: defaulted}
	switch {
	case len(rep.Mismatched) > 0:
		m.Free()
		return imp, fmt.Errorf("import %s: tensors of the wrong shape or dtype: %s", path, rep.String())
	case !opts.AllowPartial && (len(rep.Missing) > 0 || len(rep.Unexpected) > 0):
		m.Free()
		return imp, fmt.Errorf("import %s: the file does not match the model (pass --allow-partial to keep the default initialisation of missing tensors and drop unexpected ones): %s",
			path, rep.String())
	}
	for _, k := range rep.Unexpected {
		delete(arrs, k)
	}
	if _, err := m.SetState(arrs); err != nil {
		m.Free()
		return imp, fmt.Errorf("import %s: %w", path, err)
	}
	imp.Model = m
	imp.Loaded = len(arrs)
	imp.Meta = Meta{Config: cfg, Provenance: prov}
	return imp, nil
}

// hasPrefix returns a key of m starting with prefix (the smallest), if any.
func hasPrefix[V any](m map[string]V, prefix string) (string, bool) {
	best, found := "", false
	for k := range m {
		if strings.HasPrefix(k, prefix) && (!found || k < best) {
			best, found = k, true
		}
	}
	return best, found
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// GroupKeys summarises a list of state-dict keys by module, for messages:
// "HBFusion (6), cls_header (7), xception_srm.model (232)": keys are
// grouped by their first component, backbone keys by backbone.
func GroupKeys(keys []string) string {
	counts := map[string]int{}
	var order []string
	for _, k := range keys {
		parts := strings.Split(k, ".")
		n := 1
		if len(parts) > 2 && strings.HasPrefix(k, "xception_") {
			n = 2
		}
		g := strings.Join(parts[:min(n, len(parts))], ".")
		if counts[g] == 0 {
			order = append(order, g)
		}
		counts[g]++
	}
	sort.Strings(order)
	items := make([]string, len(order))
	for i, g := range order {
		items[i] = fmt.Sprintf("%s (%d)", g, counts[g])
	}
	return strings.Join(items, ", ")
}
