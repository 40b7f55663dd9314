import { describe, it, expect } from "vitest";
import { InvalidResourceError } from "../src/errors/index.js";
import type { Resources } from "../src/resources/index.js";
import {
  add,
  contains,
  DEFAULT_MIN_ALLOCATABLE,
  DEFAULT_ROLE,
  equals,
  filterRole,
  formatResources,
  isEmpty,
  isValidRole,
  meetsMinimum,
  normalize,
  parseMinAllocatable,
  parseResources,
  rangesCount,
  reservedTo,
  scalar,
  scalarTotals,
  subtract,
  takeScalars,
  unreserved,
  validateRole,
  withRole,
} from "../src/resources/index.js";

const p = (s: string): Resources => parseResources(s);

function errorOf(f: () => unknown): InvalidResourceError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidResourceError);
    return e as InvalidResourceError;
  }
  throw new Error("expected an InvalidResourceError");
}

describe("parseResources: grammar", () => {
  it("parses each value kind, with roles", () => {
    expect(p("cpus:4;mem:2048;ports:[31000-32000];cpus(ads):8;disks:{b,a};gpus:1")).toEqual([
      { name: "cpus", role: "*", scalar: 4 },
      { name: "cpus", role: "ads", scalar: 8 },
      { name: "disks", role: "*", set: ["a", "b"] },
      { name: "gpus", role: "*", scalar: 1 },
      { name: "mem", role: "*", scalar: 2048 },
      { name: "ports", role: "*", ranges: [[31000, 32000]] },
    ]);
  });

  it("accepts whitespace around tokens, trailing and empty entries", () => {
    expect(p("  cpus ( ads ) : 1.5 ; ports : [ 80 - 80 , 443 ] ;; disks : { x , y } ;")).toEqual([
      { name: "cpus", role: "ads", scalar: 1.5 },
      { name: "disks", role: "*", set: ["x", "y"] },
      {
        name: "ports",
        role: "*",
        ranges: [
          [80, 80],
          [443, 443],
        ],
      },
    ]);
    expect(p("")).toEqual([]);
    expect(p(" ; ; ")).toEqual([]);
  });

  it("uses the default role, and accepts hierarchical roles and names with . _ -", () => {
    expect(parseResources("cpus:1;mem(*):2", "eng/web")).toEqual([
      { name: "cpus", role: "eng/web", scalar: 1 },
      { name: "mem", role: "*", scalar: 2 },
    ]);
    expect(p("_x.y-z(a/b):1")).toEqual([{ name: "_x.y-z", role: "a/b", scalar: 1 }]);
  });

  it("merges duplicates: scalars add, ranges and sets union", () => {
    expect(p("cpus:1;cpus:2.5;cpus(a):1;ports:[1-5];ports:[4-10,20];d:{a};d:{b,a}")).toEqual([
      { name: "cpus", role: "*", scalar: 3.5 },
      { name: "cpus", role: "a", scalar: 1 },
      { name: "d", role: "*", set: ["a", "b"] },
      {
        name: "ports",
        role: "*",
        ranges: [
          [1, 10],
          [20, 20],
        ],
      },
    ]);
  });

  it("coalesces adjacent ranges, sorts, rounds scalars to 3 decimals and drops zeros", () => {
    expect(p("ports:[10-20,1-5,6-9];cpus:0.12345;mem:0;gpus:0.0004;p:[];s:{}")).toEqual([
      { name: "cpus", role: "*", scalar: 0.123 },
      { name: "ports", role: "*", ranges: [[1, 20]] },
    ]);
  });

  it("parses the JSON form", () => {
    const json = JSON.stringify([
      { name: "cpus", type: "SCALAR", scalar: { value: 4 }, role: "*" },
      { name: "ports", type: "RANGES", ranges: { range: [{ begin: 1, end: 2 }] } },
      { name: "disks", type: "SET", set: { item: ["b", "a"] }, role: "ads" },
      { name: "cpus", scalar: { value: 0.5 } },
    ]);
    expect(parseResources(`  ${json} `, "web")).toEqual([
      { name: "cpus", role: "*", scalar: 4 },
      { name: "cpus", role: "web", scalar: 0.5 },
      { name: "disks", role: "ads", set: ["a", "b"] },
      { name: "ports", role: "web", ranges: [[1, 2]] },
    ]);
    expect(p("[]")).toEqual([]);
  });
});

