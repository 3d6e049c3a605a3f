// Shared by the TypeScript scenarios: fixture images and the runner's variables.
const env = process.env;
const fixtures = env.GANTRY_TEST_FIXTURES ?? "127.0.0.1:5000/gantry-fixtures";
export const BUSYBOX = `${fixtures}/busybox:latest`;
export const GOLANG = `${fixtures}/golang:latest`;
export const STATIC = `${fixtures}/static:nonroot`;
export const AUTH_REGISTRY = env.GANTRY_TEST_AUTH_REGISTRY ?? "127.0.0.1:5001";
export const AUTH_USER = env.GANTRY_TEST_AUTH_REGISTRY_USER ?? "gantry";
export const AUTH_PASSWORD = env.GANTRY_TEST_AUTH_REGISTRY_PASSWORD ?? "gantry-test-password";

// Set by run.py: unique per SDK and run, the run number (two-run scenarios),
// a folder for exports.
export const MARKER = env.CONFORMANCE_MARKER;
export const RUN = env.CONFORMANCE_RUN ?? "1";
export const OUT = env.CONFORMANCE_OUT ?? "";
