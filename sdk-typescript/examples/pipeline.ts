/**
 * The seed pipeline in TypeScript: test, build and publish a Go web service.
 *
 *     node pipeline.js test --src=path/to/app
 *     node pipeline.js publish --src=. --registry=127.0.0.1:5000/app --tag=v1 \
 *       --registry-user=USER --registry-token=env:REGISTRY_TOKEN
 *
 * Runs the same way from a terminal, in CI, or under `gantry run -- node ...`. Secrets are
 * named by source (`env:NAME` or `file:PATH`); their values go to the engine as secrets and
 * never appear in output.
 */

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { connect, ExecError, type Client, type Container, type Directory, type Secret } from "@gantry/sdk";

// Local stand-ins for golang:1.22-alpine and distroless/static:nonroot.
export const GO_IMAGE =
  process.env["SEED_GO_IMAGE"] ?? "127.0.0.1:5000/gantry-fixtures/golang:latest";
export const RUNTIME_IMAGE =
  process.env["SEED_RUNTIME_IMAGE"] ?? "127.0.0.1:5000/gantry-fixtures/static:nonroot";
const GO_MOD_CACHE = "/root/go/pkg/mod";
const GO_BUILD_CACHE = "/root/.cache/go-build";

/** A pipeline step failed; the message says which and why. */
export class PipelineError extends Error {
  override name = "PipelineError";
}

/** The Go toolchain with the source at /src and the shared Go caches. */
function goBase(client: Client, src: Directory): Container {
  return client
    .container()
    .from(GO_IMAGE)
    .withDirectory("/src", src)
    .withWorkdir("/src")
    .withMountedCache(GO_MOD_CACHE, client.cacheVolume("go-mod"))
    .withMountedCache(GO_BUILD_CACHE, client.cacheVolume("go-build"))
    .withEnvVariable("GOMODCACHE", GO_MOD_CACHE)
    .withEnvVariable("GOCACHE", GO_BUILD_CACHE);
}

/** Runs `go test ./...` and returns its output. */
export async function test(client: Client, src: Directory): Promise<string> {
  return goBase(client, src).withExec(["go", "test", "-count=1", "./..."]).stdout();
}

/** A minimal runtime image holding the static server binary at /server. */
export function build(client: Client, src: Directory): Container {
  const binary = goBase(client, src)
    .withEnvVariable("CGO_ENABLED", "0")
    .withEnvVariable("GOOS", "linux")
    .withExec(["go", "build", "-ldflags=-s -w", "-o", "/out/server", "./cmd/server"])
    .file("/out/server");
  return client
    .container()
    .from(RUNTIME_IMAGE)
    .withFile("/server", binary)
    .withEntrypoint(["/server"]);
}

/** Tests, builds and publishes `registry:tag`; returns the reference with its digest. */
export async function publish(
  client: Client,
  src: Directory,
  registry: string,
  tag: string,
  registryUser: string,
  registryToken: Secret,
): Promise<string> {
  try {
    await test(client, src);
  } catch (error) {
    if (error instanceof ExecError) {
      throw new PipelineError(`tests failed: ${error.stdout}${error.stderr}`, { cause: error });
    }
    throw error;
  }
  return build(client, src)
    .withRegistryAuth(registry, registryUser, registryToken)
    .publish(`${registry}:${tag}`);
}

/** A secret from `env:NAME` or `file:PATH`. */
export function secretFrom(client: Client, name: string, source: string): Secret {
  const [kind, where = ""] = source.split(/:(.*)/s, 2);
  let value: string | undefined;
  if (kind === "env") {
    value = process.env[where];
    if (value === undefined) throw new PipelineError(`environment variable ${where} is not set`);
  } else if (kind === "file") {
    value = readFileSync(where, "utf8").replace(/\n+$/, "");
  } else {
    throw new PipelineError(`secret source ${JSON.stringify(source)}: use env:NAME or file:PATH`);
  }
  return client.setSecret(name, value);
}

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      src: { type: "string", default: "." },
      registry: { type: "string" },
      tag: { type: "string" },
      "registry-user": { type: "string" },
      "registry-token": { type: "string" },
    },
  });
  const command = positionals[0];
  if (command !== "test" && command !== "publish") {
    console.error("usage: pipeline test|publish [--src=DIR] [--registry=... --tag=... ...]");
    return 2;
  }
  return connect(async (client) => {
    const src = client.host().directory(values.src ?? ".");
    try {
      if (command === "test") {
        process.stdout.write(await test(client, src));
      } else {
        const { registry, tag } = values;
        const user = values["registry-user"];
        const tokenSource = values["registry-token"];
        if (!registry || !tag || !user || !tokenSource) {
          throw new PipelineError(
            "publish needs --registry, --tag, --registry-user and --registry-token",
          );
        }
        const token = secretFrom(client, "registry-token", tokenSource);
        console.log(await publish(client, src, registry, tag, user, token));
      }
    } catch (error) {
      if (error instanceof PipelineError) {
        console.error(`pipeline: ${error.message}`);
        return 1;
      }
      throw error;
    }
    return 0;
  });
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await main(process.argv.slice(2));
}
