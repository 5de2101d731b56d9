package manifest

import (
	"strings"
	"testing"
)

func TestKafkaSourceOrder(t *testing.T) {
	for _, c := range []struct {
		name           string
		ordering       string
		annotations    map[string]string
		ordered, byKey bool
		err            string
	}{
		{name: "Knative's default", ordered: true},
		{name: "unordered", ordering: "unordered"},
		{name: "the older annotation", annotations: map[string]string{AnnotationDeliveryOrder: "unordered"}},
		{name: "by key over the default", annotations: map[string]string{AnnotationJobflowOrder: "key"}, byKey: true},
		{name: "by key with unordered", ordering: "unordered", annotations: map[string]string{AnnotationJobflowOrder: "key"}, byKey: true},
		{name: "by key and ordered", ordering: "ordered", annotations: map[string]string{AnnotationJobflowOrder: "key"}, err: "contradict"},
		{name: "by key and the ordered annotation", annotations: map[string]string{AnnotationJobflowOrder: "key", AnnotationDeliveryOrder: "ordered"}, err: "contradict"},
		{name: "an unknown order", annotations: map[string]string{AnnotationJobflowOrder: "keys"}, err: "the one value"},
	} {
		var s KafkaSource
		s.Name, s.Annotations, s.Spec.Ordering = "src", c.annotations, c.ordering
		ordered, byKey, err := s.Order()
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error about %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || ordered != c.ordered || byKey != c.byKey {
			t.Errorf("%s: ordered %v, by key %v, %v; want %v, %v", c.name, ordered, byKey, err, c.ordered, c.byKey)
		}
	}
}
