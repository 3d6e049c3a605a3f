/**
 * Lazy query building: the runtime under the generated classes in `api/client.gen.ts`.
 *
 * An object (`Container`, `Directory`, ...) holds a {@link Context}: the chain of field
 * selections from the root that produces it. Calling a method that returns an object only
 * extends the chain; nothing is sent. Awaiting a leaf (`stdout()`, `sync()`, `publish()`, ...)
 * renders the whole chain as one GraphQL document, sends it, and walks the response back down
 * the chain.
 *
 * Object arguments are passed by ID: before sending, each object argument's `id` is fetched
 * (one request per object, remembered on the object), so the engine receives
 * `withDirectory(path:"/src", source:"Directory:…")`. Input objects (`BuildArg`, `PortForward`)
 * are plain objects written inline as object literals, `{name:"A",value:"B"}`, leaving out the
 * fields that are `undefined` or `null`.
 *
 * @module
 */

/** What a {@link Context} sends documents through (see `connection.ts`). */
export interface Session {
  /** Sends one document and returns its `data`, throwing on errors. */
  query(document: string): Promise<Record<string, unknown>>;
}

/** Argument values by GraphQL name; `undefined` and `null` values are left out. */
export type Args = Record<string, unknown>;

interface Selection {
  readonly name: string;
  readonly args: ReadonlyArray<readonly [string, unknown]>;
  /** Type condition for an inline fragment (`node(id:) { ... on T { … } }`). */
  readonly on?: string;
}

/** An enum value: inlined without quotes. */
class EnumLiteral {
  constructor(readonly value: string) {}
}

/**
 * Marks an enum argument (generated code wraps every enum-typed argument), so it is sent as
 * `RED` rather than the string `"RED"`. Lists are marked element by element.
 *
 * @internal
 */
export function enumArg(value: unknown): unknown {
  if (typeof value === "string") return new EnumLiteral(value);
  if (Array.isArray(value)) return value.map(enumArg);
  return value;
}

/** An input object, or a list of them nested to any depth (`[[PortForward!]!]`). @internal */
export type NestedInput<T> = T | null | undefined | readonly NestedInput<T>[];

/**
 * Passes an input object argument (or each element of a list of them, at any depth of
 * nesting) through `mark`, which the generated code defines for input types holding enums:
 * it wraps those fields in {@link enumArg}. A list is never passed to `mark` itself.
 *
 * @internal
 */
export function inputArg<T extends object>(
  value: NestedInput<T>,
  mark: (value: T) => unknown,
): unknown {
  if (value === null || value === undefined) return value;
  if (Array.isArray(value)) {
    return (value as readonly NestedInput<T>[]).map((item) => inputArg(item, mark));
  }
  return mark(value as T);
}

/** An immutable chain of selections from the root, plus the session. @internal */
export class Context {
  #id: string | undefined;
  #idPromise: Promise<string> | undefined;

  constructor(
    readonly session: Session,
    private readonly chain: readonly Selection[] = [],
    knownId?: string,
  ) {
    this.#id = knownId;
  }

  /** The ID of the object this chain produces, if already known. */
  get knownId(): string | undefined {
    return this.#id;
  }

  /** A new context with one more field selected; sends nothing. */
  select(name: string, args: Args = {}): Context {
    const kept = Object.entries(args).filter(([, value]) => value !== undefined && value !== null);
    return new Context(this.session, [...this.chain, { name, args: kept }]);
  }

  /** A context addressing an object of `typeName` by ID, from the root. */
  load(typeName: string, id: string): Context {
    const node: Selection = { name: "node", args: [["id", id]], on: typeName };
    return new Context(this.session, [node], id);
  }

  /** The ID of the object this chain produces (fetched once, remembered). */
  id(): Promise<string> {
    if (this.#id !== undefined) return Promise.resolve(this.#id);
    this.#idPromise ??= this.select("id")
      .execute<unknown>()
      .then((value) => {
        if (typeof value !== "string") {
          throw new TypeError(`the engine returned a non-string ID: ${JSON.stringify(value)}`);
        }
        this.#id = value;
        return value;
      })
      .catch((error: unknown) => {
        this.#idPromise = undefined;
        throw error;
      });
    return this.#idPromise;
  }

  /** The GraphQL document for this chain. Object arguments must be resolved. */
  document(): string {
    let out = "query";
    let depth = 0;
    for (const selection of this.chain) {
      out += "{" + selection.name;
      depth += 1;
      if (selection.args.length > 0) {
        out += "(" + selection.args.map(([name, value]) => `${name}:${literal(value)}`).join(",") + ")";
      }
      if (selection.on !== undefined) {
        out += "{... on " + selection.on;
        depth += 1;
      }
    }
    return out + "}".repeat(depth);
  }

  /**
   * Sends the chain as one query and returns the value at its end. The type parameter is
   * what the schema promises; it is not checked at run time.
   */
  async execute<T>(): Promise<T> {
    await this.resolveObjectArgs();
    const data = await this.session.query(this.document());
    return walk(data, this.chain) as T;
  }

  private async resolveObjectArgs(): Promise<void> {
    const objects = new Set<BaseObject>();
    for (const selection of this.chain) {
      for (const [, value] of selection.args) collectObjects(value, objects);
    }
    await Promise.all([...objects].map((object) => object._ctx.id()));
  }
}

/** Base of every generated object class: wraps a {@link Context}. */
export class BaseObject {
  /** @internal */
  readonly _ctx: Context;

  /** @internal Objects come from the client's methods, not from `new`. */
  constructor(ctx: Context) {
    this._ctx = ctx;
  }

  /** @internal */
  protected _select(name: string, args?: Args): Context {
    return this._ctx.select(name, args);
  }

  /** @internal */
  protected _load(typeName: string, id: string): Context {
    return this._ctx.load(typeName, id);
  }

  /** @internal */
  protected _id(): Promise<string> {
    return this._ctx.id();
  }
}

function collectObjects(value: unknown, found: Set<BaseObject>): void {
  if (value instanceof BaseObject) {
    found.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectObjects(item, found);
  } else if (value !== null && typeof value === "object" && !(value instanceof EnumLiteral)) {
    for (const item of Object.values(value)) collectObjects(item, found);
  }
}

/** A GraphQL literal for an argument value (arguments are inlined). */
export function literal(value: unknown): string {
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new RangeError(`${value} cannot be sent to the engine`);
    return String(value);
  }
  if (typeof value === "bigint") return value.toString();
  if (value instanceof EnumLiteral) return value.value;
  if (value instanceof BaseObject) {
    const id = value._ctx.knownId;
    if (id === undefined) throw new Error("an object argument was not resolved to its ID");
    return JSON.stringify(id);
  }
  if (Array.isArray(value)) return "[" + value.map(literal).join(",") + "]";
  if (value === null || value === undefined) return "null";
  if (typeof value === "object") {
    const fields = Object.entries(value)
      .filter(([, item]) => item !== undefined && item !== null)
      .map(([key, item]) => `${key}:${literal(item)}`);
    return "{" + fields.join(",") + "}";
  }
  throw new TypeError(`cannot send a ${typeof value} as a GraphQL argument`);
}

/** Follows the chain's field names down the response `data`. */
function walk(data: unknown, chain: readonly Selection[]): unknown {
  let current = data;
  for (const [index, selection] of chain.entries()) {
    if (current === null || current === undefined) return null;
    if (Array.isArray(current)) {
      const rest = chain.slice(index);
      return current.map((item: unknown) => walk(item, rest));
    }
    current = (current as Record<string, unknown>)[selection.name];
  }
  return current;
}
