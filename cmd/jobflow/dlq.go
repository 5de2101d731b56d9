package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jobflow/jobflow/internal/dlq"
	"github.com/jobflow/jobflow/internal/engine"
	"github.com/jobflow/jobflow/internal/manifest"
	"github.com/jobflow/jobflow/pkg/runtime/delivery"
)

const dlqUsage = `usage:
  jobflow dlq list    [filters] [--limit N] [--json]
  jobflow dlq show    LETTER...             (LETTER: topic/partition/offset, as list prints it)
  jobflow dlq redrive LETTER... | --all [filters] [--retry N] [--backoff-policy P] [--backoff-delay D] [--timeout D]
filters: --destination S (part of the URL)  --type T  --since T  --until T (RFC 3339, or a duration ago: 2h)
where:   --brokers host:port,...  (KAFKA_BROKERS, else 127.0.0.1:JOBFLOW_KAFKA_PORT)
         --topic T (repeatable; default: the dead-letter sinks' topics in the manifests)
`

// dlqFlags are the flags every dlq subcommand takes.
type dlqFlags struct {
	fs               *flag.FlagSet
	brokers          string
	topics           multiFlag
	destination, typ string
	since, until     string
	limit            int
	asJSON, all      bool
	retry            int
	backoff, delay   string
	timeout          string
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func newDLQFlags(name string) *dlqFlags {
	f := &dlqFlags{fs: flag.NewFlagSet("jobflow dlq "+name, flag.ContinueOnError)}
	f.fs.StringVar(&f.brokers, "brokers", "", "Kafka brokers (host:port,...)")
	f.fs.Var(&f.topics, "topic", "dead-letter topic (repeatable)")
	f.fs.StringVar(&f.destination, "destination", "", "only letters whose destination contains this")
	f.fs.StringVar(&f.typ, "type", "", "only events of this type")
	f.fs.StringVar(&f.since, "since", "", "only letters dead-lettered at or after (RFC 3339 or a duration ago)")
	f.fs.StringVar(&f.until, "until", "", "only letters dead-lettered before (RFC 3339 or a duration ago)")
	f.fs.IntVar(&f.limit, "limit", 0, "at most this many letters (0: all)")
	f.fs.BoolVar(&f.asJSON, "json", false, "print JSON")
	f.fs.BoolVar(&f.all, "all", false, "redrive every letter the filters match")
	f.fs.IntVar(&f.retry, "retry", 3, "retries of a redrive after its first attempt")
	f.fs.StringVar(&f.backoff, "backoff-policy", delivery.Exponential, "linear or exponential")
	f.fs.StringVar(&f.delay, "backoff-delay", "PT0.5S", "ISO-8601 backoff delay")
	f.fs.StringVar(&f.timeout, "timeout", "PT600S", "ISO-8601 timeout of one attempt")
	return f
}

// source is where the letters are: the flags, else the engine's settings
// and the manifests' dead-letter sinks.
func (f *dlqFlags) source() (dlq.Source, error) {
	cfg, err := engine.LoadConfig()
	if err != nil {
		return dlq.Source{}, err
	}
	src := dlq.Source{Topics: f.topics}
	switch {
	case f.brokers != "":
		src.Brokers = strings.Split(f.brokers, ",")
	case len(cfg.KafkaBrokers) > 0:
		src.Brokers = cfg.KafkaBrokers
	default:
		src.Brokers = []string{fmt.Sprintf("127.0.0.1:%d", cfg.KafkaPort)}
	}
	if len(src.Topics) == 0 {
		top, err := manifest.Load(cfg.Root)
		if err != nil {
			return src, fmt.Errorf("manifests (set --topic to skip them): %w", err)
		}
		if src.Topics = dlq.Topics(top); len(src.Topics) == 0 {
			return src, errors.New("no dead-letter sink in the manifests: name the topic with --topic")
		}
	}
	return src, nil
}

func (f *dlqFlags) filter(refs []string) (dlq.Filter, error) {
	flt := dlq.Filter{Destination: f.destination, Type: f.typ}
	var err error
	if flt.Since, err = parseWhen(f.since); err != nil {
		return flt, err
	}
	if flt.Until, err = parseWhen(f.until); err != nil {
		return flt, err
	}
	for _, s := range refs {
		r, err := dlq.ParseRef(s)
		if err != nil {
			return flt, err
		}
		flt.Refs = append(flt.Refs, r)
	}
	return flt, nil
}

func (f *dlqFlags) policy() (delivery.Policy, error) {
	p := delivery.Policy{Retry: f.retry}
	var err error
	if p.Backoff, err = delivery.ParseBackoff(f.backoff); err != nil {
		return p, err
	}
	if p.Delay, err = delivery.ParseDuration(f.delay); err != nil {
		return p, fmt.Errorf("--backoff-delay: %w", err)
	}
	if p.Timeout, err = delivery.ParseDuration(f.timeout); err != nil {
		return p, fmt.Errorf("--timeout: %w", err)
	}
	return p, nil
}

// parseWhen reads RFC 3339 or a duration before now; "" is no bound.
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return t, fmt.Errorf("time %q: want RFC 3339 (2026-12-02T07:00:00Z) or a duration ago (2h)", s)
	}
	return t, nil
}