describe("parseResources: errors", () => {
  const cases: Array<[string, string]> = [
    [
      "cpus:abc",
      'invalid resource "cpus:abc": expected a non-negative number, a range list like [31000-32000] or a set like {a,b}',
    ],
    ["cpus:-1", 'invalid resource "cpus:-1": negative values are not allowed'],
    ["cpus:NaN", 'invalid resource "cpus:NaN": expected a non-negative number'],
    ["cpus:Infinity", 'invalid resource "cpus:Infinity": expected a non-negative number'],
    [`cpus:${"9".repeat(400)}`, "expected a non-negative number"],
    ["cpus:1e20", 'invalid resource "cpus:1e20": expected a non-negative number'],
    ["cpus:99999999999999", "is larger than the maximum 9007199254740"],
    ["cpus:", 'invalid resource "cpus:": expected a non-negative number'],
    ["cpus", 'invalid resource "cpus": expected name:value or name(role):value'],
    [":4", 'invalid resource ":4": the resource name is empty'],
    ["(ads):4", 'invalid resource "(ads):4": the resource name is empty'],
    ["9cpus:4", 'resource name "9cpus" must start with a letter or "_"'],
    ["cp us:4", 'resource name "cp us" must start'],
    ["cpus(ads:4", 'invalid resource "cpus(ads:4": expected name(role):value'],
    ["cpus(ads)x:4", 'invalid resource "cpus(ads)x:4": expected name(role):value'],
    ["cpus():4", "a role name must not be empty"],
    ["cpus(/a):4", 'role "/a" is invalid: it must not start with "/"'],
    [
      "ports:[5-3]",
      'invalid resource "ports:[5-3]": range 5-3 is ill-ordered: its begin must not exceed its end',
    ],
    ["ports:[1-5,3-8]", 'invalid resource "ports:[1-5,3-8]": ranges 1-5 and 3-8 overlap'],
    ["ports:[1-5,5]", "ranges 1-5 and 5-5 overlap"],
    [
      "ports:[1-5",
      'invalid resource "ports:[1-5": expected a range list like [31000-32000], but there is no closing "]"',
    ],
    ["ports:[a-b]", 'range "a-b" is not like 31000-32000 or a single value like 80'],
    ["ports:[-1-5]", 'range "-1-5" is not like'],
    ["ports:[1.5-2]", 'range "1.5-2" is not like'],
    ["ports:[1-2,]", 'range "" is not like'],
    [`ports:[1-${"9".repeat(20)}]`, "range bounds must be non-negative integers"],
    ["d:{a,,b}", 'invalid resource "d:{a,,b}": a set item is empty; expected a set like {a,b}'],
    ["d:{a,b", 'invalid resource "d:{a,b": expected a set like {a,b}, but there is no closing "}"'],
    ["d:{a{b}", 'set item "a{b" must not'],
    ["cpus:1;cpus:[1-2]", 'invalid resource "cpus:[1-2]": "cpus" for role "*" was already given as a scalar'],
    ["d:{a};d:1", 'invalid resource "d:1": "d" for role "*" was already given as a set'],
    ["[{", 'a spec starting with "[" must be a JSON array of resource objects, but it is not valid JSON'],
    ['[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]', "invalid resource at index 0"],
    ['[{"name":"cpus","type":"SCALAR"}]', 'a SCALAR needs "scalar": {"value": <number>}'],
    ['[{"name":"cpus","type":"FOO","scalar":{"value":1}}]', '"type" must be "SCALAR", "RANGES" or "SET"'],
    ['[{"name":"cpus"}]', '"type" must be "SCALAR", "RANGES" or "SET"'],
    ['[{"type":"SCALAR","scalar":{"value":1}}]', 'expected a string "name"'],
    ['[{"name":"c","role":"a b","scalar":{"value":1}}]', 'role "a b" is invalid'],
    ['[{"name":"p","type":"RANGES","ranges":{"range":[{"begin":5,"end":3}]}}]', "range 5-3 is ill-ordered"],
    [
      '[{"name":"p","ranges":{"range":[{"begin":"1","end":3}]}}]',
      'must be {"begin": <integer>, "end": <integer>}',
    ],
    ['[{"name":"d","type":"SET","set":{"item":[1]}}]', "set items must be strings"],
    ['[{"name":"d","set":{"item":["a,b"]}}]', 'set item "a,b" must not'],
    ['[{"name":"c","scalar":{"value":1},"reservations":[{"role":"a"}]}]', '"reservations" is not supported'],
    ["[1]", "invalid resource at index 0 1: expected an object like"],
    ['[{"name":"c","scalar":{"value":1}},{"name":"c","set":{"item":["a"]}}]', "at index 1"],
  ];
  it.each(cases)("%s", (spec, message) => {
    expect(errorOf(() => parseResources(spec)).message).toContain(message);
  });

  it("rejects specs over 64 KiB and invalid default roles", () => {
    const big = "cpus:1;".repeat(10_000);
    expect(errorOf(() => parseResources(big)).message).toMatch(/70000 bytes, over the 65536-byte limit/);
    expect(errorOf(() => parseResources(`d:{${"é".repeat(33_000)}}`)).message).toMatch(/66004 bytes/);
    expect(errorOf(() => parseResources("cpus:1", "a//b")).message).toBe(
      'invalid default role: role "a//b" is invalid: it must not contain "//"',
    );
  });
});

