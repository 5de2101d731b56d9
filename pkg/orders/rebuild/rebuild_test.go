package rebuild_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	"github.com/cloudevents/sdk-go/v2/binding"

	"github.com/jobflow/jobflow/internal/testenv"
	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/notify"
	"github.com/jobflow/jobflow/pkg/orders/rebuild"
)

func version(user, v int64) events.UserChanged {
	return events.UserChanged{UserID: user, Username: fmt.Sprintf("u%d", user), FirstName: "F", LastName: "L",
		Email: fmt.Sprintf("u%d.v%d@shop.test", user, v), Phone: "+1", Version: v}
}

// The topic holds three versions of each of 20 users; the live table
// applied them as notify does, then drifted: one customer deleted, one
// changed by hand, one that the topic never had. The rebuild finds exactly
// those, the swap puts the topic's truth in place, and a second rebuild
// finds nothing.
func TestRebuildCustomers(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresDB(t)
	brokers := testenv.Kafka(t, 2, rebuild.Topic)
	prod := testenv.Producer(t, brokers)
	live, err := notify.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for v := int64(1); v <= 3; v++ {
		for user := int64(1); user <= 20; user++ {
			u := version(user, v)
			e, err := events.NewUserChanged(u)
			if err != nil {
				t.Fatal(err)
			}
			pm := &sarama.ProducerMessage{Topic: rebuild.Topic, Key: sarama.StringEncoder(fmt.Sprint(user))}
			if err := kafka_sarama.WriteProducerMessage(ctx, binding.ToMessage(&e), pm); err != nil {
				t.Fatal(err)
			}
			if _, _, err := prod.SendMessage(pm); err != nil {
				t.Fatal(err)
			}
			if err := live.Customer(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A tombstone and a record that is not a CloudEvent: skipped, as notify's source skips them.
	for _, pm := range []*sarama.ProducerMessage{
		{Topic: rebuild.Topic, Key: sarama.StringEncoder("99")},
		{Topic: rebuild.Topic, Key: sarama.StringEncoder("98"), Value: sarama.StringEncoder("not an event")},
	} {
		if _, _, err := prod.SendMessage(pm); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := live.Pool.Exec(ctx, `DELETE FROM customers WHERE user_id = 3;
		UPDATE customers SET email = 'hand@edit' WHERE user_id = 7;
		INSERT INTO customers VALUES (500, 'ghost', 'G', 'H', 'g@h', '+0', 1)`); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	o := rebuild.Options{Brokers: brokers, NotifyURL: url}
	d, err := rebuild.Customers(ctx, o, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !slices.Equal(d.Missing, []string{"customers 3"}) || !slices.Equal(d.Differ, []string{"customers 7"}) ||
		!slices.Equal(d.Extra, []string{"customers 500"}) || d.Rebuilt != 20 || d.Live != 20 {
		t.Fatalf("diff %+v\n%s", d, out.String())
	}

	o.Swap = true
	if d, err = rebuild.Customers(ctx, o, &out); err != nil || !d.Swapped {
		t.Fatalf("swap: %+v %v\n%s", d, err, out.String())
	}
	var email string
	if err := live.Pool.QueryRow(ctx, `SELECT email FROM customers WHERE user_id = 7`).Scan(&email); err != nil || email != "u7.v3@shop.test" {
		t.Fatalf("after the swap, customer 7's email is %q (%v)", email, err)
	}
	if d, err = rebuild.Customers(ctx, rebuild.Options{Brokers: brokers, NotifyURL: url}, &out); err != nil || !d.Equal() {
		t.Fatalf("after the swap: %+v %v", d, err)
	}
}
