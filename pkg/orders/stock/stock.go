// Package stock is the orders saga's stock participant: the shop's
// products (admin-only writes) and a reserve per order that holds the
// ordered items until the decision ships them (confirmed) or puts them
// back (rejected). Stock is conserved per product: received = in stock +
// reserved + shipped (jobflow verify orders checks it).
package stock

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/jobflow/jobflow/pkg/orders/events"
	"github.com/jobflow/jobflow/pkg/orders/participant"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Schema of the stock database (besides participant.Schema).
const Schema = `
CREATE TABLE IF NOT EXISTS products (
	id          bigserial PRIMARY KEY,
	name        text NOT NULL,
	price_cents bigint NOT NULL CHECK (price_cents > 0),
	in_stock    bigint NOT NULL CHECK (in_stock >= 0),
	received    bigint NOT NULL CHECK (received >= 0),
	updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reserves (
	order_id   uuid PRIMARY KEY,
	product_id bigint NOT NULL,
	number     bigint NOT NULL,
	state      text NOT NULL CHECK (state IN ('reserved', 'shipped', 'released', 'refused')),
	reason     text NOT NULL DEFAULT '',
	created_at timestamptz NOT NULL DEFAULT now(),
	settled_at timestamptz
);
CREATE INDEX IF NOT EXISTS reserves_product ON reserves (product_id);`

// Limits of the input.
const (
	MaxNameLen = 200
	MaxNumber  = int64(1e9) // items of one product received at once (a bigint of received would take 9e9 restocks to overflow)
)

// Spec is the stock function.
var Spec = participant.Spec{
	Name: "stock", URLEnv: "JOBFLOW_STOCK_URL", Schema: Schema,
	Open: func(_ context.Context, db *pgdb.DB) (participant.Service, error) { return &Service{db: db}, nil },
}

// Service is the stock participant.
type Service struct{ db *pgdb.DB }

// Check is stock.
func (s *Service) Check() events.Check { return events.CheckStock }

// Reserve takes the ordered items out of stock when the product exists,
// its price is the one the customer saw and enough is in stock.
func (s *Service) Reserve(ctx context.Context, tx pgx.Tx, p events.Placed) (bool, string, error) {
	var price, inStock int64
	err := tx.QueryRow(ctx, `SELECT price_cents, in_stock FROM products WHERE id = $1 FOR UPDATE`, p.ProductID).Scan(&price, &inStock)
	reason := ""
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		reason = fmt.Sprintf("unknown product %d", p.ProductID)
	case err != nil:
		return false, "", err
	case price != p.UnitPriceCents:
		reason = fmt.Sprintf("price mismatch: product %d costs %d cents, the order says %d", p.ProductID, price, p.UnitPriceCents)
	case inStock < p.Number:
		reason = fmt.Sprintf("out of stock: %d of product %d left, the order wants %d", inStock, p.ProductID, p.Number)
	}
	if reason != "" {
		_, err := tx.Exec(ctx, `INSERT INTO reserves (order_id, product_id, number, state, reason) VALUES ($1, $2, $3, 'refused', $4)`,
			p.OrderID, p.ProductID, p.Number, reason)
		return false, reason, err
	}
	if _, err := tx.Exec(ctx, `UPDATE products SET in_stock = in_stock - $2, updated_at = now() WHERE id = $1`, p.ProductID, p.Number); err != nil {
		return false, "", err
	}
	_, err = tx.Exec(ctx, `INSERT INTO reserves (order_id, product_id, number, state) VALUES ($1, $2, $3, 'reserved')`,
		p.OrderID, p.ProductID, p.Number)
	return err == nil, "", err
}

// Settle ships the reserved items (confirmed) or puts them back (rejected).
func (s *Service) Settle(ctx context.Context, tx pgx.Tx, d events.Decided, confirmed bool) (events.Action, string, error) {
	var product, number int64
	var state string
	err := tx.QueryRow(ctx, `SELECT product_id, number, state FROM reserves WHERE order_id = $1 FOR UPDATE`, d.OrderID).Scan(&product, &number, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return events.ActionNone, "nothing was reserved", nil
	}
	if err != nil {
		return "", "", err
	}
	if state != "reserved" {
		return events.ActionNone, "reserve was " + state, nil
	}
	if confirmed {
		_, err := tx.Exec(ctx, `UPDATE reserves SET state = 'shipped', settled_at = now() WHERE order_id = $1`, d.OrderID)
		return events.ActionShipped, fmt.Sprintf("%d of product %d shipped", number, product), err
	}
	if _, err := tx.Exec(ctx, `UPDATE reserves SET state = 'released', settled_at = now() WHERE order_id = $1`, d.OrderID); err != nil {
		return "", "", err
	}
	_, err = tx.Exec(ctx, `UPDATE products SET in_stock = in_stock + $2, updated_at = now() WHERE id = $1`, product, number)
	return events.ActionReleased, fmt.Sprintf("%d of product %d back in stock", number, product), err
}