describe("roles", () => {
  it.each(["*", "a", "a/b", "eng/web-1/x.y", "a.", "..a", "a-", "a/b-"])("accepts %j", (role) => {
    expect(validateRole(role)).toBeUndefined();
    expect(isValidRole(role)).toBe(true);
  });
  it.each([
    ["", "must not be empty"],
    ["/a", 'must not start with "/"'],
    ["a/", 'must not end with "/"'],
    ["a//b", 'must not contain "//"'],
    ["a/./b", 'no path component may be "." or ".."'],
    [".", 'no path component may be "." or ".."'],
    ["..", 'no path component may be "." or ".."'],
    ["a/..", 'no path component may be "." or ".."'],
    ["-a", 'no path component may start with "-"'],
    ["a/-b", 'no path component may start with "-"'],
    ["a b", 'it contains " "'],
    ["a\tb", 'it contains "\\t"'],
    ["a\u0001", 'it contains "\\u0001"'],
    // Mesos's invalid characters: whitespace (\t \n \v \f \r space), backspace and DEL
    ["a\vb", 'it contains "\\u000b"'],
    ["a\bb", 'it contains "\\b"'],
    ["a\u007fb", 'it contains "\\u007f"'],
    ["a\u00a0b", 'it contains "\\u00a0"'],
    ["/", 'must not start with "/"'],
    ["a/*/b", '"*" is only allowed'],
    ["a(b", 'it contains "("'],
    ["a;b", 'it contains ";"'],
    ["a:b", 'it contains ":"'],
    ["a,b", 'it contains ","'],
    ["*/a", '"*" is only allowed as the whole default role "*"'],
    ["a*", '"*" is only allowed'],
  ])("rejects %j", (role, message) => {
    expect(validateRole(role)).toContain(message);
    expect(isValidRole(role)).toBe(false);
  });
});

