// Stand-in for Dagger's engine/distconsts module, a nested module of its repository that
// the Go module proxy does not serve. Values as at Dagger's v0.21.8 tag.
module github.com/dagger/dagger/engine/distconsts

go 1.22
