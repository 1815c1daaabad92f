package detect

import (
	"context"
	"errors"
	"image"
	"sync"

	"github.com/lvnet-go/lvnet/face"
	"github.com/lvnet-go/lvnet/media"
	"github.com/lvnet-go/lvnet/torch"
)

// A run is one AnalyzeAll call. Producer goroutines (produce.go) decode the
// inputs, find and cut out the faces and send them as frames; the calling
// goroutine (loop) batches the faces through the model and accumulates the
// scores per input; when an input is complete a finisher goroutine
// (finish.go) builds its Result and draws its heatmap, and the loop hands
// the results over in input order.
type run struct {
	p     *Pipeline
	ins   []Input
	opts  Options
	each  func(int, *Result, error)
	size  int      // the model's input size
	names []string // heatmap file names, per input (with Options.Heatmaps)

	msgs       chan msg       // from the producers
	stop       chan struct{}  // closed when the run ends: producers give up
	fin        chan finished  // from the finishers
	fsem       chan struct{}  // bounds the finishers running at once
	pwg        sync.WaitGroup // producers
	fwg        sync.WaitGroup // finishers
	accs       []*acc         // per input; touched by the loop only
	pend       []pendingFace  // faces waiting for a forward pass
	prog       Progress       // counts for the WithProgress function
	onProgress func(Progress)
	recv       int        // inputs whose producer has finished
	out        deliveries // results waiting to be handed over in order
}

// msg is what a producer sends: a frame with its faces, or the end of an
// input.
type msg struct {
	frame *frameMsg
	done  *doneMsg
}

// free releases the tensors of a message that will not be scored.
func (m msg) free() {
	if m.frame != nil {
		for _, f := range m.frame.faces {
			f.x.Free()
		}
	}
}

// frameMsg is a photo or a video frame with the faces cut out of it.
type frameMsg struct {
	in    int
	index int     // frame number in the video (0 for photos)
	time  float64 // seconds
	img   *image.RGBA
	video bool
	faces []cropFace
}

// cropFace is one face of a frame, ready for the model.
type cropFace struct {
	box   face.Box // detector box, input pixels
	crop  face.Box // square the crop was cut from
	score float32  // detector confidence
	id    int      // track id (videos)
	x     *torch.Tensor
}

// doneMsg ends an input: what it was, and how reading it went.
type doneMsg struct {
	in         int
	kind       string
	w, h       int
	video      *media.VideoInfo
	warnings   []string
	incomplete bool
	err        error // the input could not be analysed
}

// pendingFace is a face waiting for the model.
type pendingFace struct {
	a     *acc
	fr    *frameRec
	k     int // index in fr.faces
	img   *image.RGBA
	video bool
	x     *torch.Tensor
}

// finished is a finisher's outcome.
type finished struct {
	i   int
	r   *Result
	err error
}

// deliveries hands outcomes to each in input order.
type deliveries struct {
	done    []bool
	results []*Result
	errs    []error
	next    int
}

func newRun(p *Pipeline, ins []Input, opts Options, each func(int, *Result, error)) *run {
	r := &run{
		p: p, ins: ins, opts: opts, each: each,
		size: p.m.Config.ImageSize,
		msgs: make(chan msg, 2),
		stop: make(chan struct{}),
		fin:  make(chan finished, len(ins)),
		fsem: make(chan struct{}, p.opts.Workers),
		accs: make([]*acc, len(ins)),
		out: deliveries{
			done: make([]bool, len(ins)), results: make([]*Result, len(ins)), errs: make([]error, len(ins)),
		},
	}
	if opts.Heatmaps != "" {
		r.names = HeatmapNames(ins)
		for i, in := range ins {
			if in.Heatmap != "" {
				r.names[i] = in.Heatmap
			}
		}
	}
	for i, in := range ins {
		r.accs[i] = &acc{i: i, in: in, tracks: map[int]*trackAcc{}}
	}
	return r
}

