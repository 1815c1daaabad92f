package dist

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// LaunchOptions configure Launch.
type LaunchOptions struct {
	N      int      // local workers
	Path   string   // the program (default: this executable)
	Args   []string // its arguments (without the launcher's own flags)
	Env    []string // base environment (default os.Environ())
	Stdout io.Writer
	Stderr io.Writer
	// Grace is how long the surviving workers get, after one failed, to
	// report before they are stopped (default 15 s).
	Grace time.Duration
}

// Launch runs N workers of one job on this machine, as torchrun
// --nproc-per-node N does: each gets RANK = LOCAL_RANK = i, WORLD_SIZE =
// LOCAL_WORLD_SIZE = N, MASTER_ADDR = 127.0.0.1, a free MASTER_PORT, and,
// unless set, LVNET_THREADS = CPUs / N. Rank 0's output passes through;
// the other ranks' lines are prefixed with "[rank i]". Ctrl-C (ctx) is
// passed on to every worker, which stop together at a step (rank 0 saves).
// When a worker fails, the others get Grace to report and are then
// stopped; the error names the first rank that failed.
func Launch(ctx context.Context, o LaunchOptions) error {
	if o.N < 1 {
		return fmt.Errorf("dist: --nproc-per-node %d: need at least 1", o.N)
	}
	if o.Path == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("dist: find this program: %w", err)
		}
		o.Path = exe
	}
	if o.Env == nil {
		o.Env = os.Environ()
	}
	if o.Grace <= 0 {
		o.Grace = 15 * time.Second
	}
	// The workers' output is copied by several goroutines: one lock keeps
	// lines whole.
	var mu sync.Mutex
	o.Stdout, o.Stderr = &lockedWriter{mu: &mu, w: o.Stdout}, &lockedWriter{mu: &mu, w: o.Stderr}
	port, err := freePort()
	if err != nil {
		return err
	}
	threads := ""
	if os.Getenv("LVNET_THREADS") == "" {
		threads = "LVNET_THREADS=" + strconv.Itoa(max(1, runtime.NumCPU()/o.N))
	}
	type exit struct {
		rank int
		err  error
	}
	exits := make(chan exit, o.N)
	cmds := make([]*exec.Cmd, o.N)
	var outs sync.WaitGroup
	for r := range cmds {
		c := exec.Command(o.Path, o.Args...)
		c.Env = append(append([]string(nil), o.Env...), "RANK="+strconv.Itoa(r), "LOCAL_RANK="+strconv.Itoa(r),
			"WORLD_SIZE="+strconv.Itoa(o.N), "LOCAL_WORLD_SIZE="+strconv.Itoa(o.N),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
		if threads != "" {
			c.Env = append(c.Env, threads)
		}
		// Own process group: a terminal's Ctrl-C reaches the workers once,
		// through this launcher.
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if r == 0 {
			c.Stdout, c.Stderr = o.Stdout, o.Stderr
		} else {
			c.Stdout = io.Discard
			pr, pw := io.Pipe()
			c.Stderr = pw
			outs.Add(1)
			go prefixLines(&outs, pr, o.Stderr, fmt.Sprintf("[rank %d] ", r))
			defer pw.Close()
		}
		if err := c.Start(); err != nil {
			stopAll(cmds, nil, syscall.SIGKILL)
			return fmt.Errorf("dist: start rank %d: %w", r, err)
		}
		cmds[r] = c
		go func(r int, c *exec.Cmd) {
			err := c.Wait()
			if w, ok := c.Stderr.(*io.PipeWriter); ok {
				w.Close()
			}
			exits <- exit{r, err}
		}(r, c)
	}
	exited := make([]bool, o.N)
	var first *exit
	var grace <-chan time.Time
	interrupted := false
	for left := o.N; left > 0; {
		select {
		case e := <-exits:
			left--
			exited[e.rank] = true
			if e.err != nil && first == nil {
				first = &e
				grace = time.After(o.Grace)
			}
		case <-ctx.Done():
			if !interrupted {
				interrupted = true
				stopAll(cmds, exited, syscall.SIGINT)
			}
		case <-grace:
			stopAll(cmds, exited, syscall.SIGTERM)
			grace = time.After(5 * time.Second)
			defer stopAll(cmds, exited, syscall.SIGKILL)
		}
	}
	outs.Wait()
	if first != nil {
		return fmt.Errorf("dist: rank %d of %d failed (%v); the other ranks were stopped", first.rank, o.N, first.err)
	}
	return nil
}

// stopAll signals the workers that have not exited.
func stopAll(cmds []*exec.Cmd, exited []bool, sig syscall.Signal) {
	for r, c := range cmds {
		if c != nil && c.Process != nil && (exited == nil || !exited[r]) {
			_ = c.Process.Signal(sig)
		}
	}
}

func prefixLines(wg *sync.WaitGroup, r io.Reader, w io.Writer, prefix string) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintf(w, "%s%s\n", prefix, sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// freePort returns a TCP port of this machine that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("dist: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedWriter serialises writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return len(p), nil
	}
	return l.w.Write(p)
}