describe("formatResources", () => {
  it("prints the canonical form", () => {
    expect(formatResources(p("ports:[5,1-3];cpus(b):0.50;cpus:4;disks:{b,a};mem:2048.125"))).toBe(
      "cpus:4;cpus(b):0.5;disks:{a,b};mem:2048.125;ports:[1-3,5-5]",
    );
    expect(formatResources([])).toBe("");
  });

  it.each([
    "cpus:4;mem:2048;ports:[31000-32000];cpus(ads):8;disks:{a,b};gpus:1",
    "cpus:0.001;cpus(a/b):1.1;p(x):[1-1,3-3];s(y):{q,r,s}",
    "ports:[10-20,1-5,6-9];cpus:0.1;cpus:0.2",
  ])("round-trips %s", (spec) => {
    const rs = p(spec);
    expect(parseResources(formatResources(rs))).toEqual(normalize(rs));
  });

  it("round-trips an unnormalized value to its normalized form", () => {
    const raw: Resources = [
      { name: "mem", role: "*", scalar: 1.00049 },
      {
        name: "ports",
        role: "r",
        ranges: [
          [9, 10],
          [1, 3],
          [4, 4],
        ],
      },
      { name: "mem", role: "*", scalar: 0 },
    ];
    expect(parseResources(formatResources(raw))).toEqual(normalize(raw));
    expect(normalize(raw)).toEqual([
      { name: "mem", role: "*", scalar: 1 },
      {
        name: "ports",
        role: "r",
        ranges: [
          [1, 4],
          [9, 10],
        ],
      },
    ]);
  });
});

describe("add / subtract / contains", () => {
  it("adds without touching the inputs", () => {
    const a = p("cpus:1;ports:[1-5];d:{a}");
    const b = p("cpus:0.5;cpus(r):2;ports:[6-8,10];d:{b}");
    const [a0, b0] = [structuredClone(a), structuredClone(b)];
    expect(add(a, b)).toEqual(p("cpus:1.5;cpus(r):2;ports:[1-8,10];d:{a,b}"));
    expect([a, b]).toEqual([a0, b0]);
    expect(add([], a)).toEqual(a);
  });

  it("adds unnormalized inputs", () => {
    const a: Resources = [
      { name: "cpus", role: "*", scalar: 0.1 },
      { name: "cpus", role: "*", scalar: 0.2 },
    ];
    expect(
      add(a, [
        {
          name: "ports",
          role: "*",
          ranges: [
            [3, 4],
            [1, 2],
          ],
        },
      ]),
    ).toEqual(p("cpus:0.3;ports:[1-4]"));
  });

  it("subtracts a port range by splitting it", () => {
    expect(subtract(p("ports:[31000-32000]"), p("ports:[31500-31599]"))).toEqual([
      {
        name: "ports",
        role: "*",
        ranges: [
          [31000, 31499],
          [31600, 32000],
        ],
      },
    ]);
    expect(subtract(p("ports:[1-10,20-30]"), p("ports:[1,5-6,10,25-30]"))).toEqual(
      p("ports:[2-4,7-9,20-24]"),
    );
    expect(subtract(p("ports:[1-10];cpus:1"), p("ports:[1-10]"))).toEqual(p("cpus:1"));
  });

  it("subtracts scalars and sets, per role", () => {
    const a = p("cpus:4;cpus(r):2;mem:100;d:{a,b,c}");
    const before = structuredClone(a);
    expect(subtract(a, p("cpus:1.5;cpus(r):2;d:{b}"))).toEqual(p("cpus:2.5;mem:100;d:{a,c}"));
    expect(a).toEqual(before);
    expect(subtract(a, [])).toEqual(a);
    expect(subtract(a, a)).toEqual([]);
  });

  it.each([
    ["cpus:4", "cpus:5", 'cannot subtract "cpus:5" from "cpus:4": it is not contained'],
    ["cpus:4", "cpus(r):1", 'cannot subtract "cpus(r):1": there is no cpus for role "r"'],
    ["cpus:4", "mem:1", 'cannot subtract "mem:1": there is no mem for role "*"'],
    ["mem:4", "cpus:1", 'cannot subtract "cpus:1": there is no cpus'],
    ["ports:[1-10]", "ports:[5-11]", 'cannot subtract "ports:[5-11]" from "ports:[1-10]"'],
    ["ports:[1-4,6-10]", "ports:[4-6]", "cannot subtract"],
    ["ports:[1-4]", "ports:[20]", "cannot subtract"],
    ["d:{a,c}", "d:{b}", 'cannot subtract "d:{b}" from "d:{a,c}"'],
    ["d:{a}", "d:{a,b}", "cannot subtract"],
  ])("%s minus %s is refused", (a, b, message) => {
    expect(errorOf(() => subtract(p(a), p(b))).message).toContain(message);
    expect(contains(p(a), p(b))).toBe(false);
  });

  it("contains matches name, role and kind", () => {
    const a = p("cpus:4;cpus(r):1;ports:[1-10,20-30];d:{a,b}");
    expect(contains(a, p("cpus:4;cpus(r):0.5;ports:[2-3,20,25-30];d:{b}"))).toBe(true);
    expect(contains(a, [])).toBe(true);
    expect(contains(a, a)).toBe(true);
    expect(contains(a, p("cpus(r):2"))).toBe(false);
    expect(contains(a, p("cpus(other):0.1"))).toBe(false);
    expect(contains(a, p("ports:[10-20]"))).toBe(false);
    expect(contains(a, p("d:{c}"))).toBe(false);
    expect(contains(a, p("gpus:1"))).toBe(false);
    expect(takeScalars(p("cpus:1;mem:10"), p("cpus:1"))).toBe(true);
    expect(takeScalars(p("cpus:1;mem:10"), p("mem:11"))).toBe(false);
  });

  it("keeps scalars fixed-point: 10 x 0.1 == 1", () => {
    let total: Resources = [];
    for (let i = 0; i < 10; i++) total = add(total, p("cpus:0.1"));
    expect(scalar(total, "cpus")).toBe(1);
    expect(total).toEqual(p("cpus:1"));
    for (let i = 0; i < 10; i++) total = subtract(total, p("cpus:0.1"));
    expect(total).toEqual([]);
    expect(scalar(p("cpus:0.7;cpus(a):0.1;cpus(b):0.2"), "cpus")).toBe(1);
  });
});

