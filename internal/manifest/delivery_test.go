package manifest

import (
	"reflect"
	"testing"
	"time"

	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

func TestDeliveryPolicy(t *testing.T) {
	p, err := DeliveryPolicy(nil)
	if err != nil || !reflect.DeepEqual(p, delivery.Defaults) {
		t.Fatalf("no spec: %+v %v", p, err)
	}
	r, lin, d, to := int32(3), "linear", "PT0.5S", "PT2S"
	p, err = DeliveryPolicy(&Delivery{Retry: &r, BackoffPolicy: &lin, BackoffDelay: &d, Timeout: &to})
	if err != nil || !reflect.DeepEqual(p, delivery.Policy{Retry: 3, Backoff: delivery.Linear, Delay: 500 * time.Millisecond, Timeout: 2 * time.Second}) {
		t.Fatalf("spec: %+v %v", p, err)
	}
	bad := "1s" // Go syntax is not ISO-8601, as Knative's webhook would say
	if _, err := DeliveryPolicy(&Delivery{BackoffDelay: &bad}); err == nil {
		t.Fatal("1s must be refused")
	}
	wrong := "fibonacci"
	if _, err := DeliveryPolicy(&Delivery{BackoffPolicy: &wrong}); err == nil {
		t.Fatal("unknown policy must be refused")
	}
}
