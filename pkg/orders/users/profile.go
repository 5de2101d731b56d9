package users

import (
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jobflow/jobflow/pkg/runtime/fn"
)

// Limits of the input.
const (
	MaxNameLen  = 100
	MaxEmailLen = 254
)

var (
	usernameRule = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{2,31}$`)
	phoneRule    = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{2,24}$`)
)

// Profile is what a user says about themselves.
type Profile struct {
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Email     string `json:"email"`
	Phone     string `json:"phone"`
}

// Register is the body of POST /users.
type Register struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Profile
}

// Login is the body of POST /login.
type Login struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Validate returns every problem with the profile (400).
func (p Profile) Validate() error {
	var errs []error
	name := func(field, v string) {
		if v == "" || utf8.RuneCountInString(v) > MaxNameLen || strings.IndexFunc(v, unicode.IsControl) >= 0 {
			errs = append(errs, fmt.Errorf("%s must be 1 to %d characters without control characters", field, MaxNameLen))
		}
	}
	name("first_name", p.FirstName)
	name("last_name", p.LastName)
	if a, err := mail.ParseAddress(p.Email); err != nil || a.Address != p.Email || len(p.Email) > MaxEmailLen {
		errs = append(errs, fmt.Errorf("email %q is not an address like ann@example.com", p.Email))
	}
	if p.Phone != "" && !phoneRule.MatchString(p.Phone) {
		errs = append(errs, fmt.Errorf("phone %q: digits, spaces, ()- and a leading +, 3 to 25 characters", p.Phone))
	}
	if err := errors.Join(errs...); err != nil {
		return fn.Invalid(err)
	}
	return nil
}

// trim removes surrounding spaces from the profile's fields.
func (p Profile) trim() Profile {
	return Profile{FirstName: strings.TrimSpace(p.FirstName), LastName: strings.TrimSpace(p.LastName),
		Email: strings.TrimSpace(p.Email), Phone: strings.TrimSpace(p.Phone)}
}

// ValidUsername reports why a username is refused, or nil.
func ValidUsername(u string) error {
	if !usernameRule.MatchString(u) {
		return fn.Invalidf("username %q: 3 to 32 of a-z 0-9 _ . -, starting with a letter or digit", u)
	}
	return nil
}
