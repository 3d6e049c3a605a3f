// Stand-in for the parts of Dagger's dagql/idtui (its terminal UI) that other packages of the
// test binary refer to. The real package needs terminal libraries the Go module proxy does not
// serve; its symbols.go and output.go are kept as they are, every other file is left out.
package idtui

import (
	"errors"

	"github.com/dagger/dagger/dagql/call"
	"github.com/muesli/termenv"
)

// SkipLoggedOutTraceMsgEnvs names the variables that silence the "set up tracing" hint; only
// util/scrub reads it. Same list as Dagger's.
var SkipLoggedOutTraceMsgEnvs = []string{"DAGGER_NO_NAG", "NOTHANKS", "SHUTUP", "GOAWAY", "STOPIT"}

// Dump prints call IDs for the engine's interactive terminal (core/terminal.go), which runs
// inside Dagger's engine only.
type Dump struct {
	Newline string
	Prefix  string
}

// DumpID is not available in this build.
func (d *Dump) DumpID(*termenv.Output, *call.ID) error {
	return errors.New("idtui.Dump is not built into this test binary")
}
