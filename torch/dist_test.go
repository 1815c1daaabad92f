package torch_test

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvnet-go/lvnet/torch"
)

// The distributed tests start their ranks as child processes running
// TestDistWorker (the test binary itself), on loopback.

// freePort returns a TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type rankResult struct {
	out  string
	err  error
	took time.Duration
}

// runRanks runs scenario in world child processes and returns each rank's
// output and exit error.
func runRanks(t *testing.T, scenario string, world int) []rankResult {
	t.Helper()
	port := freePort(t)
	cmds := make([]*exec.Cmd, world)
	bufs := make([]*bytes.Buffer, world)
	start := time.Now()
	for r := range cmds {
		c := exec.Command(os.Args[0], "-test.run=^TestDistWorker$", "-test.v")
		c.Env = append(os.Environ(), "LVNET_DIST_SCENARIO="+scenario, "LVNET_THREADS=1",
			"RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(world), "MASTER_PORT="+strconv.Itoa(port))
		bufs[r] = &bytes.Buffer{}
		c.Stdout, c.Stderr = bufs[r], bufs[r]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[r] = c
	}
	res := make([]rankResult, world)
	for r, c := range cmds {
		err := c.Wait()
		res[r] = rankResult{out: bufs[r].String(), err: err, took: time.Since(start)}
	}
	return res
}

func TestDistCollectives(t *testing.T) {
	for r, res := range runRanks(t, "collectives", 2) {
		if res.err != nil || !strings.Contains(res.out, "WORKER OK") {
			t.Errorf("rank %d: %v\n%s", r, res.err, res.out)
		}
	}
}

func TestDistReducerAveragesGradients(t *testing.T) {
	for r, res := range runRanks(t, "reducer", 2) {
		if res.err != nil || !strings.Contains(res.out, "WORKER OK") {
			t.Errorf("rank %d: %v\n%s", r, res.err, res.out)
		}
	}
}

// A rank that dies makes the other's collective fail within the group's
// timeout (here 5 s), not hang.
func TestDistDeadRankFails(t *testing.T) {
	res := runRanks(t, "die", 2)
	if res[0].err == nil || !strings.Contains(res[0].out, "all_reduce failed") {
		t.Fatalf("rank 0 should fail its all-reduce: %v\n%s", res[0].err, res[0].out)
	}
	if res[0].took > 30*time.Second {
		t.Errorf("rank 0 took %v to notice", res[0].took)
	}
}

// TestDistWorker is one rank of the tests above (skipped in a normal run).
func TestDistWorker(t *testing.T) {
	scenario := os.Getenv("LVNET_DIST_SCENARIO")
	if scenario == "" {
		t.Skip("a rank of the distributed tests; run by them")
	}
	rank, _ := strconv.Atoi(os.Getenv("RANK"))
	world, _ := strconv.Atoi(os.Getenv("WORLD_SIZE"))
	port, _ := strconv.Atoi(os.Getenv("MASTER_PORT"))
	fail := func(format string, args ...any) {
		fmt.Printf("rank %d: "+format+"\n", append([]any{rank}, args...)...)
		os.Exit(1)
	}
	store, err := torch.NewStore("127.0.0.1", port, world, rank == 0, 20*time.Second)
	if err != nil {
		fail("store: %v", err)
	}
	g, err := torch.NewGroup(store, rank, world, torch.GroupOptions{Timeout: 5 * time.Second, Host: "127.0.0.1"})
	if err != nil {
		fail("group: %v", err)
	}
	switch scenario {
	case "collectives":
		distCollectives(rank, world, store, g, fail)
	case "reducer":
		distReducer(rank, world, g, fail)
	case "die":
		if rank == 1 {
			os.Exit(3) // gone before the all-reduce
		}
		s := torch.NewScope()
		if err := g.AllReduce(false, torch.Full(s, 1, torch.Float32, torch.CPU, 4)); err != nil {
			fail("all_reduce failed: %v", err)
		}
		fail("all_reduce succeeded without rank 1")
	}
	fmt.Println("WORKER OK")
	os.Exit(0)
}

func distCollectives(rank, world int, store *torch.Store, g *torch.Group, fail func(string, ...any)) {
	s := torch.NewScope()
	defer s.Close()
	// Store: every rank writes its key, reads the others'.
	if err := store.Set(fmt.Sprintf("k%d", rank), []byte(fmt.Sprintf("v%d", rank))); err != nil {
		fail("set: %v", err)
	}
	for r := range world {
		v, err := store.Get(fmt.Sprintf("k%d", r))
		if err != nil || string(v) != fmt.Sprintf("v%d", r) {
			fail("get k%d = %q, %v", r, v, err)
		}
	}
	if n, err := store.Add("count", 1); err != nil || n < 1 || n > int64(world) {
		fail("add: %d %v", n, err)
	}
	// All-reduce, several sizes and types: rank r holds (r+1)*(i+1).
	sum := float64(world*(world+1)) / 2
	for _, dt := range []torch.DType{torch.Float32, torch.Float64, torch.Int64, torch.Int32} {
		for _, n := range []int64{1, 7, 1000, 300_001} {
			x := torch.Arange(s, 1, float64(n)+1, 1, torch.Float64).MulScalar(float64(rank + 1)).ToDType(dt)
			if err := g.AllReduce(false, x); err != nil {
				fail("all_reduce %v x%d: %v", dt, n, err)
			}
			got := dvals(x)
			for i, v := range got {
				if want := float64(i+1) * sum; math.Abs(v-want) > 1e-6*want {
					fail("all_reduce %v x%d [%d] = %v, want %v", dt, n, i, v, want)
				}
			}
		}
	}
	// Mean of a channels-last (non-contiguous) tensor, in place.
	y := torch.Full(s, float64(rank), torch.Float32, torch.CPU, 2, 3, 4, 5).ChannelsLast()
	if err := g.AllReduce(true, y); err != nil {
		fail("all_reduce avg: %v", err)
	}
	for _, v := range dvals(y) {
		if want := float64(world-1) / 2; math.Abs(v-want) > 1e-6 {
			fail("mean = %v, want %v", v, want)
		}
	}
	// Broadcast from rank 1 of mixed types and sizes.
	a := torch.Full(s, float64(rank+10), torch.Float32, torch.CPU, 3, 3)
	b := torch.Full(s, float64(rank+20), torch.Int64, torch.CPU, 5)
	if err := g.Broadcast(1, a, b); err != nil {
		fail("broadcast: %v", err)
	}
	if va, vb := dvals(a), dvals(b); va[0] != 11 || va[8] != 11 || vb[4] != 21 {
		fail("broadcast got %v %v", va, vb)
	}
	// The differentiable sum: d/dx sum_r (x_r * w_r) through the sum is
	// the sum over ranks of w_r.
	x := torch.Full(s, 1, torch.Float32, torch.CPU, 3).SetRequiresGrad(true)
	z := g.AllReduceSum(x).MulScalar(float64(rank + 1)).Sum(false)
	if err := z.Backward(); err != nil {
		fail("backward: %v", err)
	}
	if gx := dvals(x.Grad()); gx[0] != sum {
		fail("grad through all_reduce = %v, want %v", gx, sum)
	}
	if err := g.Barrier(); err != nil {
		fail("barrier: %v", err)
	}
}

// distReducer: a linear model whose loss on rank r is (r+1) * sum(w . x);
// after backward with the reducer each rank's gradient is the mean over the
// ranks, in a channels-last weight and a second, smaller parameter.
func distReducer(rank, world int, g *torch.Group, fail func(string, ...any)) {
	s := torch.NewScope()
	defer s.Close()
	w := torch.Full(nil, 0.5, torch.Float32, torch.CPU, 4, 3, 2, 2).ChannelsLast().Keep().SetRequiresGrad(true)
	bias := torch.Full(nil, 0.1, torch.Float32, torch.CPU, 4).Keep().SetRequiresGrad(true)
	defer w.Free()
	defer bias.Free()
	red, err := torch.NewReducer(g, []*torch.Tensor{w, bias}, 25<<20, false)
	if err != nil {
		fail("reducer: %v", err)
	}
	defer red.Close()
	mean := float64(world+1) / 2
	for step := range 3 {
		if err := red.Prepare(); err != nil {
			fail("prepare: %v", err)
		}
		loss := w.Sum(false).Add(bias.Sum(false)).MulScalar(float64((rank + 1) * (step + 1)))
		if err := loss.Backward(); err != nil {
			fail("backward: %v", err)
		}
		for name, p := range map[string]*torch.Tensor{"weight": w, "bias": bias} {
			for _, v := range dvals(p.Grad()) {
				if want := mean * float64(step+1); math.Abs(v-want) > 1e-6 {
					fail("step %d: %s grad %v, want %v", step, name, v, want)
				}
			}
			if err := p.ZeroGrad(); err != nil {
				fail("zero grad: %v", err)
			}
		}
	}
}

// dvals exports x as float64 (a rank has no testing.T to fail).
func dvals(x *torch.Tensor) []float64 {
	v, err := torch.Data[float64](x.ToDType(torch.Float64).Contiguous())
	if err != nil {
		fmt.Println("export:", err)
		os.Exit(1)
	}
	return v
}