describe("queries", () => {
  const rs = p("cpus:4;cpus(r):2;mem:1024;mem(r/s):1;ports:[1-10];ports(r):[20-24];d(r):{a}");

  it("scalar, scalarTotals, rangesCount", () => {
    expect(scalar(rs, "cpus")).toBe(6);
    expect(scalar(rs, "cpus", "r")).toBe(2);
    expect(scalar(rs, "cpus", "*")).toBe(4);
    expect(scalar(rs, "gpus")).toBe(0);
    expect(scalarTotals(rs)).toEqual({ cpus: 6, mem: 1025 });
    const odd = scalarTotals(p("constructor:1;__proto__:2;toString:3"));
    expect(Object.entries(odd)).toEqual([
      ["__proto__", 2],
      ["constructor", 1],
      ["toString", 3],
    ]);
    expect(rangesCount(rs, "ports")).toBe(15);
    expect(rangesCount(rs, "cpus")).toBe(0);
  });

  it("filterRole, unreserved, reservedTo, withRole", () => {
    expect(unreserved(rs)).toEqual(p("cpus:4;mem:1024;ports:[1-10]"));
    expect(filterRole(rs, "*")).toEqual(unreserved(rs));
    expect(filterRole(rs, "r")).toEqual(p("cpus(r):2;ports(r):[20-24];d(r):{a}"));
    expect(reservedTo(rs, "r/s")).toEqual(p("mem(r/s):1"));
    expect(reservedTo(rs, DEFAULT_ROLE)).toEqual([]);
    expect(withRole(p("cpus:1;cpus(x):2;ports:[1-2];ports(y):[3]"), "q")).toEqual(
      p("cpus(q):3;ports(q):[1-3]"),
    );
    expect(errorOf(() => withRole(rs, "a//b")).message).toContain('must not contain "//"');
  });

  it("isEmpty, equals, normalize", () => {
    expect(isEmpty([])).toBe(true);
    expect(
      isEmpty([
        { name: "cpus", role: "*", scalar: 0 },
        { name: "d", role: "*", set: [] },
      ]),
    ).toBe(true);
    expect(isEmpty(p("cpus:0.001"))).toBe(false);
    const raw: Resources = [
      {
        name: "ports",
        role: "*",
        ranges: [
          [5, 6],
          [1, 4],
        ],
      },
      { name: "cpus", role: "*", scalar: 1 },
    ];
    expect(equals(raw, p("cpus:1;ports:[1-6]"))).toBe(true);
    expect(equals(raw, p("cpus:1;ports:[1-7]"))).toBe(false);
    expect(equals(raw, p("cpus(a):1;ports:[1-6]"))).toBe(false);
    expect(normalize(raw)).not.toBe(raw);
    expect(raw[0]).toEqual({
      name: "ports",
      role: "*",
      ranges: [
        [5, 6],
        [1, 4],
      ],
    });
    expect(() => normalize([{ name: "cpus", role: "*", scalar: -1 }])).toThrow(InvalidResourceError);
    expect(() => normalize([{ name: "p", role: "*", ranges: [[3, 1]] }])).toThrow(/begin <= end/);
  });
});

