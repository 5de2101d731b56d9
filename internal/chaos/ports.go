package chaos

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/jobflow/jobflow/internal/procs"
)

// FixedFunctions are the functions with a fixed local port (func.yaml's
// jobflow.dev/local-port); the suite gives each its own.
var FixedFunctions = []string{"receiver", "query", "dialogs", "users", "orders", "notify", "payment",
	"stock", "delivery", "config-subscribe", "config-source"}

// PortsFromEnv reads the system's ports from the engine's own variables
// (JOBFLOW_KAFKA_PORT, JOBFLOW_POSTGRES_PORT, JOBFLOW_PORTS, ...); each
// one unset is a free port, so runs beside another engine do not collide.
func PortsFromEnv() (Ports, error) {
	var p Ports
	var err error
	get := func(name string) int {
		if err != nil {
			return 0
		}
		if v := os.Getenv(name); v != "" {
			n, e := strconv.Atoi(v)
			if e != nil {
				err = fmt.Errorf("%s=%q: %w", name, v, e)
			}
			return n
		}
		n, e := procs.FreePort()
		if e != nil {
			err = e
		}
		return n
	}
	p.Postgres, p.ClickHouseTCP, p.ClickHouseHTTP = get("JOBFLOW_POSTGRES_PORT"), get("JOBFLOW_CLICKHOUSE_TCP_PORT"), get("JOBFLOW_CLICKHOUSE_HTTP_PORT")
	p.Kafka, p.Ingress, p.Broker, p.Admin = get("JOBFLOW_KAFKA_PORT"), get("JOBFLOW_INGRESS_PORT"), get("JOBFLOW_BROKER_PORT"), get("JOBFLOW_ADMIN_PORT")
	p.Functions = map[string]int{}
	for _, pair := range strings.Split(os.Getenv("JOBFLOW_PORTS"), ",") {
		name, port, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if !ok {
			continue
		}
		n, e := strconv.Atoi(port)
		if e != nil {
			return p, fmt.Errorf("JOBFLOW_PORTS: %q: %w", pair, e)
		}
		p.Functions[name] = n
	}
	for _, f := range FixedFunctions {
		if p.Functions[f] == 0 {
			p.Functions[f] = get("")
		}
	}
	return p, err
}
