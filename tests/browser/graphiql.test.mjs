// GraphiQL served by `gantry serve --listen`, driven in Debian's headless Chromium by
// playwright-core (no browser download, no internet). `make browser-test` runs this
// after building target/debug/gantry; the screenshot lands in target/test-artifacts/.
//
// Environment: GANTRY_BIN (default ../../target/debug/gantry), CHROMIUM
// (default /usr/bin/chromium), GANTRY_TEST_ARTIFACTS (default ../../target/test-artifacts),
// GANTRY_TEST_FIXTURES (default 127.0.0.1:5000/gantry-fixtures).

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const gantryBin = process.env.GANTRY_BIN || path.join(root, "target/debug/gantry");
const chromiumBin = process.env.CHROMIUM || "/usr/bin/chromium";
const artifacts = process.env.GANTRY_TEST_ARTIFACTS || path.join(root, "target/test-artifacts");
const fixtures = process.env.GANTRY_TEST_FIXTURES || "127.0.0.1:5000/gantry-fixtures";

const QUERY = `{ container { from(address: "${fixtures}/busybox:latest") { withExec(args: ["echo", "hello from graphiql"]) { stdout } } } }`;

// The flags that keep Chromium from reaching for the internet here.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// The engine must make up its own token and print it.
function withoutToken(env) {
  const copy = { ...env };
  delete copy.GANTRY_TOKEN;
  return copy;
}

let scratch;
let engine;
let engineLog = "";
let loginUrl;
let origin;

// Starts `gantry serve --listen 127.0.0.1:0` and reads the GraphiQL URL it prints.
before(async () => {
  scratch = mkdtempSync(path.join(tmpdir(), "gantry-browser-"));
  engine = spawn(
    gantryBin,
    [
      "serve",
      "--listen", "127.0.0.1:0",
      "--socket", path.join(scratch, "engine.sock"),
      "--state-dir", path.join(scratch, "state"),
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: withoutToken(process.env) },
  );
  loginUrl = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gantry serve printed no URL in 60s:\n${engineLog}`)), 60_000);
    engine.stderr.setEncoding("utf8");
    engine.stderr.on("data", (chunk) => {
      engineLog += chunk;
      const found = engineLog.match(/open GraphiQL at (http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+)/);
      if (found) {
        clearTimeout(timer);
        resolve(found[1]);
      }
    });
    engine.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gantry serve exited with ${code}:\n${engineLog}`));
    });
  });
  origin = new URL(loginUrl).origin;
});

after(() => {
  if (engine && engine.exitCode === null) engine.kill("SIGTERM");
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test("without the token, the page and the API answer 401", async () => {
  const page = await fetch(`${origin}/`, { redirect: "manual" });
  assert.equal(page.status, 401);
  assert.match(await page.text(), /\?token=/, "the 401 page says which URL to open");

  const wrong = await fetch(`${origin}/?token=wrong`, { redirect: "manual" });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers.get("set-cookie"), null);

  const api = await fetch(`${origin}/query`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query: "{ version }" }),
  });
  assert.equal(api.status, 401);

  const asset = await fetch(`${origin}/graphiql/graphiql.min.js`);
  assert.equal(asset.status, 401);

  const events = await fetch(`${origin}/events`);
  assert.equal(events.status, 401);
});

test("the token URL sets an HttpOnly SameSite=Strict cookie and redirects to /", async () => {
  const login = await fetch(loginUrl, { redirect: "manual" });
  assert.equal(login.status, 303);
  assert.equal(login.headers.get("location"), "/");
  const cookie = login.headers.get("set-cookie");
  assert.match(cookie, /HttpOnly/);
  assert.match(cookie, /SameSite=Strict/);
});

test("GraphiQL runs a container query typed into the editor", { timeout: 180_000 }, async () => {
  mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumBin,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console error: ${message.text()}`);
    });
    page.on("requestfailed", (request) => problems.push(`request failed: ${request.url()}`));

    const response = await page.goto(loginUrl);
    assert.equal(response.status(), 200);
    assert.equal(page.url(), `${origin}/`, "the token is gone from the address bar");

    const cookies = await context.cookies();
    const login = cookies.find((c) => c.name.startsWith("gantry-token-"));
    assert.ok(login, `a login cookie is set: ${JSON.stringify(cookies)}`);
    assert.equal(login.httpOnly, true);
    assert.equal(login.sameSite, "Strict");

    // The editor is CodeMirror; typing goes through its key handling.
    const editor = page.locator(".graphiql-query-editor .CodeMirror");
    await editor.waitFor({ timeout: 30_000 });
    // The docs explorer lists the schema once the page has fetched it through /query.
    const docs = page.getByRole("button", { name: "Show Documentation Explorer" });
    await docs.click();
    await page.locator(".graphiql-doc-explorer", { hasText: "container" }).waitFor({ timeout: 30_000 });

    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");

    // Completion comes from the same schema.
    await page.keyboard.type("{ vers", { delay: 20 });
    await page.locator(".CodeMirror-hint", { hasText: "version" }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");

    await page.keyboard.type(QUERY, { delay: 5 });
    // CodeMirror may have closed brackets or opened a completion list as we typed;
    // dismiss the list and check the text is exactly what we meant.
    await page.keyboard.press("Escape");
    const typed = await page.evaluate(
      () => document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror.getValue(),
    );
    assert.equal(typed, QUERY);

    await page.locator(".graphiql-execute-button").click();
    await page.waitForFunction(
      () => document.querySelector(".graphiql-response")?.textContent.includes("hello from graphiql"),
      null,
      { timeout: 120_000 },
    );
    const result = await page.locator(".graphiql-response").innerText();
    assert.match(result, /"stdout": "hello from graphiql\\n"/);

    // The run is in the history panel.
    await page.getByRole("button", { name: "Show History" }).click();
    await page.locator(".graphiql-history-item").first().waitFor({ timeout: 10_000 });
    await docs.click();
    // Lay the query out over several lines for the screenshot.
    await page.getByRole("button", { name: "Prettify query (Shift-Ctrl-P)" }).click();

    await page.screenshot({ path: path.join(artifacts, "graphiql.png") });
    assert.deepEqual(problems, [], "the page loads without errors");
  } finally {
    await browser.close();
  }
});
