/** The seed pipeline as a gantry module: `gantry call test --src=../../seed-app`. */
import { connect, ExecError, type Client, type Container, type Directory, type Secret } from "@gantry/sdk";

const fixtures = process.env["GANTRY_TEST_FIXTURES"] ?? "127.0.0.1:5000/gantry-fixtures";
const GOLANG = `${fixtures}/golang:latest`;
const RUNTIME = `${fixtures}/static:nonroot`;

function goBase(client: Client, src: Directory): Container {
  return client
    .container()
    .from(GOLANG)
    .withDirectory("/src", src)
    .withWorkdir("/src")
    .withMountedCache("/root/go/pkg/mod", client.cacheVolume("go-mod"))
    .withMountedCache("/root/.cache/go-build", client.cacheVolume("go-build"));
}

/** Tests, builds and publishes the seed Go service. */
export class Pipeline {
  /**
   * Runs `go test ./...` and returns its output.
   * @param src The Go module to test.
   */
  async test(src: Directory): Promise<string> {
    return connect((client) => goBase(client, src).withExec(["go", "test", "./..."]).stdout());
  }

  /**
   * Builds the server into a minimal non-root image.
   * @param src The Go module to build.
   */
  async build(src: Directory): Promise<Container> {
    return connect(async (client) => {
      const binary = goBase(client, src)
        .withEnvVariable("CGO_ENABLED", "0")
        .withEnvVariable("GOOS", "linux")
        .withExec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
        .file("/out/server");
      return client.container().from(RUNTIME).withFile("/server", binary).withEntrypoint(["/server"]);
    });
  }

  /**
   * Tests, builds and publishes REGISTRY:TAG; returns the reference with its digest.
   * @param src The Go module.
   * @param registry The repository to publish to, e.g. 127.0.0.1:5001/app.
   * @param tag The image tag.
   * @param registryUser The registry user name.
   * @param registryToken The registry password or token.
   */
  async publish(
    src: Directory,
    registry: string,
    tag: string,
    registryUser: string,
    registryToken: Secret,
  ): Promise<string> {
    try {
      await this.test(src);
    } catch (error) {
      if (error instanceof ExecError) throw new Error(`tests failed: ${error.message}`);
      throw error;
    }
    const image = await this.build(src);
    const host = registry.split("/")[0] ?? registry;
    return image.withRegistryAuth(host, registryUser, registryToken).publish(`${registry}:${tag}`);
  }
}
