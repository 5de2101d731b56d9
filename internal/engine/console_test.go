package engine_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/internal/browsertest"
	"github.com/jobflow/jobflow/internal/testenv"
)

// TestConsoleInABrowser opens the live console of the repository's plan in
// headless chromium: the page loads without console errors and draws every
// function of the plan; a function at zero is shown at 0 and then with an
// instance when a job arrives; the job moves the counts; an invalid event
// appears among the dead letters with its destination; the lookup of the
// job draws its trace with the receiver's request and a sink's write.
// JOBFLOW_CONSOLE_SCREENSHOT=<path> saves a screenshot (docs/img/console.png).
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the whole engine")
	}
	cfg := testConfig(t)
	cfg.Adapters = false
	cfg.Traces, cfg.TracesKept = true, 200
	grace := 500 * time.Millisecond
	cfg.ScaleToZeroGrace, cfg.AutoscaleWindow, cfg.AutoscaleTick = &grace, 3*time.Second, 200*time.Millisecond
	c := runCluster(t, cfg)
	b := browsertest.New(t, 5*time.Minute)
	if err := b.Navigate(fmt.Sprintf("http://127.0.0.1:%d/", cfg.AdminPort)); err != nil {
		t.Fatal(err)
	}
	wait := func(what, expr string, d time.Duration) {
		t.Helper()
		if err := b.WaitFor(expr, d); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	node := func(id string) string { return fmt.Sprintf(`document.querySelector('g.node[data-id="%s"]')`, id) }
	attr := func(id, a string) string { return node(id) + `?.getAttribute("` + a + `")` }

	wait("the stream", `document.querySelector("#conn.up")`, 30*time.Second)
	for _, f := range c.eng.Plan().Functions {
		wait("function "+f.Name+" drawn", node("function/"+f.Name), 5*time.Second)
		wait("function "+f.Name+" in the table", fmt.Sprintf(`document.querySelector('#functions tr[data-fn="%s"]')`, f.Name), 5*time.Second)
	}
	for _, s := range c.eng.Plan().Sources {
		wait("source "+s.Name+" drawn", node("source/"+s.Name), 5*time.Second)
	}

	// At zero, then an instance as soon as a job arrives.
	wait("processor at zero", attr("function/processor", "data-instances")+` === "0"`, 60*time.Second)
	before := delivered(t, b, "source/processor-source")
	id, code := restJob(t, c.receiver, `{"sleep":3000,"data_size":64}`)
	if code != 200 {
		t.Fatalf("job: %d", code)
	}
	wait("processor at 1 with the job", `Number(`+attr("function/processor", "data-instances")+`) >= 1`, 60*time.Second)
	wait("processor-source's count moved", fmt.Sprintf(`Number(%s) > %d`, attr("source/processor-source", "data-delivered"), before), 60*time.Second)
	waitFinished(t, c, 1)

	// The lookup finds the job in its topics.
	if err := b.Do(chromedp.SendKeys(chromedp.CSS("#lookup-id"), id.String())); err != nil {
		t.Fatal(err)
	}
	if err := b.Click(`#lookup-form button`); err != nil {
		t.Fatal(err)
	}
	wait("the lookup", `document.querySelectorAll("#lookup tbody tr").length >= 3`, 30*time.Second)
	for _, topic := range []string{"receiver-topic", "processor-topic", "postgres-topic"} {
		wait("the lookup shows "+topic, `[...document.querySelectorAll("#lookup tbody td")].some(td => td.textContent === "`+topic+`")`, 5*time.Second)
	}

	// The lookup draws the job's trace: the receiver's request first, a
	// sink's database write later, each bar at its offset. The functions
	// send their spans in batches, so the lookup is asked again until the
	// write's span has arrived.
	hop := func(cond string) string {
		return `[...document.querySelectorAll("#lookup-trace .hop")].some(h => ` + cond + `)`
	}
	for deadline := time.Now().Add(90 * time.Second); ; {
		if b.WaitFor(hop(`h.dataset.name === "receiver"`)+" && "+hop(`h.dataset.name.endsWith(" write")`), 5*time.Second) == nil {
			break
		}
		if time.Now().After(deadline) {
			text, _ := b.Text("#lookup-trace")
			t.Fatalf("the lookup shows no trace with the receiver and a sink write: %q", text)
		}
		if err := b.Click(`#lookup-form button`); err != nil {
			t.Fatal(err)
		}
	}
	wait("the trace's hops in time order", `(() => {
		const hops = [...document.querySelectorAll("#lookup-trace .hop")];
		const recv = hops.find(h => h.dataset.name === "receiver"), write = hops.find(h => h.dataset.name.endsWith(" write"));
		return hops.every(h => Number(h.dataset.offset) >= 0 && Number(h.dataset.duration) >= 0 && h.querySelector(".hop-bar").style.left !== "")
			&& Number(write.dataset.offset) > Number(recv.dataset.offset)
			&& document.querySelector("#lookup-trace .trace-head").textContent.includes("hops");
	})()`, 5*time.Second)

	// An event the processor can never take (400): dead-lettered, shown
	// with its destination.
	bad := uuid.NewString()
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/jobflow/receiver-sink", cfg.IngressPort), strings.NewReader(`{"id":"not a uuid"}`))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": bad, "ce-source": "/console-test", "ce-type": "dev.jobflow.job.created",
		"ce-partitionkey": bad, "content-type": "application/json"} {
		req.Header.Set(k, v)
	}
	if code := doJSON(t, req, nil); code != http.StatusAccepted {
		t.Fatalf("bad event into receiver-sink: %d", code)
	}
	wait("the dead-letter edge counts it", `[...document.querySelectorAll("g.edge.dead_letter.some")].some(e => e.dataset.from === "source/processor-source")`, 90*time.Second)
	if err := b.Click("#dl-refresh"); err != nil {
		t.Fatal(err)
	}
	wait("the dead letter listed", `[...document.querySelectorAll("#dead-letters tbody td")].some(td => td.textContent === "`+bad[:23]+`…")`, 30*time.Second)
	wait("its destination counted", `document.querySelectorAll("#dl-destinations span[data-destination]").length >= 1`, 5*time.Second)

	// A dead letter of a valid job (as if the processor had been down):
	// selected and redriven from the page, the job gets done.
	redo := uuid.New()
	letter := fmt.Sprintf(`{"id":%q,"status":"create","create_date":%q,"sleep":10,"data_size":64}`, redo, time.Now().UTC().Format("2006-01-02T15:04:05.000Z"))
	req, _ = http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/jobflow/dead-letter-sink", cfg.IngressPort), strings.NewReader(letter))
	for k, v := range map[string]string{"ce-specversion": "1.0", "ce-id": redo.String(), "ce-source": "/jobflow/receiver", "ce-type": "dev.jobflow.job.created",
		"ce-subject": redo.String(), "ce-partitionkey": redo.String(), "content-type": "application/json",
		"ce-knativeerrordest": c.eng.Plan().Function("processor").URL, "ce-knativeerrorcode": "503"} {
		req.Header.Set(k, v)
	}
	if code := doJSON(t, req, nil); code != http.StatusAccepted {
		t.Fatalf("letter into dead-letter-sink: %d", code)
	}
	box := `#dead-letters input[data-id="` + redo.String() + `"]`
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := b.Click("#dl-refresh"); err != nil {
			t.Fatal(err)
		}
		if b.WaitFor(`document.querySelector('`+box+`')`, 3*time.Second) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the letter to redrive is not listed")
		}
	}
	if err := b.Click(box); err != nil {
		t.Fatal(err)
	}
	if err := b.Click("#dl-redrive"); err != nil {
		t.Fatal(err)
	}
	wait("the redrive delivered", `document.querySelector("#dl-result").textContent.includes("1 delivered, 0 dead-lettered again")`, 60*time.Second)
	waitFinished(t, c, 2)

	if path := os.Getenv("JOBFLOW_CONSOLE_SCREENSHOT"); path != "" {
		// Some traffic for the picture.
		for range 20 {
			restJob(t, c.receiver, `{"sleep":1500,"data_size":256}`)
		}
		time.Sleep(2500 * time.Millisecond)
		if !filepath.IsAbs(path) {
			path = filepath.Join(testenv.RootDir(t), path)
		}
		if err := b.Screenshot(path); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	b.NoProblems(t)
}

func delivered(t *testing.T, b *browsertest.Browser, id string) int {
	t.Helper()
	n, err := browsertest.Eval[float64](b, fmt.Sprintf(`Number(document.querySelector('g.node[data-id="%s"]')?.getAttribute("data-delivered") || 0)`, id))
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}
