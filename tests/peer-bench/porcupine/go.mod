module peerbench/porcupine

go 1.16

require github.com/anishathalye/porcupine v0.0.0

// run.sh builds a copy of this directory and points this at $PORCUPINE_DIR
// (go mod edit -replace); Porcupine is not vendored here.
replace github.com/anishathalye/porcupine => ./porcupine
