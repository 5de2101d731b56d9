package plan

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jobflow/jobflow/pkg/runtime/pgdb"
)

// Keys of the cluster's database Secret (e2e/knative/cluster/10-databases.yaml)
// that name the servers themselves; any other key <name>-url names the
// database <name> on the PostgreSQL server.
const (
	keyPostgres   = "postgres-url"
	keyClickHouse = "clickhouse-addr"
	dbKeySuffix   = "-url"
)

// secretTemplate is func.yaml's {{ secret:<name>:<key> }}.
var secretTemplate = regexp.MustCompile(`^\{\{\s*secret:([^:\s]+):([^:\s]+)\s*\}\}$`)

// baseEnv is what every process gets besides func.yaml's envs: the
// addresses of the servers, the engine's data dir and the repository root
// (where a function that keeps local state, or reads files of the
// repository, finds them).
func (r *resolver) baseEnv() []string {
	return []string{
		"JOBFLOW_POSTGRES_URL=" + r.at.Postgres,
		"JOBFLOW_CLICKHOUSE_ADDR=" + r.at.ClickHouse,
		"KAFKA_BROKERS=" + strings.Join(r.at.Brokers, ","),
		"JOBFLOW_DIR=" + r.s.StateDir,
		"JOBFLOW_ROOT=" + r.s.Root,
	}
}

// envValue is the local value of a func.yaml env value: a secret's key by
// the rule of secretValue, other templates of the cluster left out (ok
// false), literal values with cluster addresses rewritten.
func (r *resolver) envValue(v string) (value string, ok bool, err error) {
	if m := secretTemplate.FindStringSubmatch(v); m != nil {
		value, err = r.secretValue(m[1], m[2])
		return value, err == nil, err
	}
	if strings.Contains(v, "{{") {
		return "", false, nil
	}
	return r.rewrite(v), true, nil
}

// secretValue is the local value of a key of the cluster's database
// Secret: the local PostgreSQL or ClickHouse, a signing key the engine
// generates (<name>-key, keys.go), or a database on the local PostgreSQL
// named after the key (dialogs-url: database dialogs), unless
// Settings.Databases gives that database's URL.
func (r *resolver) secretValue(secret, key string) (string, error) {
	switch key {
	case keyPostgres:
		return r.at.Postgres, nil
	case keyClickHouse:
		return r.at.ClickHouse, nil
	}
	if strings.HasSuffix(key, keySuffix) {
		return r.generatedKey(secret, key)
	}
	db, ok := strings.CutSuffix(key, dbKeySuffix)
	if !ok || db == "" {
		return "", fmt.Errorf("secret %s key %s: the engine knows %s, %s, <database>%s and <name>%s (a key it generates)", secret, key, keyPostgres, keyClickHouse, dbKeySuffix, keySuffix)
	}
	if u := r.s.Databases[db]; u != "" {
		return u, nil
	}
	if !slices.Contains(r.databases, db) {
		r.databases = append(r.databases, db)
	}
	return pgdb.WithDatabase(r.at.Postgres, db), nil
}