// Routes: every user reads the catalogue; only admins change it.
//
//	GET   /products                                               -> 200 [Product]
//	GET   /products/{id}                                          -> 200 Product
//	POST  /products          {"name","price_cents","in_stock"}    -> 201 Product   (admin)
//	PATCH /products/{id}     {"name"?, "price_cents"?}            -> 200 Product   (admin)
//	POST  /products/{id}/restock {"number": 5}                    -> 200 Product   (admin)
func (s *Service) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /products", s.list)
	mux.HandleFunc("GET /products/{id}", s.get)
	mux.HandleFunc("POST /products", participant.AdminOnly(s.create))
	mux.HandleFunc("PATCH /products/{id}", participant.AdminOnly(s.update))
	mux.HandleFunc("POST /products/{id}/restock", participant.AdminOnly(s.restock))
	mux.HandleFunc("/", participant.NotFound("GET /products, GET /products/<id>, POST /products, PATCH /products/<id>, POST /products/<id>/restock"))
}

// Product is one article of the shop.
type Product struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
	InStock    int64  `json:"in_stock"`
	Received   int64  `json:"received"`
}

const productColumns = `id, name, price_cents, in_stock, received`

func scanProduct(row pgx.Row) (Product, error) {
	var p Product
	err := row.Scan(&p.ID, &p.Name, &p.PriceCents, &p.InStock, &p.Received)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, fn.WithStatus(http.StatusNotFound, errors.New("no such product"))
	}
	return p, err
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	rows, err := s.db.Pool.Query(r.Context(), `SELECT `+productColumns+` FROM products ORDER BY id LIMIT 10000`)
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Product, error) { return scanProduct(row) })
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, ps)
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	id, err := participant.PathID(r, "id")
	if err == nil {
		var p Product
		p, err = scanProduct(s.db.Pool.QueryRow(r.Context(), `SELECT `+productColumns+` FROM products WHERE id = $1`, id))
		if err == nil {
			fn.WriteJSON(w, http.StatusOK, p)
			return
		}
	}
	fn.WriteError(w, participant.StoreError(err))
}

// ProductRequest is the body of POST /products and PATCH /products/{id}.
type ProductRequest struct {
	Name       *string `json:"name"`
	PriceCents *int64  `json:"price_cents"`
	InStock    *int64  `json:"in_stock"`
}

// Validate checks the fields given; create says whether name and price are required.
func (q ProductRequest) Validate(create bool) error {
	var errs []error
	if q.Name == nil && create {
		errs = append(errs, errors.New("name is required"))
	}
	if q.Name != nil {
		n := strings.TrimSpace(*q.Name)
		if n == "" || utf8.RuneCountInString(n) > MaxNameLen || strings.ContainsRune(n, 0) {
			errs = append(errs, fmt.Errorf("name: 1 to %d characters, no NUL", MaxNameLen))
		}
	}
	if q.PriceCents == nil && create {
		errs = append(errs, errors.New("price_cents is required"))
	}
	if q.PriceCents != nil && (*q.PriceCents <= 0 || *q.PriceCents > events.MaxAmountCents) {
		errs = append(errs, fmt.Errorf("price_cents: 1 to %d", events.MaxAmountCents))
	}
	if q.InStock != nil && (!create || *q.InStock < 0 || *q.InStock > MaxNumber) {
		if create {
			errs = append(errs, fmt.Errorf("in_stock: 0 to %d", MaxNumber))
		} else {
			errs = append(errs, errors.New("in_stock cannot be set: POST /products/<id>/restock adds to it"))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fn.Invalid(err)
	}
	return nil
}

func (s *Service) create(w http.ResponseWriter, r *http.Request) {
	var q ProductRequest
	err := participant.DecodeJSON(r, &q)
	if err == nil {
		err = q.Validate(true)
	}
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	var n int64
	if q.InStock != nil {
		n = *q.InStock
	}
	p, err := scanProduct(s.db.Pool.QueryRow(r.Context(),
		`INSERT INTO products (name, price_cents, in_stock, received) VALUES ($1, $2, $3, $3) RETURNING `+productColumns,
		strings.TrimSpace(*q.Name), *q.PriceCents, n))
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusCreated, p)
}

func (s *Service) update(w http.ResponseWriter, r *http.Request) {
	id, err := participant.PathID(r, "id")
	var q ProductRequest
	if err == nil {
		err = participant.DecodeJSON(r, &q)
	}
	if err == nil {
		err = q.Validate(false)
	}
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	var name *string
	if q.Name != nil {
		n := strings.TrimSpace(*q.Name)
		name = &n
	}
	p, err := scanProduct(s.db.Pool.QueryRow(r.Context(), `
UPDATE products SET name = coalesce($2, name), price_cents = coalesce($3, price_cents), updated_at = now()
WHERE id = $1 RETURNING `+productColumns, id, name, q.PriceCents))
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, p)
}

// RestockRequest is the body of POST /products/{id}/restock.
type RestockRequest struct {
	Number *int64 `json:"number"`
}

func (s *Service) restock(w http.ResponseWriter, r *http.Request) {
	id, err := participant.PathID(r, "id")
	var q RestockRequest
	if err == nil {
		err = participant.DecodeJSON(r, &q)
	}
	if err == nil && (q.Number == nil || *q.Number <= 0 || *q.Number > MaxNumber) {
		err = fn.Invalidf("number is required: 1 to %d", MaxNumber)
	}
	if err != nil {
		fn.WriteError(w, err)
		return
	}
	p, err := scanProduct(s.db.Pool.QueryRow(r.Context(), `
UPDATE products SET in_stock = in_stock + $2, received = received + $2, updated_at = now()
WHERE id = $1 RETURNING `+productColumns, id, *q.Number))
	if err != nil {
		fn.WriteError(w, participant.StoreError(err))
		return
	}
	fn.WriteJSON(w, http.StatusOK, p)
}
