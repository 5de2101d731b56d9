// Package funcbuild builds the repository's functions with the real Knative
// Functions CLI (func) and its host builder, which needs no container
// engine, and runs them as local processes with `func run --container=false`.
//
// The host builder wraps each function in a module of its own that does
// `replace function => ./f`, so the functions' own
// `replace github.com/jobflow/jobflow => ../..` lines do not apply. The root
// module reaches the build through a file-based module proxy that
// modproxy.Publish writes from the working tree, and a module cache of this
// package's own (so a stale copy of the root module is never reused).
package funcbuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jobflow/jobflow/e2e/internal/modproxy"
	"github.com/jobflow/jobflow/e2e/internal/repo"
)

// RootVersion is the version the functions' go.mod files require of the
// root module; the proxy serves the working tree under it.
const RootVersion = "v0.1.0"

// Registry is the image registry the functions are tagged for (kind-up's
// local registry).
const Registry = "localhost:5001/jobflow"

// Builder builds and runs functions with one func CLI.
type Builder struct {
	Func     string // path of the func binary
	Root     string // repository root
	Work     string // work folder: goproxy/, build/<name>/, deploy/<name>/, logs/
	ModCache string // module cache of func's builds (see ModCacheDir)
	env      []string
}

// ModCacheDir is the module cache func's builds use: JOBFLOW_FUNC_GOMODCACHE,
// else jobflow/func-gomodcache in the user's cache folder. It lies outside
// the repository on purpose: func's host builder compiles without
// -trimpath, so the Go build cache only reuses dependency packages (for
// three platforms) when their folders stay the same from clone to clone.
func ModCacheDir() (string, error) {
	if d := os.Getenv("JOBFLOW_FUNC_GOMODCACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "jobflow", "func-gomodcache"), nil
}

// New prepares a Builder: it publishes the root module into Work/goproxy
// and drops the root module from the module cache.
func New(funcBin, root, work string) (*Builder, error) {
	modCache, err := ModCacheDir()
	if err != nil {
		return nil, err
	}
	b := &Builder{Func: funcBin, Root: root, Work: work, ModCache: modCache}
	for _, d := range []string{filepath.Join(work, "goproxy"), filepath.Join(work, "build"), filepath.Join(work, "logs"), modCache} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if _, err := modproxy.Publish(root, filepath.Join(work, "goproxy"), RootVersion); err != nil {
		return nil, fmt.Errorf("publish root module: %w", err)
	}
	// The module cache keeps what it once extracted: remove the root module
	// so this build sees the zip just published. (Two builds from different
	// working trees at the same moment would race here.)
	for _, d := range []string{
		filepath.Join(modCache, repo.RootModule+"@"+RootVersion),
		filepath.Join(modCache, "cache", "download", repo.RootModule),
	} {
		if err := os.RemoveAll(d); err != nil {
			return nil, err
		}
	}
	upstream, err := goEnv("GOPROXY")
	if err != nil {
		return nil, err
	}
	mainCache, err := goEnv("GOMODCACHE")
	if err != nil {
		return nil, err
	}
	drop := map[string]bool{"GOFLAGS": true, "GOPROXY": true, "GOMODCACHE": true, "GOWORK": true, "GONOSUMDB": true, "GONOSUMCHECK": true, "GOPRIVATE": true, "GONOPROXY": true, "PORT": true, "LISTEN_ADDRESS": true, "K_SINK": true}
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] && !strings.HasPrefix(k, "FUNC_") {
			b.env = append(b.env, kv)
		}
	}
	b.env = append(b.env,
		"FUNC_ENABLE_HOST_BUILDER=true",
		"GOWORK=off",
		"GOFLAGS=-mod=mod -modcacherw -buildvcs=false",
		// The root module is republished as v0.1.0 with new content on every
		// build, but the go command indexes module-cache packages by path and
		// version (their file and import lists) as if they never changed:
		// without this, a package's new imports are "not found".
		"GODEBUG=goindex=0",
		"GONOSUMDB="+repo.RootModule,
		"GONOSUMCHECK="+repo.RootModule,
		"GOMODCACHE="+modCache,
		// Our root module first, then modules this machine already has,
		// then the usual proxy.
		"GOPROXY=file://"+filepath.Join(work, "goproxy")+",file://"+filepath.Join(mainCache, "cache", "download")+","+upstream,
	)
	return b, nil
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Functions lists the function folders (those with a func.yaml).
func (b *Builder) Functions() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(b.Root, "functions", "*", "func.yaml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(filepath.Dir(f)))
	}
	if len(names) == 0 {
		return nil, errors.New("no functions/*/func.yaml")
	}
	return names, nil
}

// Dir is where function name is built: a fresh copy of functions/<name>,
// so that func never writes into the repository.
func (b *Builder) Dir(name string) string { return filepath.Join(b.Work, "build", name) }

