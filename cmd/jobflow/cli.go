package main

import (
	"errors"
	"flag"
	"strings"
)

// usageError is a command line the command cannot read: exit 2 with the usage.
type usageError string

func (u usageError) Error() string { return string(u) }

// errPartial: the command ran, and some of what it did failed (exit 1).
var errPartial = errors.New("not everything succeeded")

// interleave puts flags before positional arguments, so that
// `jobflow dlq show REF --json` reads as `--json REF` (flag stops at the
// first non-flag).
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
				continue
			}
			if i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		}
	}
	return append(flags, rest...)
}
