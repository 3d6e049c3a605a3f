// The TypeScript module runtime of `gantry call` (see gantry's docs/modules.md).
//
//   node runtime.mjs describe SPEC RESULT
//   node runtime.mjs invoke SPEC RESULT      (request JSON on stdin)
//
// SPEC is a JSON object naming the module (`root`, `source`, `object`, `format`,
// `digest`). `describe` reads the main class with the TypeScript compiler API
// (npm `typescript` 5 or 6, resolved from the module's node_modules): its
// method signatures and JSDoc are the functions. Public methods are functions
// (`format: gantry`); in a module written for Dagger (`format: dagger`) only
// the `@func()` methods of the `@object()` class are. It also transpiles the
// module's .ts files (decorators included) into
// `node_modules/.cache/gantry/DIGEST/` inside the module, so that bare imports
// resolve from the module's own node_modules and `invoke` never needs the
// compiler while the source is unchanged.
//
// `invoke` imports the transpiled class, loads object arguments by ID into the
// client each parameter's type comes from (`@gantry/sdk` or
// `@dagger.io/dagger`, whose global `dag` is connected to the session for
// Dagger modules), calls the method and writes {"type", "value"|"id"} to RESULT.
// Exit status: 0 done, 1 the function threw, 3 the module could not be loaded.
//
// Plain JavaScript on purpose: the gantry binary embeds this file and runs it
// with `node`, whatever version of the SDK the module has installed.

import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const LOAD_FAILED = 3;
const OBJECTS = new Set(["Directory", "File", "Secret", "Container", "CacheVolume"]);
const SDKS = { "@gantry/sdk": "gantry", "@dagger.io/dagger": "dagger" };
const SKIP = new Set(["node_modules", "dist", ".git", "build"]);

class LoadError extends Error {}

function sourceFiles(dir, out = []) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name) && !entry.name.startsWith(".")) sourceFiles(path.join(dir, entry.name), out);
    } else if (/\.(m|c)?ts$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
      out.push(path.join(dir, entry.name));
    } else if (/\.(m|c)?js$/.test(entry.name)) {
      out.push(path.join(dir, entry.name));
    }
  }
  return out;
}

function loadTypescript(spec) {
  const require = createRequire(path.join(spec.source, "package.json"));
  let ts;
  try {
    ts = require("typescript");
  } catch {
    throw new LoadError(
      "the TypeScript module runtime needs the npm package `typescript` (5.x or 6.x, with its " +
        "compiler API) in the module's node_modules: npm install --save-dev typescript@6",
    );
  }
  if (typeof ts.createSourceFile !== "function") {
    throw new LoadError(
      `typescript ${ts.version ?? "?"} has no compiler API (TypeScript 7 moved it): install typescript@6 in the module`,
    );
  }
  return ts;
}

function docOf(ts, node) {
  const parts = [];
  for (const doc of ts.getJSDocCommentsAndTags(node)) {
    if (ts.isJSDoc(doc) && doc.comment) {
      parts.push(typeof doc.comment === "string" ? doc.comment : doc.comment.map((c) => c.text).join(""));
    }
  }
  return parts.join("\n").trim();
}

function tagText(comment) {
  if (!comment) return "";
  const text = typeof comment === "string" ? comment : comment.map((c) => c.text).join("");
  return text.replace(/^-\s*/, "").trim();
}

