package auth

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// Password limits: bcrypt reads at most 72 bytes, so a longer password
// is refused rather than silently cut.
const (
	MinPasswordLen   = 8
	MaxPasswordBytes = 72
)

// PasswordCost is the bcrypt cost of new hashes (bcrypt.DefaultCost).
var PasswordCost = bcrypt.DefaultCost

// CheckPasswordRules returns why a new password is refused, or nil.
func CheckPasswordRules(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return errors.New("password must be valid UTF-8")
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("password must be at most %d bytes", MaxPasswordBytes)
	}
	return nil
}

// HashPassword returns the bcrypt hash of pw (which must pass CheckPasswordRules).
func HashPassword(pw string) (string, error) {
	if err := CheckPasswordRules(pw); err != nil {
		return "", err
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), PasswordCost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// CheckPassword reports whether pw matches hash.
func CheckPassword(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}