// runDLQ is `jobflow dlq`.
func runDLQ(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError(dlqUsage)
	}
	f := newDLQFlags(args[0])
	if err := f.fs.Parse(interleave(f.fs, args[1:])); err != nil {
		return usageError(dlqUsage)
	}
	src, err := f.source()
	if err != nil {
		return err
	}
	flt, err := f.filter(f.fs.Args())
	if err != nil {
		return err
	}
	switch args[0] {
	case "list":
		return dlqList(ctx, out, f, src, flt)
	case "show":
		if len(flt.Refs) == 0 {
			return usageError(dlqUsage)
		}
		letters, err := dlq.Read(ctx, src, flt, 0)
		if err != nil {
			return err
		}
		if len(letters) < len(flt.Refs) {
			return fmt.Errorf("found %d of the %d letters named", len(letters), len(flt.Refs))
		}
		return writeLetters(out, letters)
	case "redrive":
		return dlqRedrive(ctx, out, f, src, flt)
	default:
		return usageError(dlqUsage)
	}
}

// dlqList prints the letters the filter matches, a line each (or JSON).
func dlqList(ctx context.Context, out io.Writer, f *dlqFlags, src dlq.Source, flt dlq.Filter) error {
	letters, err := dlq.Read(ctx, src, flt, f.limit)
	if err != nil {
		return err
	}
	if f.asJSON {
		return writeLetters(out, letters)
	}
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LETTER\tTIME\tSTATUS\tTYPE\tID\tDESTINATION\tANSWER")
	for _, l := range letters {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", l.Ref, l.Time.UTC().Format(time.RFC3339), l.Status,
			l.Event.Type(), l.Event.ID(), l.Destination, oneLine(l.AnswerText(), 60))
	}
	return tw.Flush()
}

// dlqRedrive redelivers the letters named (or all the filter matches) with
// the delivery rules; errPartial when some are dead-lettered again.
func dlqRedrive(ctx context.Context, out io.Writer, f *dlqFlags, src dlq.Source, flt dlq.Filter) error {
	if len(flt.Refs) == 0 && !f.all {
		return errors.New("redrive: name the letters, or --all to redrive every letter the filters match")
	}
	p, err := f.policy()
	if err != nil {
		return err
	}
	letters, err := dlq.Read(ctx, src, flt, f.limit)
	if err != nil {
		return err
	}
	r, err := dlq.NewRedriver(src.Brokers, p)
	if err != nil {
		return err
	}
	defer r.Close()
	var failed int
	for _, l := range letters {
		res, err := r.Redrive(ctx, l)
		switch {
		case err != nil:
			failed++
			fmt.Fprintf(out, "%s\terror\t%v\n", l.Ref, err)
		case res.Outcome == dlq.DeadLettered:
			failed++
			fmt.Fprintf(out, "%s\tdead-lettered again as %s\tstatus %d\t%s\n", l.Ref, res.NewLetter, res.Status, res.Err)
		default:
			fmt.Fprintf(out, "%s\t%s\tstatus %d\n", l.Ref, res.Outcome, res.Status)
		}
	}
	fmt.Fprintf(out, "redriven %d, delivered %d, not delivered %d\n", len(letters), len(letters)-failed, failed)
	if failed > 0 {
		return errPartial
	}
	return nil
}

// letterJSON is a letter as show and list --json print it.
type letterJSON struct {
	dlq.Letter
	Answer string `json:"answer"`
}

func writeLetters(out io.Writer, letters []dlq.Letter) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	for _, l := range letters {
		if err := enc.Encode(letterJSON{Letter: l, Answer: l.AnswerText()}); err != nil {
			return err
		}
	}
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
