// Package browsertest drives Debian's chromium headless (through chromedp)
// for tests of the pages jobflow serves: the engine's console and the live
// configuration page. A page is tested as a user sees it: loaded by a real
// browser, its JavaScript run, its console errors collected.
//
// Chromium is found as JOBFLOW_CHROMIUM, or chromium / chromium-browser /
// google-chrome on PATH (make deps installs Debian's chromium). Without it a
// test fails under CI=true and is skipped elsewhere, with the fix.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Browser is one headless chromium with one tab, closed when the test ends.
type Browser struct {
	// Ctx runs chromedp actions in the tab: chromedp.Run(b.Ctx, ...).
	Ctx context.Context

	mu       sync.Mutex
	problems []string
}

// Path returns the chromium binary, or "" if there is none.
func Path() string {
	if p := os.Getenv("JOBFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// New starts chromium headless for the test (at most timeout for the whole
// test's browsing) and closes it at the test's end.
func New(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		msg := "chromium is not installed: run make deps (apt-get install chromium) or set JOBFLOW_CHROMIUM"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(actx)
	// The first Run starts the browser; it lives as long as tab (chromedp:
	// no timeout on that context), and every later action runs under ctx.
	if err := chromedp.Do(tab); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("start chromium (%s): %v", path, err)
	}
	ctx, cancelTimeout := context.WithTimeout(tab, timeout)
	b := &Browser{Ctx: ctx}
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.record(m)
		}
	}()
	t.Cleanup(func() {
		cancelTimeout()
		<-done
		cancelTab()
		cancelAlloc()
	})
	return b
}

// record keeps the page's console errors and uncaught exceptions (not the
// browser's own log, where a missing favicon would count).
func (b *Browser) record(m chromedp.ConsoleMessage) {
	if m.Source != "" || (m.Type != chromedp.ConsoleException && m.Type != "error") {
		return
	}
	b.mu.Lock()
	b.problems = append(b.problems, m.String())
	b.mu.Unlock()
}

// Problems returns the console errors and uncaught exceptions seen so far.
func (b *Browser) Problems() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.problems...)
}

// NoProblems fails the test if the page logged an error or threw.
func (b *Browser) NoProblems(t testing.TB) {
	t.Helper()
	if p := b.Problems(); len(p) > 0 {
		t.Errorf("the page had %d console errors or exceptions:\n%s", len(p), strings.Join(p, "\n"))
	}
}

// Navigate loads url in the tab and waits for it to load.
func (b *Browser) Navigate(url string) error {
	return chromedp.Do(b.Ctx, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page and returns its value
// decoded into T (a string, a number, a bool, a struct of its JSON...).
func Eval[T any](b *Browser, expr string) (T, error) {
	return chromedp.Run(b.Ctx, chromedp.Evaluate[T](expr))
}

// Click clicks the first element matching a CSS selector, once it is visible.
func (b *Browser) Click(css string) error {
	return chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS(css)))
}

// Text returns the visible text of the first element matching a CSS selector.
func (b *Browser) Text(css string) (string, error) {
	return chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(css)))
}

// Do runs chromedp actions in the tab, in order.
func (b *Browser) Do(actions ...chromedp.Action[chromedp.Void]) error {
	return chromedp.Do(b.Ctx, actions...)
}

// WaitFor polls a JavaScript expression until it is truthy or d passes.
func (b *Browser) WaitFor(expr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		ok, err := Eval[bool](b, "Boolean("+expr+")")
		if err == nil && ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("waiting %s for %s: %w", d, expr, err)
			}
			return fmt.Errorf("waiting %s for %s: still false", d, expr)
		}
		select {
		case <-b.Ctx.Done():
			return fmt.Errorf("waiting for %s: %w", expr, b.Ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Screenshot writes a PNG of the whole page to path.
func (b *Browser) Screenshot(path string) error {
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		return fmt.Errorf("screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
