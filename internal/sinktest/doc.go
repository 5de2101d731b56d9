// Package sinktest holds the end-to-end tests of the sinks (issue 4): the
// local engine feeds pgsink and chsink from Kafka while a sink is killed in
// the middle of a batch and whole batches are delivered again; nothing may
// be lost and no duplicate may be visible.
package sinktest