describe("minimum allocatable", () => {
  it("parses alternatives", () => {
    expect(parseMinAllocatable("cpus:0.01|mem:32")).toEqual([{ cpus: 0.01 }, { mem: 32 }]);
    expect(parseMinAllocatable(" cpus:1;mem:64 | gpus:1 ")).toEqual([{ cpus: 1, mem: 64 }, { gpus: 1 }]);
    expect(parseMinAllocatable("")).toEqual([]);
    expect(DEFAULT_MIN_ALLOCATABLE).toEqual([{ cpus: 0.01 }, { mem: 32 }]);
    expect(Object.isFrozen(DEFAULT_MIN_ALLOCATABLE)).toBe(true);
  });

  it.each([
    ["cpus:1|", 'an alternative between "|" is empty'],
    ["ports:[1-2]", '"ports:[1-2]" is not allowed; expected scalars without a role'],
    ["cpus(r):1", '"cpus(r):1" is not allowed'],
    ["cpus:0", 'alternative "cpus:0" names no positive amount'],
    ["cpus:x|mem:1", 'invalid minimum allocatable resources "cpus:x|mem:1": invalid resource "cpus:x"'],
  ])("rejects %j", (spec, message) => {
    expect(errorOf(() => parseMinAllocatable(spec)).message).toContain(message);
  });

  it("meets ANY alternative, summing roles", () => {
    const min = DEFAULT_MIN_ALLOCATABLE;
    expect(meetsMinimum(p("cpus:0.01"), min)).toBe(true);
    expect(meetsMinimum(p("mem:32"), min)).toBe(true);
    expect(meetsMinimum(p("cpus:0.005;mem:31"), min)).toBe(false);
    expect(meetsMinimum(p("cpus(a):0.005;cpus:0.005"), min)).toBe(true);
    expect(meetsMinimum(p("ports:[1-100]"), min)).toBe(false);
    const both = parseMinAllocatable("cpus:1;mem:64");
    expect(meetsMinimum(p("cpus:1;mem:63"), both)).toBe(false);
    expect(meetsMinimum(p("cpus:1;mem:64"), both)).toBe(true);
    expect(meetsMinimum(p("ports:[1-2]"), [])).toBe(true);
    expect(meetsMinimum([], [])).toBe(false);
  });
});
