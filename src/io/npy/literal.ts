/** Strict parser for the Python dict literal of a .npy header. */

export type PyNode =
  | { k: "str"; v: string; s: number; e: number }
  | { k: "int"; v: bigint; s: number; e: number }
  | { k: "float"; s: number; e: number }
  | { k: "bool"; v: boolean; s: number; e: number }
  | { k: "none"; s: number; e: number }
  | { k: "tuple" | "list"; items: PyNode[]; s: number; e: number }
  | { k: "dict"; entries: [PyNode, PyNode][]; s: number; e: number };

export class HeaderSyntaxError extends Error {}

const MAX_NESTING = 16;

/**
 * Parses the subset of Python literal syntax that can appear in a .npy header: dicts, tuples,
 * lists, single- or double-quoted strings (escapes \\ \' \" only), decimal integers, floats
 * (recognized only to be refused), True/False/None. Whitespace is spaces and tabs.
 */
export class LiteralParser {
  pos = 0;
  constructor(readonly t: string) {}

  fail(what: string): never {
    throw new HeaderSyntaxError(`${what} at offset ${this.pos}`);
  }

  ws(): void {
    const t = this.t;
    while (this.pos < t.length && (t[this.pos] === " " || t[this.pos] === "\t")) this.pos++;
  }

  value(depth: number): PyNode {
    if (depth > MAX_NESTING) this.fail("nesting too deep");
    this.ws();
    const c = this.t[this.pos];
    if (c === undefined) this.fail("unexpected end of header");
    if (c === "{") return this.dict(depth);
    if (c === "(") return this.tuple(depth);
    if (c === "[") return this.list(depth);
    if (c === "'" || c === '"') return this.str();
    if (c === "-" || (c >= "0" && c <= "9")) return this.num();
    if (/[A-Za-z_]/.test(c)) return this.name();
    this.fail(`unexpected character ${JSON.stringify(c)}`);
  }

  /** Items up to `close`, allowing a trailing comma. */
  seq(close: string, depth: number): { items: PyNode[]; trailingComma: boolean } {
    const items: PyNode[] = [];
    this.ws();
    if (this.t[this.pos] === close) {
      this.pos++;
      return { items, trailingComma: false };
    }
    for (;;) {
      items.push(this.value(depth + 1));
      this.ws();
      const c = this.t[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        if (this.t[this.pos] === close) {
          this.pos++;
          return { items, trailingComma: true };
        }
      } else if (c === close) {
        this.pos++;
        return { items, trailingComma: false };
      } else {
        this.fail(`expected ',' or '${close}'`);
      }
    }
  }

  tuple(depth: number): PyNode {
    const s = this.pos++;
    const { items, trailingComma } = this.seq(")", depth);
    // `(x)` is just x; `(x,)` and `()` are tuples.
    if (items.length === 1 && !trailingComma) return items[0]!;
    return { k: "tuple", items, s, e: this.pos };
  }

  list(depth: number): PyNode {
    const s = this.pos++;
    const { items } = this.seq("]", depth);
    return { k: "list", items, s, e: this.pos };
  }

  dict(depth: number): PyNode {
    const s = this.pos++;
    const entries: [PyNode, PyNode][] = [];
    this.ws();
    if (this.t[this.pos] === "}") {
      this.pos++;
      return { k: "dict", entries, s, e: this.pos };
    }
    for (;;) {
      const key = this.value(depth + 1);
      this.ws();
      if (this.t[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      const val = this.value(depth + 1);
      entries.push([key, val]);
      this.ws();
      const c = this.t[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
        if (this.t[this.pos] === "}") {
          this.pos++;
          break;
        }
      } else if (c === "}") {
        this.pos++;
        break;
      } else {
        this.fail("expected ',' or '}'");
      }
    }
    return { k: "dict", entries, s, e: this.pos };
  }

  str(): PyNode {
    const s = this.pos;
    const q = this.t[this.pos++];
    let v = "";
    for (;;) {
      const c = this.t[this.pos];
      if (c === undefined || c === "\n" || c === "\r") this.fail("unterminated string");
      if (c === q) break;
      if (c === "\\") {
        const d = this.t[this.pos + 1];
        if (d !== "\\" && d !== "'" && d !== '"') this.fail("unsupported escape in string");
        v += d;
        this.pos += 2;
        continue;
      }
      v += c;
      this.pos++;
    }
    this.pos++;
    return { k: "str", v, s, e: this.pos };
  }

  num(): PyNode {
    const s = this.pos;
    const re = /-?[0-9]+(\.[0-9]*)?([eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.t);
    if (!m) this.fail("malformed number");
    this.pos = re.lastIndex;
    const text = m[0];
    if (m[1] !== undefined || m[2] !== undefined) return { k: "float", s, e: this.pos };
    if (/^-?0[0-9]/.test(text)) {
      this.pos = s;
      this.fail("integer with leading zeros");
    }
    return { k: "int", v: BigInt(text), s, e: this.pos };
  }

  name(): PyNode {
    const s = this.pos;
    const re = /[A-Za-z_][A-Za-z0-9_]*/y;
    re.lastIndex = this.pos;
    const word = re.exec(this.t)![0];
    if (word === "True" || word === "False") {
      this.pos = re.lastIndex;
      return { k: "bool", v: word === "True", s, e: this.pos };
    }
    if (word === "None") {
      this.pos = re.lastIndex;
      return { k: "none", s, e: this.pos };
    }
    this.fail(`unexpected name '${word.slice(0, 40)}'`);
  }
}