/** A type node as {type, optional, values, object, from}. */
function typeOf(ts, node, imports, where) {
  if (!node) throw new LoadError(`${where}: add a type annotation (it becomes the flag's type)`);
  switch (node.kind) {
    case ts.SyntaxKind.StringKeyword:
      return { type: "String" };
    case ts.SyntaxKind.NumberKeyword:
      return { type: "Int" };
    case ts.SyntaxKind.BooleanKeyword:
      return { type: "Boolean" };
    case ts.SyntaxKind.VoidKeyword:
    case ts.SyntaxKind.UndefinedKeyword:
      return { type: "Void", optional: true };
    case ts.SyntaxKind.ArrayType: {
      const inner = typeOf(ts, node.elementType, imports, where);
      return { type: `[${inner.type}]` };
    }
    case ts.SyntaxKind.ParenthesizedType:
      return typeOf(ts, node.type, imports, where);
    case ts.SyntaxKind.UnionType: {
      const rest = node.types.filter(
        (t) =>
          t.kind !== ts.SyntaxKind.UndefinedKeyword &&
          !(t.kind === ts.SyntaxKind.LiteralType && t.literal.kind === ts.SyntaxKind.NullKeyword),
      );
      if (rest.every((t) => t.kind === ts.SyntaxKind.LiteralType && ts.isStringLiteral(t.literal))) {
        return { type: "String", values: rest.map((t) => t.literal.text), optional: rest.length < node.types.length };
      }
      if (rest.length === 1) return { ...typeOf(ts, rest[0], imports, where), optional: true };
      break;
    }
    case ts.SyntaxKind.TypeReference: {
      const name = node.typeName.getText();
      const args = node.typeArguments ?? [];
      if ((name === "Promise" || name === "Awaited") && args.length === 1) return typeOf(ts, args[0], imports, where);
      if ((name === "Array" || name === "ReadonlyArray") && args.length === 1) {
        return { type: `[${typeOf(ts, args[0], imports, where).type}]` };
      }
      const local = name.split(".").pop();
      const origin = imports.get(name.split(".")[0]) ?? imports.get(local);
      if (origin && OBJECTS.has(origin.name)) return { type: origin.name, object: origin.name, from: origin.sdk };
      if (name === "float") return { type: "Float" };
      break;
    }
    default:
      break;
  }
  throw new LoadError(
    `${where}: unsupported type ${node.getText()}: use string, number, boolean, arrays of them, or ` +
      "Directory, File, Secret, Container, CacheVolume from @gantry/sdk or @dagger.io/dagger",
  );
}

