package detect

// Response is the JSON document of `lvnet detect --json` (and of the
// server's POST /v1/detect): the results of the inputs that could be
// analysed, in input order, and the failures of the others.
type Response struct {
	Results []*Result `json:"results"`
	Errors  []Failure `json:"errors,omitempty"`
}

// Failure is an input that could not be analysed.
type Failure struct {
	Input string `json:"input"`
	Error string `json:"error"` // the reason, without the input's name
}
