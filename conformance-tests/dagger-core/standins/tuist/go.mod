// Empty stand-in: the Go module proxy does not serve github.com/vito/tuist at the version Dagger v0.21.8
// requires. Its only importers are replaced by overlay/ (see ../../README.md).
module github.com/vito/tuist

go 1.22
