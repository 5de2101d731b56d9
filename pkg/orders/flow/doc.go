// Package flow holds the orders domain's tests on the whole local engine:
// the repository's orders Broker, Triggers, PingSource and functions run
// by the engine against real PostgreSQL databases and the embedded
// Kafka-protocol broker; orders are placed as order.placed events into the
// broker, participants are SIGKILLed, the engine is restarted, the broker's
// topic is replayed, and `jobflow verify orders` (package verify) must find
// nothing. It has no code of its own.
package flow
