package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testBroker = `apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: knative-eventing}
data: {default.topic.partitions: "2"}
---
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata:
  name: b
  namespace: ns
  annotations: {eventing.knative.dev/broker.class: Kafka}
spec:
  config: {apiVersion: v1, kind: ConfigMap, name: cfg, namespace: knative-eventing}
`

func loadWith(t *testing.T, triggers string) (*Topology, error) {
	t.Helper()
	root := t.TempDir()
	for dir, body := range map[string]string{"brokers": testBroker, "triggers": triggers} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dir, "x.yaml"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Load(root)
}

func trigger(spec string) string {
	return "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t, namespace: ns}\nspec:\n  broker: b\n  subscriber: {uri: 'http://example.com/x'}\n" + spec
}

// TestEventingKnativeValidation: Triggers and PingSources are refused
// where Knative's webhook refuses them, with its reason.
func TestEventingKnativeValidation(t *testing.T) {
	topo, err := loadWith(t, trigger("  filters: [{exact: {type: a}}, {cesql: \"type = 'b'\"}]\n  filter: {attributes: {source: s}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tr := topo.Triggers[0]
	if len(tr.Spec.Filters) != 2 || tr.Spec.Filters[0].Exact["type"] != "a" || tr.Spec.Filters[1].CESQL != "type = 'b'" || tr.Attributes()["source"] != "s" {
		t.Errorf("filters %+v attributes %v", tr.Spec.Filters, tr.Attributes())
	}
	if bt, err := topo.BrokerTopic(topo.Brokers[0]); err != nil || bt.Partitions != 2 {
		t.Errorf("broker topic %+v %v", bt, err)
	}
	bad := map[string]string{
		"cesql":        trigger("  filters: [{cesql: \"type = \"}]\n"),
		"two dialects": trigger("  filters: [{exact: {type: a}, prefix: {type: b}}]\n"),
		"attribute":    trigger("  filter: {attributes: {Type: a}}\n"),
		"every":        "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p, namespace: ns}\nspec:\n  schedule: '@every 1m'\n  sink: {uri: 'http://example.com/x'}\n",
		"both data":    "apiVersion: sources.knative.dev/v1\nkind: PingSource\nmetadata: {name: p, namespace: ns}\nspec:\n  data: a\n  dataBase64: YQ==\n  sink: {uri: 'http://example.com/x'}\n",
	}
	for name, doc := range bad {
		if _, err := loadWith(t, doc); err == nil || !strings.Contains(err.Error(), "knative validation") {
			t.Errorf("%s: want Knative's refusal, got %v", name, err)
		}
	}
}
