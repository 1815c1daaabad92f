package dist

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Env
		wantErr string
	}{
		{"no job", nil, Env{World: 1, Addr: "127.0.0.1", Port: 29500}, ""},
		{"torchrun", map[string]string{"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "MASTER_ADDR": "node0", "MASTER_PORT": "1234"},
			Env{Rank: 3, World: 4, LocalRank: 1, Addr: "node0", Port: 1234}, ""},
		{"torchrun's agent store", map[string]string{"RANK": "0", "WORLD_SIZE": "2", "TORCHELASTIC_USE_AGENT_STORE": "True"},
			Env{Rank: 0, World: 2, Addr: "127.0.0.1", Port: 29500, AgentStore: true}, ""},
		{"rank outside", map[string]string{"RANK": "4", "WORLD_SIZE": "4"}, Env{}, "RANK=4 is outside WORLD_SIZE=4"},
		{"not a number", map[string]string{"WORLD_SIZE": "two"}, Env{}, `WORLD_SIZE="two" is not a non-negative integer`},
		{"zero world", map[string]string{"WORLD_SIZE": "0"}, Env{}, "WORLD_SIZE=0: need at least 1"},
		{"bad port", map[string]string{"WORLD_SIZE": "2", "MASTER_PORT": "70000"}, Env{}, "MASTER_PORT=70000 is not a TCP port"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("%+v, %v; want %+v", got, err, tc.want)
			}
			if got.Distributed() != (tc.want.World > 1) {
				t.Errorf("Distributed() = %v", got.Distributed())
			}
		})
	}
}

// TestLaunchWorker is a worker of the Launch tests (skipped in a normal run).
func TestLaunchWorker(t *testing.T) {
	mode := os.Getenv("LVNET_LAUNCH_TEST")
	if mode == "" {
		t.Skip("a worker of the launcher tests; run by them")
	}
	rank := os.Getenv("RANK")
	fmt.Fprintf(os.Stderr, "worker %s of %s, local %s, master %s:%s, threads %s\n", rank, os.Getenv("WORLD_SIZE"),
		os.Getenv("LOCAL_RANK"), os.Getenv("MASTER_ADDR"), os.Getenv("MASTER_PORT"), os.Getenv("LVNET_THREADS"))
	if mode == "fail" {
		if rank == "1" {
			fmt.Fprintln(os.Stderr, "rank 1 gives up")
			os.Exit(3)
		}
		time.Sleep(time.Hour) // stopped by the launcher
	}
	os.Exit(0)
}

func TestLaunch(t *testing.T) {
	run := func(mode string) (string, time.Duration, error) {
		var out bytes.Buffer
		t0 := time.Now()
		err := Launch(context.Background(), LaunchOptions{N: 3, Path: os.Args[0], Args: []string{"-test.run=^TestLaunchWorker$"},
			Env: append(os.Environ(), "LVNET_LAUNCH_TEST="+mode, "LVNET_THREADS="), Stdout: &out, Stderr: &out, Grace: time.Second})
		return out.String(), time.Since(t0), err
	}
	out, _, err := run("ok")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"worker 0 of 3, local 0, master 127.0.0.1:", "[rank 1] worker 1 of 3, local 1", "[rank 2] worker 2 of 3, local 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, took, err := run("fail")
	if err == nil || !strings.Contains(err.Error(), "rank 1 of 3 failed") || !strings.Contains(out, "[rank 1] rank 1 gives up") {
		t.Fatalf("want rank 1's failure reported: %v\n%s", err, out)
	}
	if took > 20*time.Second {
		t.Errorf("the other workers were stopped after %v (grace 1 s)", took)
	}
}
