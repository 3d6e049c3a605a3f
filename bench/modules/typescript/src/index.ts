/** Benchmark module: one step, cached after the first call. */
import { connect } from "@gantry/sdk";

/** One step. */
export class Bench {
  /** Runs `echo cached step`. */
  async step(): Promise<string> {
    const image = process.env["BENCH_IMAGE"] ?? "";
    return connect((client) => client.container().from(image).withExec(["echo", "cached step"]).stdout());
  }
}