// run starts the producers, runs the loop and cleans up: stops the
// producers, frees every tensor not scored and waits for the finishers.
func (r *run) run(ctx context.Context) error {
	r.onProgress = progressFunc(ctx)
	jobs := make(chan int)
	r.pwg.Add(1)
	go func() { // hands out the inputs in order
		defer r.pwg.Done()
		defer close(jobs)
		for i := range r.ins {
			select {
			case jobs <- i:
			case <-r.stop:
				return
			}
		}
	}()
	for range min(r.p.opts.Workers, len(r.ins)) {
		r.pwg.Add(1)
		go func() {
			defer r.pwg.Done()
			for i := range jobs {
				r.produce(ctx, i)
			}
		}()
	}
	defer func() {
		close(r.stop)
		go func() {
			r.pwg.Wait()
			close(r.msgs)
		}()
		for m := range r.msgs {
			m.free()
		}
		for _, pf := range r.pend {
			pf.x.Free()
		}
		r.pend = nil
		r.fwg.Wait()
	}()
	return r.loop(ctx)
}

// send passes a message to the loop; false when the run has ended (the
// message's tensors are freed then).
func (r *run) send(m msg) bool {
	select {
	case r.msgs <- m:
		return true
	case <-r.stop:
		m.free()
		return false
	}
}

// loop receives frames and ends of inputs, scores faces in batches and
// hands results over in order, until every input is handed over.
func (r *run) loop(ctx context.Context) error {
	n := len(r.ins)
	for r.out.next < n {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m := <-r.msgs:
			if err := r.receive(m); err != nil {
				return err
			}
		case f := <-r.fin:
			r.out.done[f.i], r.out.results[f.i], r.out.errs[f.i] = true, f.r, f.err
			for r.out.next < n && r.out.done[r.out.next] {
				k := r.out.next
				r.each(k, r.out.results[k], r.out.errs[k])
				r.out.results[k], r.out.errs[k] = nil, nil
				r.out.next++
				r.prog.Inputs++
				r.progress()
			}
		}
	}
	return nil
}

func (r *run) progress() {
	if r.onProgress != nil {
		r.onProgress(r.prog)
	}
}

// receive takes one message from a producer.
func (r *run) receive(m msg) error {
	if f := m.frame; f != nil {
		a := r.accs[f.in]
		fr := a.addFrame(f)
		for k, cf := range f.faces {
			r.pend = append(r.pend, pendingFace{a: a, fr: fr, k: k, img: f.img, video: f.video, x: cf.x})
		}
		r.prog.Frames++
		for len(r.pend) >= r.p.opts.BatchSize {
			if err := r.score(r.p.opts.BatchSize); err != nil {
				return err
			}
		}
		return nil
	}
	d := m.done
	a := r.accs[d.in]
	a.end = d
	r.recv++
	if r.recv == len(r.ins) {
		// Nothing more will come: score what is left.
		for len(r.pend) > 0 {
			if err := r.score(min(len(r.pend), r.p.opts.BatchSize)); err != nil {
				return err
			}
		}
	}
	r.maybeFinish(a)
	return nil
}

// score runs the model on the first n pending faces.
func (r *run) score(n int) error {
	batch := r.pend[:n]
	xs := make([]*torch.Tensor, n)
	for i, pf := range batch {
		xs[i] = pf.x
	}
	scores, err := r.p.scoreBatch(xs)
	if err != nil {
		return err
	}
	touched := map[*acc]bool{}
	for i, pf := range batch {
		pf.x.Free()
		pf.a.scored(pf.fr, pf.k, pf.img, scores[i], r.opts.Threshold, pf.video)
		touched[pf.a] = true
	}
	r.pend = append(r.pend[:0], r.pend[n:]...)
	r.prog.Faces += n
	r.progress()
	for a := range touched {
		r.maybeFinish(a)
	}
	return nil
}

// maybeFinish hands a complete input (its producer done, every face scored)
// to a finisher goroutine.
func (r *run) maybeFinish(a *acc) {
	if a.end == nil || a.unscored > 0 || a.handed {
		return
	}
	a.handed = true
	r.fwg.Add(1)
	go func() {
		defer r.fwg.Done()
		r.fsem <- struct{}{}
		defer func() { <-r.fsem }()
		res, err := r.finish(a)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) {
				err = &InputError{Input: a.in.name(), Err: err}
			}
		}
		r.fin <- finished{i: a.i, r: res, err: err}
	}()
}
