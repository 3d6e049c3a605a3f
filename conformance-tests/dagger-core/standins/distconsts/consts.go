// Package distconsts holds the constants of Dagger's engine/distconsts module that
// core/integration (and the engine code it links) refers to, with their values at Dagger's
// v0.21.8 tag. The image names matter: the tests pull these from Docker Hub.
package distconsts

const (
	AlpineVersion = "3.22.1"
	AlpineImage   = "alpine:" + AlpineVersion

	GolangVersion = "1.26"
	GolangImage   = "golang:" + GolangVersion + "-alpine"

	BusyboxVersion = "1.37.0"
	BusyboxImage   = "busybox:" + BusyboxVersion
)

// Engine-side paths and names; the test binary links code that mentions them but the tests
// never run that code against gantry.
const (
	EngineContainerName                = "dagger-engine.dev"
	DefaultEngineSockAddr              = "unix:///run/dagger/engine.sock"
	RuncPath                           = "/usr/local/bin/runc"
	DaggerInitPath                     = "/usr/local/bin/dagger-init"
	EngineDefaultStateDir              = "/var/lib/dagger"
	EngineContainerBuiltinContentDir   = "/usr/local/share/dagger/content"
	EngineCustomCACertsDir             = "/usr/local/share/ca-certificates"
	GoSDKManifestDigestEnvName         = "DAGGER_GO_SDK_MANIFEST_DIGEST"
	PythonSDKManifestDigestEnvName     = "DAGGER_PYTHON_SDK_MANIFEST_DIGEST"
	TypescriptSDKManifestDigestEnvName = "DAGGER_TYPESCRIPT_SDK_MANIFEST_DIGEST"
	OCIVersionAnnotation               = "org.opencontainers.image.version"
)
