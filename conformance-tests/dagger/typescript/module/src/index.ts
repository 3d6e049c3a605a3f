/**
 * The seed pipeline, written for Dagger's TypeScript SDK (`dagger call` or `gantry call`).
 * Only the image names point at the local test registry.
 */
import { dag, Container, Directory, Secret, object, func } from "@dagger.io/dagger"

const GOLANG = "127.0.0.1:5000/gantry-fixtures/golang:latest"
const RUNTIME = "127.0.0.1:5000/gantry-fixtures/static:nonroot"

function goBase(src: Directory): Container {
  return dag
    .container()
    .from(GOLANG)
    .withDirectory("/src", src)
    .withWorkdir("/src")
    .withMountedCache("/root/go/pkg/mod", dag.cacheVolume("go-mod"))
    .withMountedCache("/root/.cache/go-build", dag.cacheVolume("go-build"))
}

/** Tests, builds and publishes a Go web service. */
@object()
export class Pipeline {
  /**
   * Runs the unit tests and returns their output.
   * @param src The Go module to test.
   */
  @func()
  async test(src: Directory): Promise<string> {
    return goBase(src).withExec(["go", "test", "./..."]).stdout()
  }

  /** Builds the server into a minimal non-root image. */
  @func()
  build(src: Directory): Container {
    const binary = goBase(src)
      .withEnvVariable("CGO_ENABLED", "0")
      .withEnvVariable("GOOS", "linux")
      .withExec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
      .file("/out/server")
    return dag.container().from(RUNTIME).withFile("/server", binary).withEntrypoint(["/server"])
  }

  /** Tests, builds and publishes registry:tag; returns the reference with its digest. */
  @func()
  async publish(
    src: Directory,
    registry: string,
    tag: string,
    registryUser: string,
    registryToken: Secret,
  ): Promise<string> {
    await this.test(src)
    return this.build(src).withRegistryAuth(registry, registryUser, registryToken).publish(`${registry}:${tag}`)
  }

  /** Not a function: no @func(). */
  helper(): string {
    return "hidden"
  }
}
