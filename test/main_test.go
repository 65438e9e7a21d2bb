package test

import (
	"os"
	"testing"

	"github.com/meshka/meshka/internal/testenv"
)

// TestMain counts the meshka binary the kcat test runs toward coverage,
// when the tests run with it.
func TestMain(m *testing.M) { os.Exit(testenv.RunCovered(m)) }
