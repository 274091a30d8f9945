// go-workflows side of bench_peers.py: one workload on a fresh SQLite file, JSON on stdout.
//
//	peers -workload client|backlog|latency3|latency1|tree -db PATH -n N
//
// The workloads are the ones bench_peers.py runs for every engine (see its docstring). One
// process holds the client and one worker, on go-workflows' SQLite backend wrapped in its
// monoprocess backend (which wakes the worker in-process instead of polling), as go-workflows'
// own benchmark runs it.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cschleiden/go-workflows/backend"
	"github.com/cschleiden/go-workflows/backend/monoprocess"
	"github.com/cschleiden/go-workflows/backend/sqlite"
	"github.com/cschleiden/go-workflows/client"
	"github.com/cschleiden/go-workflows/worker"
	"github.com/cschleiden/go-workflows/workflow"
)

// ---- workflows ---------------------------------------------------------------------------

func Noop(ctx context.Context, i int) (int, error) { return i, nil }

func ThreeSteps(ctx workflow.Context, i int) (int, error) {
	for step := 0; step < 3; step++ {
		next, err := workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, Noop, i).Get(ctx)
		if err != nil {
			return 0, err
		}
		i = next
	}
	return i, nil
}

func OneStep(ctx workflow.Context, i int) (int, error) {
	return workflow.ExecuteActivity[int](ctx, workflow.DefaultActivityOptions, Noop, i).Get(ctx)
}

// The tree: TreeNode(depth) starts `fanout` TreeNode(depth-1) children; at depth 0 it starts
// `leafFanout` leaves instead; a leaf runs `activities` Payload activities at once.
type TreeInput struct {
	Depth, Fanout, LeafFanout, Activities, Size int
}

func Payload(ctx context.Context, size int) (string, error) {
	return strings.Repeat("x", size), nil
}

func TreeLeaf(ctx workflow.Context, in TreeInput) (int, error) {
	futures := make([]workflow.Future[string], 0, in.Activities)
	for i := 0; i < in.Activities; i++ {
		futures = append(futures, workflow.ExecuteActivity[string](ctx, workflow.DefaultActivityOptions, Payload, in.Size))
	}
	total := 0
	for _, f := range futures {
		r, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		total += len(r)
	}
	return total, nil
}

func TreeNode(ctx workflow.Context, in TreeInput) (int, error) {
	var futures []workflow.Future[int]
	if in.Depth > 0 {
		child := in
		child.Depth--
		for i := 0; i < in.Fanout; i++ {
			futures = append(futures, workflow.CreateSubWorkflowInstance[int](ctx, workflow.DefaultSubWorkflowOptions, TreeNode, child))
		}
	} else {
		for i := 0; i < in.LeafFanout; i++ {
			futures = append(futures, workflow.CreateSubWorkflowInstance[int](ctx, workflow.DefaultSubWorkflowOptions, TreeLeaf, in))
		}
	}
	total := 0
	for _, f := range futures {
		r, err := f.Get(ctx)
		if err != nil {
			return 0, err
		}
		total += r
	}
	return total, nil
}

// ---- harness -----------------------------------------------------------------------------

type bench struct {
	ctx    context.Context
	be     backend.Backend
	client *client.Client
	worker *worker.Worker
	next   int
}

func open(ctx context.Context, path string) *bench {
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	be := monoprocess.NewMonoprocessBackend(
		sqlite.NewSqliteBackend(path, sqlite.WithBackendOptions(backend.WithLogger(quiet))),
	)
	w := worker.New(be, &worker.DefaultOptions)
	must(w.RegisterWorkflow(ThreeSteps))
	must(w.RegisterWorkflow(OneStep))
	must(w.RegisterWorkflow(TreeNode))
	must(w.RegisterWorkflow(TreeLeaf))
	must(w.RegisterActivity(Noop))
	must(w.RegisterActivity(Payload))
	return &bench{ctx: ctx, be: be, client: client.New(be), worker: w}
}

