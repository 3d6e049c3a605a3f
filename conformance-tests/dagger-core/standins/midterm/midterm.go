// Package midterm provides the one name of the terminal emulator library that Dagger's
// util/scrub (output scrubbing for its TUI golden tests) uses: the SGR reset sequence.
package midterm

// Format is an SGR text format.
type Format struct{}

// Reset is the format that clears all attributes.
var Reset Format

// Render returns the escape sequence that selects the format.
func (Format) Render() string { return "\x1b[0m" }