// Log is the file a func command's output goes to.
func (b *Builder) Log(name, what string) string {
	return filepath.Join(b.Work, "logs", name+"-"+what+".log")
}

// Build copies functions/<name> and runs `func build --builder=host`.
func (b *Builder) Build(ctx context.Context, name string) (time.Duration, error) {
	dir := b.Dir(name)
	if err := os.RemoveAll(dir); err != nil {
		return 0, err
	}
	if err := copyDir(filepath.Join(b.Root, "functions", name), dir); err != nil {
		return 0, err
	}
	start := time.Now()
	err := b.run(ctx, b.Log(name, "build"), "build", "--builder=host", "--registry="+Registry, "--path="+dir, "--verbose")
	return time.Since(start), err
}

// Deploy copies functions/<name> to a staging folder and runs `func
// deploy` with the host builder: build, push to Registry, and create or
// update the Knative Service in namespace (kubeconfig from KUBECONFIG).
// The staging copy keeps func from writing image digests into the
// repository's func.yaml.
func (b *Builder) Deploy(ctx context.Context, name, namespace string) error {
	dir := filepath.Join(b.Work, "deploy", name)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := copyDir(filepath.Join(b.Root, "functions", name), dir); err != nil {
		return err
	}
	return b.run(ctx, b.Log(name, "deploy"), "deploy", "--builder=host", "--registry="+Registry,
		"--namespace="+namespace, "--build=true", "--push=true", "--path="+dir, "--verbose")
}

// Invoke runs `func invoke` against the running local instance of name and
// returns its output.
func (b *Builder) Invoke(ctx context.Context, name string, args ...string) (string, error) {
	log := b.Log(name, "invoke")
	err := b.run(ctx, log, append([]string{"invoke", "--path=" + b.Dir(name), "--target=local"}, args...)...)
	out, _ := os.ReadFile(log)
	return string(out), err
}

func (b *Builder) run(ctx context.Context, log string, args ...string) error {
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, b.Func, args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = b.env, f, f
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("func %s: %w (output in %s:\n%s)", args[0], err, log, tail(log, 25))
	}
	return nil
}

// Instance is a function started by `func run --container=false`.
type Instance struct {
	Port int
	cmd  *exec.Cmd
	done chan struct{}
}

var runningOn = regexp.MustCompile(`Running on host port (\d+)`)

// Run starts an already built function as a local process (func builds
// the host binary itself) with extra environment, and waits until func
// says which port it listens on.
func (b *Builder) Run(ctx context.Context, name string, env ...string) (*Instance, error) {
	args := []string{"run", "--container=false", "--build=false", "--path=" + b.Dir(name), "--verbose"}
	for _, e := range env {
		args = append(args, "--env="+e)
	}
	log, err := os.Create(b.Log(name, "run"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(b.Func, args...)
	cmd.Env = b.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // func starts the function as a child
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(log, pw), io.MultiWriter(log, pw)
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	in := &Instance{cmd: cmd, done: make(chan struct{})}
	port := make(chan int, 1)
	var once sync.Once
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := runningOn.FindStringSubmatch(sc.Text()); m != nil {
				p, _ := strconv.Atoi(m[1])
				once.Do(func() { port <- p })
			}
		}
	}()
	go func() { _ = cmd.Wait(); pw.Close(); log.Close(); close(in.done) }()
	select {
	case in.Port = <-port:
		return in, nil
	case <-in.done:
		return nil, fmt.Errorf("func run %s exited: %s", name, tail(b.Log(name, "run"), 25))
	case <-ctx.Done():
		in.Stop()
		return nil, fmt.Errorf("func run %s: %w: %s", name, ctx.Err(), tail(b.Log(name, "run"), 25))
	}
}

// Start runs the binary that the host builder put into the image for this
// machine's architecture, as the container would run it, with env added
// (e.g. K_SINK, which a SinkBinding injects on a cluster). `func run` cannot
// do that: its host runner starts the function with PORT and PWD only.
func (b *Builder) Start(ctx context.Context, name string, env ...string) (*Instance, error) {
	bin := filepath.Join(b.Dir(name), ".func", "builds", "last", "result", "f.linux."+runtime.GOARCH)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	log, err := os.Create(b.Log(name, "start"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Dir = b.Dir(name)
	cmd.Env = append([]string{"LISTEN_ADDRESS=127.0.0.1:" + strconv.Itoa(port), "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	in := &Instance{Port: port, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(in.done) }()
	return in, nil
}

// Stop ends func run and the function it started (its process group).
func (in *Instance) Stop() {
	if in.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-in.cmd.Process.Pid, syscall.SIGKILL)
		<-in.done
	}
}

func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && d.Name() == ".func" {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
