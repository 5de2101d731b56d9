// Package function is the users function of the orders domain: registration, login (a signed token) and the caller's profile; every version of a user goes to the compacted orders-users topic as dev.jobflow.user.changed.
package function

import "github.com/jobflow/jobflow/pkg/orders/users"

// Function is the instanced HTTP function.
type Function struct{ *users.Function }

// New is called by func's wrapper (and the local main) once per instance.
func New() *Function { return &Function{users.NewFunction()} }