function literal(ts, node) {
  if (!node) return undefined;
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text;
  if (ts.isNumericLiteral(node)) return Number(node.text);
  if (node.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (node.kind === ts.SyntaxKind.FalseKeyword) return false;
  if (ts.isPrefixUnaryExpression(node) && ts.isNumericLiteral(node.operand)) return -Number(node.operand.text);
  if (ts.isArrayLiteralExpression(node)) {
    const items = node.elements.map((e) => literal(ts, e));
    return items.every((i) => i !== undefined) ? items : undefined;
  }
  return undefined;
}

function decoratorNames(ts, node) {
  const decorators = (ts.canHaveDecorators?.(node) ? ts.getDecorators(node) : node.decorators) ?? [];
  return decorators.map((d) => {
    const expr = ts.isCallExpression(d.expression) ? d.expression.expression : d.expression;
    return expr.getText().split(".").pop();
  });
}

/** Reads the module: the description, the argument origins, and the transpiled files. */
function analyze(spec, cacheDir) {
  const ts = loadTypescript(spec);
  const files = sourceFiles(spec.source);
  const dagger = spec.format === "dagger";
  let found;
  for (const file of files) {
    if (!/\.(m|c)?ts$/.test(file)) continue;
    const text = fs.readFileSync(file, "utf8");
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    const imports = new Map();
    for (const statement of sf.statements) {
      if (!ts.isImportDeclaration(statement) || !statement.importClause) continue;
      const sdk = SDKS[statement.moduleSpecifier.text];
      if (!sdk) continue;
      const bindings = statement.importClause.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const element of bindings.elements) {
          const name = (element.propertyName ?? element.name).text;
          imports.set(element.name.text, { name, sdk });
        }
      } else if (bindings && ts.isNamespaceImport(bindings)) {
        for (const object of OBJECTS) imports.set(`${bindings.name.text}.${object}`, { name: object, sdk });
        imports.set(bindings.name.text, { name: "", sdk });
      }
    }
    for (const statement of sf.statements) {
      if (ts.isClassDeclaration(statement) && statement.name?.text === spec.object) {
        found = { file, sf, node: statement, imports };
      }
    }
    if (found) break;
  }
  if (!found) throw new LoadError(`no class ${spec.object} (the module's main object) in ${spec.source}`);
  const functions = [];
  const origins = {};
  for (const member of found.node.members) {
    if (!ts.isMethodDeclaration(member) || !member.name || !ts.isIdentifier(member.name)) continue;
    const name = member.name.text;
    const modifiers = (ts.getModifiers?.(member) ?? member.modifiers ?? []).map((m) => m.kind);
    if (dagger) {
      if (!decoratorNames(ts, member).includes("func")) continue;
    } else if (
      name.startsWith("_") ||
      modifiers.includes(ts.SyntaxKind.PrivateKeyword) ||
      modifiers.includes(ts.SyntaxKind.ProtectedKeyword) ||
      modifiers.includes(ts.SyntaxKind.StaticKeyword)
    ) {
      continue;
    }
    const where = `${path.relative(spec.source, found.file)}: ${spec.object}.${name}`;
    const paramDocs = new Map();
    for (const tag of ts.getJSDocTags(member)) {
      if (ts.isJSDocParameterTag(tag)) paramDocs.set(tag.name.getText(), tagText(tag.comment));
    }
    const args = [];
    const argOrigins = {};
    for (const param of member.parameters) {
      const argName = param.name.getText();
      const type = typeOf(ts, param.type, found.imports, `${where}(${argName})`);
      const fallback = literal(ts, param.initializer);
      args.push({
        name: argName,
        type: type.type,
        optional: Boolean(param.questionToken || param.initializer || type.optional),
        default: fallback ?? null,
        description: paramDocs.get(argName) ?? "",
        enum: type.values ?? null,
      });
      argOrigins[argName] = type.object ? { object: type.object, from: type.from } : null;
    }
    const returns = member.type ? typeOf(ts, member.type, found.imports, `${where}: return type`) : { type: "Void" };
    functions.push({ name, description: docOf(ts, member), args, returns: returns.type });
    origins[name] = argOrigins;
  }
  const description = { object: spec.object, description: docOf(ts, found.node), functions };
  // Transpile every source file next to the others, keeping the layout.
  fs.mkdirSync(cacheDir, { recursive: true });
  for (const file of files) {
    const relative = path.relative(spec.source, file);
    const target = path.join(cacheDir, "src", relative.replace(/\.(m|c)?ts$/, (m) => m.replace("ts", "js")));
    fs.mkdirSync(path.dirname(target), { recursive: true });
    let text = fs.readFileSync(file, "utf8");
    if (/\.(m|c)?ts$/.test(file)) {
      text = ts.transpileModule(text, {
        fileName: file,
        compilerOptions: {
          module: ts.ModuleKind.ESNext,
          target: ts.ScriptTarget.ES2022,
          experimentalDecorators: true,
          useDefineForClassFields: false,
          sourceMap: false,
        },
      }).outputText;
      // Relative imports without an extension (bundler style) get `.js`.
      text = text.replace(/(from\s+|import\s*\(\s*)(["'])(\.{1,2}\/[^"']+)\2/g, (all, head, quote, spec_) =>
        /\.[cm]?js$/.test(spec_) ? all : `${head}${quote}${spec_}.js${quote}`,
      );
    }
    fs.writeFileSync(target, text);
  }
  fs.writeFileSync(path.join(cacheDir, "package.json"), '{"type": "module"}\n');
  // Dynamic imports from here resolve against the module's node_modules.
  fs.writeFileSync(path.join(cacheDir, "load.js"), "export const load = (name) => import(name);\n");
  const entry = path.relative(spec.source, found.file).replace(/\.(m|c)?ts$/, (m) => m.replace("ts", "js"));
  const analysis = { description, origins, entry };
  fs.writeFileSync(path.join(cacheDir, "analysis.json"), JSON.stringify(analysis));
  return analysis;
}

function cacheDirOf(spec) {
  return path.join(spec.root, "node_modules", ".cache", "gantry", spec.digest);
}

function analysisOf(spec) {
  const dir = cacheDirOf(spec);
  try {
    return { dir, ...JSON.parse(fs.readFileSync(path.join(dir, "analysis.json"), "utf8")) };
  } catch {
    return { dir, ...analyze(spec, dir) };
  }
}

function printFailure(error) {
  const isExec = error && ["exitCode", "stdout", "stderr", "cmd"].every((k) => k in error);
  if (isExec) {
    const cmd = Array.isArray(error.cmd) ? error.cmd.join(" ") : String(error.cmd);
    process.stderr.write(`exec failed: ${cmd}\n  exit code: ${error.exitCode}\n`);
    for (const stream of ["stdout", "stderr"]) {
      const text = String(error[stream] ?? "").trimEnd();
      if (text) {
        const lines = text.split("\n").slice(-20);
        process.stderr.write(`  --- ${stream} (last lines) ---\n  ${lines.join("\n  ")}\n`);
      }
    }
    return;
  }
  process.stderr.write(`${error?.stack ?? error}\n`);
}

async function invoke(spec, request) {
  const analysis = analysisOf(spec);
  const { load } = await import(pathToFileURL(path.join(analysis.dir, "load.js")).href);
  let module;
  try {
    module = await import(pathToFileURL(path.join(analysis.dir, "src", analysis.entry)).href);
  } catch (error) {
    printFailure(error);
    throw new LoadError(`could not import ${analysis.entry}`);
  }
  const Class = module[spec.object];
  if (typeof Class !== "function") throw new LoadError(`${analysis.entry} does not export class ${spec.object}`);
  const fn = analysis.description.functions.find((f) => f.name === request.function);
  if (!fn) throw new LoadError(`${spec.object} has no function ${request.function}`);
  const origins = analysis.origins[fn.name] ?? {};
  const needs = new Set(Object.values(origins).filter(Boolean).map((o) => o.from));
  if (spec.format === "dagger") needs.add("dagger");
  const gantry = needs.has("gantry") ? await load("@gantry/sdk") : undefined;
  const dagger = needs.has("dagger") ? await load("@dagger.io/dagger") : undefined;
  const run = async () => {
    const gantryClient = gantry ? await gantry.connect(async (client) => client) : undefined;
    const args = fn.args.map((arg) => {
      const value = request.args?.[arg.name];
      const origin = origins[arg.name];
      if (value === undefined || value === null) return undefined;
      if (!origin) return value;
      const loader = `load${origin.object}FromID`;
      return origin.from === "dagger" ? dagger.dag[loader](value) : gantryClient[loader](value);
    });
    const instance = new Class();
    const value = await instance[fn.name](...args);
    if (value === undefined || value === null) return { type: "Void" };
    if (typeof value === "object" && typeof value.id === "function" && OBJECTS.has(fn.returns)) {
      return { type: fn.returns, id: String(await value.id()) };
    }
    return { type: fn.returns, value };
  };
  if (!dagger) return run();
  let result;
  await dagger.connection(async () => {
    result = await run();
  });
  return result;
}

async function main() {
  const [verb, specText, resultPath] = process.argv.slice(2);
  if (!["describe", "invoke"].includes(verb) || !resultPath) {
    process.stderr.write("usage: runtime.mjs describe|invoke SPEC RESULT\n");
    return 2;
  }
  const spec = JSON.parse(specText);
  if (verb === "describe") {
    try {
      const analysis = analysisOf(spec);
      fs.writeFileSync(resultPath, JSON.stringify(analysis.description));
      return 0;
    } catch (error) {
      process.stderr.write(error instanceof LoadError ? `error: ${error.message}\n` : `${error?.stack ?? error}\n`);
      return LOAD_FAILED;
    }
  }
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const request = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  try {
    const answer = await invoke(spec, request);
    fs.writeFileSync(resultPath, JSON.stringify(answer));
    return 0;
  } catch (error) {
    if (error instanceof LoadError) {
      process.stderr.write(`error: ${error.message}\n`);
      return LOAD_FAILED;
    }
    printFailure(error);
    return 1;
  }
}

// Exit at once: a client library may keep timers or sockets open.
process.exit(await main());
