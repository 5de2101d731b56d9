package engine

import (
	"fmt"
	"net"
	"sync"

	"github.com/jobflow/jobflow/internal/engine/plan"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/internal/procs"
)

// listeners are the ports the engine claims before it starts anything:
// the KafkaSink and Broker ingresses and each function's activator (its fixed port or a free
// one), so their URLs are known when the plan is built. Each is handed
// over to what serves it; release closes the ones never taken.
type listeners struct {
	mu        sync.Mutex
	ingress   net.Listener
	broker    net.Listener // the Broker ingress
	functions map[string]net.Listener
	adapters  map[string]int // free ports for adapters, which listen themselves
}

func reserve(topo *manifest.Topology, cfg Config) (_ *listeners, err error) {
	l := &listeners{functions: map[string]net.Listener{}, adapters: map[string]int{}}
	defer func() {
		if err != nil {
			l.release()
		}
	}()
	if l.ingress, err = listen(cfg.IngressPort); err != nil {
		return nil, fmt.Errorf("kafka sink ingress: %w", err)
	}
	if l.broker, err = listen(cfg.BrokerPort); err != nil {
		return nil, fmt.Errorf("kafka broker ingress (JOBFLOW_BROKER_PORT): %w", err)
	}
	for _, f := range topo.Functions {
		port, err := plan.LocalPort(f, cfg.Ports)
		if err != nil {
			return nil, err
		}
		if l.functions[f.Name], err = listen(port); err != nil {
			return nil, fmt.Errorf("function %s: port %d (JOBFLOW_PORTS or %s): %w", f.Name, port, manifest.AnnotationLocalPort, err)
		}
	}
	for _, a := range topo.Adapters {
		if l.adapters[a.Name], err = procs.FreePort(); err != nil {
			return nil, fmt.Errorf("adapter %s: %w", a.Name, err)
		}
	}
	return l, nil
}

func listen(port int) (net.Listener, error) {
	return net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
}

// addresses are the plan's inputs: the claimed ports and the servers.
func (l *listeners) addresses(srv servers, brokers []string) plan.Addresses {
	l.mu.Lock()
	defer l.mu.Unlock()
	at := plan.Addresses{
		Ingress: l.ingress.Addr().String(), BrokerIngress: l.broker.Addr().String(), Functions: map[string]string{}, Adapters: l.adapters,
		Postgres: srv.postgres, ClickHouse: srv.clickhouse, Brokers: brokers,
	}
	for name, ln := range l.functions {
		at.Functions[name] = ln.Addr().String()
	}
	return at
}

// takeIngress hands the ingress listener over to its server.
func (l *listeners) takeIngress() net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.ingress
	l.ingress = nil
	return ln
}

// takeBroker hands the Broker ingress listener over to its server.
func (l *listeners) takeBroker() net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.broker
	l.broker = nil
	return ln
}

// takeFunction hands a function's listener over to its pool.
func (l *listeners) takeFunction(name string) net.Listener {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln := l.functions[name]
	delete(l.functions, name)
	return ln
}

// release closes the listeners nothing took (startup failed).
func (l *listeners) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ln := range []*net.Listener{&l.ingress, &l.broker} {
		if *ln != nil {
			_ = (*ln).Close()
			*ln = nil
		}
	}
	for name, ln := range l.functions {
		_ = ln.Close()
		delete(l.functions, name)
	}
}
