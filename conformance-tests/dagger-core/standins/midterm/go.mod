// Stand-in for github.com/vito/midterm (not served by the Go module proxy at the version
// Dagger v0.21.8 requires). Only util/scrub refers to it, for one escape sequence.
module github.com/vito/midterm

go 1.22
