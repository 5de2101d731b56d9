package notify

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/orders/events"
)

// Text is the message to customer c about an order.
func Text(c events.UserChanged, order uuid.UUID, decision string, amountCents int64, reasons []string) string {
	amount := fmt.Sprintf("%d.%02d", amountCents/100, amountCents%100)
	if decision == "confirmed" {
		return fmt.Sprintf("Dear %s %s, your order %s is confirmed: %s has been charged and it is on its way.",
			c.FirstName, c.LastName, order, amount)
	}
	return fmt.Sprintf("Dear %s %s, we are sorry: your order %s of %s could not be accepted (%s). Nothing has been charged.",
		c.FirstName, c.LastName, order, amount, strings.Join(reasons, "; "))
}