func (b *bench) start(wf workflow.Workflow, args ...any) *workflow.Instance {
	b.next++
	inst, err := b.client.CreateWorkflowInstance(b.ctx, client.WorkflowInstanceOptions{
		InstanceID: fmt.Sprintf("wf-%d", b.next),
	}, wf, args...)
	must(err)
	return inst
}

func (b *bench) result(inst *workflow.Instance) int {
	r, err := client.GetWorkflowResult[int](b.ctx, b.client, inst, 10*time.Minute)
	must(err)
	return r
}

func (b *bench) throughput(n int, backlog bool) map[string]any {
	if !backlog {
		must(b.worker.Start(b.ctx))
	}
	begin := time.Now()
	instances := make([]*workflow.Instance, n)
	for i := range instances {
		instances[i] = b.start(ThreeSteps, i)
	}
	if backlog {
		begin = time.Now()
		must(b.worker.Start(b.ctx))
	}
	for i, inst := range instances {
		if r := b.result(inst); r != i {
			panic(fmt.Sprintf("workflow %d returned %d", i, r))
		}
	}
	elapsed := time.Since(begin).Seconds()
	return map[string]any{"seconds": elapsed, "rate": float64(n) / elapsed}
}

func (b *bench) latency(n int, wf workflow.Workflow) map[string]any {
	must(b.worker.Start(b.ctx))
	warmup := min(20, n)
	samples := make([]float64, 0, n)
	for i := 0; i < n+warmup; i++ {
		begin := time.Now()
		if r := b.result(b.start(wf, i)); r != i {
			panic(fmt.Sprintf("workflow %d returned %d", i, r))
		}
		if i >= warmup {
			samples = append(samples, float64(time.Since(begin).Microseconds())/1000)
		}
	}
	sort.Float64s(samples)
	at := func(q float64) float64 { return samples[min(len(samples)-1, int(q*float64(len(samples))))] }
	return map[string]any{"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "samples": len(samples)}
}

func (b *bench) tree(trees, size int) map[string]any {
	must(b.worker.Start(b.ctx))
	in := TreeInput{Depth: 2, Fanout: 2, LeafFanout: 2, Activities: 2, Size: size}
	begin := time.Now()
	instances := make([]*workflow.Instance, trees)
	for i := range instances {
		instances[i] = b.start(TreeNode, in)
	}
	want := 2 * 2 * 2 * 2 * size // leaves x activities x size
	for _, inst := range instances {
		if r := b.result(inst); r != want {
			panic(fmt.Sprintf("tree returned %d, want %d", r, want))
		}
	}
	elapsed := time.Since(begin).Seconds()
	perTree := 1 + 2 + 4 + 8
	return map[string]any{
		"seconds": elapsed, "rate": float64(trees) / elapsed,
		"workflows_per_second": float64(trees*perTree) / elapsed,
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

func main() {
	workload := flag.String("workload", "client", "client, backlog, latency3, latency1 or tree")
	path := flag.String("db", "peers.sqlite", "SQLite file (created)")
	n := flag.Int("n", 100, "workflows, samples or trees")
	size := flag.Int("result-size", 100, "bytes per activity result in the tree")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := open(ctx, *path)
	var out map[string]any
	switch *workload {
	case "client":
		out = b.throughput(*n, false)
	case "backlog":
		out = b.throughput(*n, true)
	case "latency3":
		out = b.latency(*n, ThreeSteps)
	case "latency1":
		out = b.latency(*n, OneStep)
	case "tree":
		out = b.tree(*n, *size)
	default:
		fmt.Fprintf(os.Stderr, "unknown workload %q\n", *workload)
		os.Exit(2)
	}
	out["version"] = "go-workflows v1.2.0"
	cancel()
	_ = b.worker.WaitForCompletion()
	must(json.NewEncoder(os.Stdout).Encode(out))
}
