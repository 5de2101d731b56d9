package crdcheck_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/jobflow/jobflow/e2e/internal/crdcheck"
	"github.com/jobflow/jobflow/e2e/internal/repo"
)

func kafkaSourceCRD(t *testing.T) crdcheck.Set {
	t.Helper()
	dir, err := repo.ModuleDir("knative.dev/eventing-kafka-broker", "")
	if err != nil {
		t.Fatal(err)
	}
	set, err := crdcheck.LoadFiles(filepath.Join(dir, "control-plane/config/eventing-kafka-broker/100-source/100-kafka-source.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestValidate(t *testing.T) {
	set := kafkaSourceCRD(t)
	for _, v := range []string{"v1", "v1beta1"} {
		if !set.Has("sources.knative.dev/"+v, "KafkaSource") {
			t.Fatalf("no schema for KafkaSource %s", v)
		}
	}
	ok := `
apiVersion: sources.knative.dev/v1
kind: KafkaSource
metadata: {name: a, namespace: n}
spec:
  consumerGroup: g
  bootstrapServers: [k:9092]
  topics: [t]
  sink: {ref: {apiVersion: v1, kind: Service, name: s}}
`
	if err := set.Validate([]byte(ok)); err != nil {
		t.Fatalf("valid KafkaSource: %v", err)
	}
	for _, c := range []struct{ doc, want string }{
		{strings.Replace(ok, "consumerGroup: g", "consumerGroup: g\n  extra: 1", 1), `unknown field "spec.extra"`},
		{strings.Replace(ok, "topics: [t]", "topics: t", 1), "spec.topics: Invalid value: \"string\""},
		{strings.Replace(ok, "consumerGroup: g", "consumers: many", 1), "spec.consumers"},
		{strings.Replace(ok, "KafkaSource", "KafkaSauce", 1), "no CRD schema"},
	} {
		err := set.Validate([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want an error containing %q", err, c.want)
		}
	}
}
