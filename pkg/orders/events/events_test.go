package events

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"
)

func TestOrderIDIsDerivedFromUserAndKey(t *testing.T) {
	a, b := OrderID(1, "k1"), OrderID(1, "k1")
	if a != b {
		t.Fatalf("same user and key: %s and %s", a, b)
	}
	if OrderID(2, "k1") == a || OrderID(1, "k2") == a || OrderID(11, "") == OrderID(1, "1") {
		t.Fatal("different users or keys share an order id")
	}
}

func TestAmountRefusesOverflow(t *testing.T) {
	if a, err := Amount(3, 250); err != nil || a != 750 {
		t.Fatalf("3 × 250 = %d, %v", a, err)
	}
	for _, c := range [][2]int64{{1 << 62, 4}, {MaxAmountCents, 2}, {0, 5}, {5, -1}} {
		if _, err := Amount(c[0], c[1]); err == nil {
			t.Errorf("Amount(%d, %d) accepted", c[0], c[1])
		}
	}
}

func TestPlacedRoundTripAndValidation(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	p := Placed{OrderID: uuid.New(), UserID: 7, ProductID: 3, Number: 2, UnitPriceCents: 150, AmountCents: 300, PlacedAt: now, Deadline: now.Add(5 * time.Second)}
	e, err := NewPlaced(p)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID() != "placed/"+p.OrderID.String() || e.Extensions()[PartitionKey] != p.OrderID.String() || e.Validate() != nil {
		t.Fatalf("event %s", e)
	}
	var got Placed
	if err := Decode(e, TypePlaced, &got); err != nil || got != p || got.Validate() != nil {
		t.Fatalf("decoded %+v %v", got, err)
	}
	bad := p
	bad.AmountCents = 299
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "amount_cents") {
		t.Fatalf("wrong amount: %v", err)
	}
	if err := Decode(e, TypeValidated, &got); err == nil {
		t.Fatal("wrong type decoded")
	}
}

func TestDecodeRefusesBadData(t *testing.T) {
	for name, data := range map[string]string{
		"unknown field": `{"order_id":"` + uuid.NewString() + `","check":"stock","ok":true,"x":1}`,
		"not json":      `{"order_id":`,
		"two values":    `{} {}`,
		"bad utf-8":     "{\"order_id\":\"\xff\"}",
	} {
		e := event.New()
		e.SetType(TypeValidated)
		e.SetDataContentType("application/json")
		e.DataEncoded = []byte(data)
		var v Validated
		if err := Decode(e, TypeValidated, &v); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func TestDecisionType(t *testing.T) {
	id := uuid.New()
	c, _ := NewDecided(Decided{OrderID: id, UserID: 1, AmountCents: 5})
	r, _ := NewDecided(Decided{OrderID: id, UserID: 1, AmountCents: 5, Reasons: []string{"stock: none left"}})
	if c.Type() != TypeConfirmed || r.Type() != TypeRejected || c.ID() != r.ID() || c.ID() != "decided/"+id.String() {
		t.Fatalf("%s %s / %s %s", c.Type(), c.ID(), r.Type(), r.ID())
	}
}
