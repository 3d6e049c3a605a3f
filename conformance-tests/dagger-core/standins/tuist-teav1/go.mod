// Empty stand-in: the Go module proxy does not serve github.com/vito/tuist/teav1 at the version Dagger v0.21.8
// requires. Its only importers are replaced by overlay/ (see ../../README.md).
module github.com/vito/tuist/teav1

go 1.22
