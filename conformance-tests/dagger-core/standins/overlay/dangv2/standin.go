// Package dangv2 stands in for Dagger's Dang v2 module SDK (core/sdk/dang/v2), whose
// language library is not served by the Go module proxy. The engine code behind it runs
// inside Dagger's engine only; a test binary talking to an external engine never calls it.
package dangv2

import (
	"context"
	"errors"

	"github.com/dagger/dagger/core"
	"github.com/dagger/dagger/dagql"
)

var errUnavailable = errors.New("the Dang v2 SDK is not built into this test binary")

// Impl satisfies core/sdk's dangImpl with errors.
type Impl struct{}

func (Impl) ModuleTypes(
	context.Context,
	*core.SchemaBuilder,
	dagql.ObjectResult[*core.ModuleSource],
	dagql.ObjectResult[*core.Module],
) (dagql.ObjectResult[*core.Module], error) {
	return dagql.ObjectResult[*core.Module]{}, errUnavailable
}

func (Impl) Runtime(
	context.Context,
	*core.SchemaBuilder,
	dagql.ObjectResult[*core.ModuleSource],
) (core.ModuleRuntime, error) {
	return nil, errUnavailable
}
