package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/IBM/sarama"
	"github.com/google/uuid"

	"github.com/jobflow/jobflow/pkg/jobs/job"
	"github.com/jobflow/jobflow/pkg/jobs/receiver"
	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// runReceiver serves POST /create/job: the request is checked by the
// receiver's logic (RECEIVER_* settings, the same 400s), its job.created
// event produced to receiver-topic, and the job answered once the broker
// acknowledged it. Concurrent requests share produce requests (sarama
// batches what is waiting).
func runReceiver(ctx context.Context, o options) error {
	var cfg receiver.Config
	if err := fn.Process("RECEIVER", &cfg); err != nil {
		return err
	}
	logic := receiver.New(cfg)
	p, err := newProducer(o)
	if err != nil {
		return err
	}
	defer p.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+receiver.CreatePath, func(w http.ResponseWriter, r *http.Request) {
		if err := create(w, r, logic, p); err != nil {
			fn.WriteError(w, err)
		}
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func create(w http.ResponseWriter, r *http.Request, logic *receiver.Logic, p sarama.SyncProducer) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	var req job.Request
	if len(body) > 0 {
		if err := job.DecodeJSON(body, &req, true); err != nil {
			return fn.Invalid(err)
		}
	}
	j, e, err := logic.Create(req, uuid.New())
	if err != nil {
		return err
	}
	rec, err := record(receiverTopic, e)
	if err != nil {
		return err
	}
	if _, _, err := p.SendMessage(rec); err != nil {
		return fn.Unavailable(fmt.Errorf("produce job %s: %w", j.ID, err))
	}
	fn.WriteJSON(w, http.StatusOK, answer{ID: j.ID, CreateDate: j.CreateDate, Sleep: j.Sleep, DataSize: j.DataSize})
	return nil
}

// answer is the REST answer (as the receiver function's).
type answer struct {
	ID         uuid.UUID `json:"id"`
	CreateDate time.Time `json:"create_date"`
	Sleep      int64     `json:"sleep"`
	DataSize   int64     `json:"data_size"`
}
