package kafkasink_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/internal/kafkasink"
)

func batchOf(events ...string) string { return "[" + strings.Join(events, ",") + "]" }

func structuredEvent(id, key string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"/s","type":"order.placed","partitionkey":%q,"datacontenttype":"application/json","data":{"id":%q}}`, id, key, id)
}

func postBatch(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/cloudevents-batch+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIngressTakesABatchAllOrNothing: a CloudEvents batch is written whole
// (each event a binary record keyed by its partitionkey, in the batch's
// order) and answered 202; a batch with one invalid event is a 400 naming
// it, and nothing of it is written, so that the sender's fallback (one by
// one) refuses that event alone; a batch Kafka cannot take is a 503.
func TestIngressTakesABatchAllOrNothing(t *testing.T) {
	srv, brokers := brokerIngress(t, kafkasink.Sink{Namespace: "shop", Name: "gone", Topic: "no-such-topic"})
	url := srv.URL + "/shop/default"

	bad := `{"specversion":"1.0","id":"x","type":"order.placed"}` // no source
	code, answer := postBatch(t, url, batchOf(structuredEvent("b1", "k1"), bad, structuredEvent("b2", "k1")))
	if code != http.StatusBadRequest || !strings.Contains(answer, "1 of the batch") {
		t.Fatalf("batch with an invalid event: %d %s, want 400 naming event 1", code, answer)
	}
	if code, answer := postBatch(t, url, `[{"specversion":"1.0"`); code != http.StatusBadRequest {
		t.Fatalf("truncated batch: %d %s, want 400", code, answer)
	}

	var events []string
	for i := range 50 {
		events = append(events, structuredEvent(fmt.Sprint("e", i), "k1"))
	}
	if code, answer := postBatch(t, url, batchOf(events...)); code != http.StatusAccepted {
		t.Fatalf("batch of 50: %d %s, want 202", code, answer)
	}
	if code, answer := postBatch(t, url, "[]"); code != http.StatusAccepted {
		t.Fatalf("empty batch: %d %s, want 202", code, answer)
	}
	// One event after the batch: if the refused batch had written anything,
	// it would be read before the batch's 50.
	binary := map[string]string{"ce-specversion": "1.0", "ce-id": "last", "ce-source": "/s", "ce-type": "t", "ce-partitionkey": "k2"}
	if code := post(t, url, binary, ""); code != http.StatusAccepted {
		t.Fatalf("single event: %d", code)
	}
	rs := records(t, brokers, 51)
	for i, r := range rs[:50] {
		id := fmt.Sprint("e", i)
		if header(r, "ce_id") != id || string(r.Key) != "k1" || string(r.Value) != fmt.Sprintf(`{"id":%q}`, id) ||
			header(r, "content-type") != "application/json" {
			t.Fatalf("record %d: key %q headers %v value %s, want event %s in binary mode", i, r.Key, r.Headers, r.Value, id)
		}
	}
	if header(rs[50], "ce_id") != "last" {
		t.Fatalf("record 50 is %q, want the single event after the batch (a refused batch wrote something)", header(rs[50], "ce_id"))
	}

	if code, _ := postBatch(t, srv.URL+"/shop/gone", batchOf(structuredEvent("g1", "k"), structuredEvent("g2", "k"))); code != http.StatusServiceUnavailable {
		t.Fatalf("batch Kafka refused: %d, want 503", code)
	}
}
