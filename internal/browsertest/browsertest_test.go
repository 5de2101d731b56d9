package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A page that runs script, logs an error and throws: the browser sees the
// DOM the script made and reports both problems.
func TestBrowserRunsThePageAndReportsItsErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html><body><div id="out"></div><script>
setTimeout(function(){ document.getElementById("out").textContent = "ready " + (6*7); }, 200);
console.error("deliberate error");
setTimeout(function(){ throw new Error("deliberate throw"); }, 10);
</script></body></html>`)
	}))
	defer srv.Close()
	b := New(t, time.Minute)
	if err := b.Navigate(srv.URL); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitFor(`document.getElementById("out").textContent === "ready 42"`, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if txt, err := b.Text("#out"); err != nil || txt != "ready 42" {
		t.Fatalf("text of #out = %q, %v", txt, err)
	}
	if n, err := Eval[int](b, "6*7"); err != nil || n != 42 {
		t.Fatalf("Eval(6*7) = %d, %v", n, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(b.Problems()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	got := strings.Join(b.Problems(), "\n")
	if !strings.Contains(got, "deliberate error") || !strings.Contains(got, "deliberate throw") {
		t.Fatalf("problems = %q, want the console error and the exception", got)
	}
	if err := b.WaitFor(`false`, 300*time.Millisecond); err == nil {
		t.Fatal("WaitFor(false) succeeded")
	}
	png := filepath.Join(t.TempDir(), "page.png")
	if err := b.Screenshot(png); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(png); err != nil || len(data) < 100 || string(data[1:4]) != "PNG" {
		t.Fatalf("screenshot: %d bytes, err %v", len(data), err)
	}
}
