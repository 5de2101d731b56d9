package scaler

// FakeBin is testdata/fakefn, for the black-box tests of package scaler_test.
func FakeBin() string { return fakeBin }
