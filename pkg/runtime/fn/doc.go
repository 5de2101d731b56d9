// Package fn is the runtime of jobflow's functions: it runs a function's
// logic as a Knative Functions instanced CloudEvent function, the same way
// on Knative (func's wrapper) and locally (Main).
//
// A function is a Handler (pure logic over typed events) made into an
// EventFunction; its outputs go to K_SINK (or K_SINK_<NAME>) before the
// delivery is answered, or are the reply when there is no sink:
//
//	// functions/upper/handle.go
//	package function
//
//	type Function struct{ *fn.EventFunction }
//
//	func New() *Function { return &Function{fn.NewEventFunction("upper", newUpper)} }
//
//	func newUpper() (fn.Handler, error) {
//		return fn.HandlerFunc(func(ctx context.Context, in event.Event) ([]fn.Output, error) {
//			out := in.Clone()
//			out.SetType("dev.jobflow.upper")
//			if err := out.SetData("text/plain", bytes.ToUpper(in.Data())); err != nil {
//				return nil, fn.Invalid(err) // 400: never redelivered
//			}
//			return fn.Emit(out), nil
//		}), nil
//	}
//
// and its local main is fn.Main("upper", function.New()).
//
// A handler may have the lifecycle methods a function has (Start, Stop,
// Ready, Alive: see Handler) and may take a batch of events at once
// (BatchHandler; the batch is read by package cebatch). Errors carry the
// HTTP status that decides redelivery (Invalid, Unavailable, WithStatus);
// metrics are declared with NewCounter, NewHistogram and NewGauge.
package fn
