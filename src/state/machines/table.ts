import type { AnyStateMachine, EventFromLogic, StateValueFrom } from "xstate";

/**
 * A flat machine compiled to a dense transition table, for folding long event logs without paying
 * XState's per-transition cost. Built from the machine's static config by `compileTable`.
 */
export interface TransitionTable<S extends string, E extends string> {
  states: readonly S[];
  events: readonly E[];
  stateIndex: ReadonlyMap<S, number>;
  eventIndex: ReadonlyMap<E, number>;
  /** next[stateIdx * events.length + eventIdx] = next state index, or -1 when the event is not accepted */
  next: Int16Array;
  /** O(1): the next state, or undefined when the machine does not accept the event in that state */
  step(state: S, event: E): S | undefined;
}

/** The state names of a flat (non-nested) machine. */
export type MachineStateOf<M extends AnyStateMachine> = Extract<StateValueFrom<M>, string>;
/** The event type names a machine declares. */
export type MachineEventOf<M extends AnyStateMachine> = EventFromLogic<M>["type"];

// The subset of XState's raw config that compileTable understands; anything else is refused so
// that a compiled table is never silently different from the machine.
type RawTransition = string | { target?: string | readonly string[]; guard?: unknown; actions?: unknown };
type RawOn = Record<string, RawTransition | readonly RawTransition[] | undefined>;
interface RawState {
  type?: string;
  on?: RawOn;
  states?: unknown;
  always?: unknown;
  after?: unknown;
  invoke?: unknown;
}
interface RawMachineConfig {
  id?: string;
  on?: RawOn;
  states?: Record<string, RawState>;
}

/** What a transition entry does: go to a state, stay put (targetless with actions), or nothing. */
type Resolved = { kind: "target"; state: string } | { kind: "stay" } | { kind: "forbidden" };

function hasActions(actions: unknown): boolean {
  return actions !== undefined && (!Array.isArray(actions) || actions.length > 0);
}

/**
 * Compile `machine` — a flat machine whose states have only `on` maps of unguarded transitions —
 * into a `TransitionTable`, reading `machine.config` only (XState's transition function is never
 * called). `events` fixes the table's columns, so events no state accepts still get a column of
 * -1; without it the columns are the events that appear in the config, in first-seen order.
 */
export function compileTable<M extends AnyStateMachine>(
  machine: M,
  events?: readonly MachineEventOf<M>[],
): TransitionTable<MachineStateOf<M>, MachineEventOf<M>> {
  type S = MachineStateOf<M>;
  type E = MachineEventOf<M>;
  const config = machine.config as RawMachineConfig;
  const id = config.id ?? machine.id;
  const fail = (msg: string): never => {
    throw new Error(`compileTable(${id}): ${msg}`);
  };
  const rawStates = config.states ?? fail("machine has no states");
  const states = Object.keys(rawStates);
  if (states.length === 0 || states.length > 0x7fff) fail(`unsupported state count ${states.length}`);
  const stateIndex = new Map<string, number>(states.map((s, i) => [s, i]));

  // `from` is the node whose `on` map holds the entry: a top-level state name, or null for the root.
  const resolveTarget = (target: string, from: string | null): string => {
    let name: string | undefined;
    if (target.startsWith(`#${id}.`)) name = target.slice(id.length + 2);
    else if (target.startsWith(".")) name = from === null ? target.slice(1) : undefined;
    else if (!target.startsWith("#")) name = from === null ? undefined : target;
    if (name === undefined || !stateIndex.has(name)) {
      return fail(`cannot resolve target "${target}" from ${from ?? "the root"}`);
    }
    return name;
  };
  const resolve = (entry: RawOn[string], from: string | null, event: string): Resolved => {
    const list: readonly RawTransition[] = entry === undefined ? [] : Array.isArray(entry) ? entry : [entry];
    const first = list[0];
    if (first === undefined) return { kind: "forbidden" };
    if (typeof first === "string") return { kind: "target", state: resolveTarget(first, from) };
    if (first.guard !== undefined) fail(`guarded transition on ${event} cannot be compiled`);
    const targets =
      first.target === undefined ? [] : typeof first.target === "string" ? [first.target] : first.target;
    if (targets.length > 1) fail(`multi-target transition on ${event} cannot be compiled`);
    const target = targets[0];
    if (target !== undefined) return { kind: "target", state: resolveTarget(target, from) };
    return hasActions(first.actions) ? { kind: "stay" } : { kind: "forbidden" };
  };

  // Columns: the declared alphabet, else every event named in the config.
  const seen = new Set<string>(Object.keys(config.on ?? {}));
  for (const s of states) for (const e of Object.keys(rawStates[s]?.on ?? {})) seen.add(e);
  if (seen.has("*")) fail("wildcard transitions cannot be compiled");
  const columns: string[] = events ? [...events] : [...seen];
  const eventIndex = new Map<string, number>(columns.map((e, i) => [e, i]));
  if (eventIndex.size !== columns.length) fail("duplicate event in the declared events");
  for (const e of seen) if (!eventIndex.has(e)) fail(`event ${e} is handled but not declared`);

  const width = columns.length;
  const next = new Int16Array(states.length * width).fill(-1);
  states.forEach((s, si) => {
    const raw = rawStates[s] ?? {};
    for (const key of ["states", "always", "after", "invoke"] as const) {
      if (raw[key] !== undefined) fail(`state ${s} uses "${key}", which cannot be compiled`);
    }
    if (raw.type === "final") {
      if (raw.on !== undefined) fail(`final state ${s} has transitions`);
      return; // a final state accepts nothing
    }
    if (raw.type !== undefined && raw.type !== "atomic") fail(`state ${s} has type ${raw.type}`);
    columns.forEach((e, ei) => {
      // The state's own entry wins (even a forbidden one); otherwise the root's `on` applies.
      const own = raw.on !== undefined && Object.hasOwn(raw.on, e);
      const r = own ? resolve(raw.on?.[e], s, e) : resolve(config.on?.[e], null, e);
      if (r.kind === "target") next[si * width + ei] = stateIndex.get(r.state) ?? -1;
      else if (r.kind === "stay") next[si * width + ei] = si;
    });
  });

  // The config's keys are the machine's state names, and the columns its event types.
  const frozenStates = Object.freeze(states) as readonly S[];
  return {
    states: frozenStates,
    events: Object.freeze(columns),
    stateIndex,
    eventIndex,
    next,
    step(state: S, event: E): S | undefined {
      const si = stateIndex.get(state);
      const ei = eventIndex.get(event);
      if (si === undefined || ei === undefined) return undefined;
      const n = next[si * width + ei]!;
      return n < 0 ? undefined : frozenStates[n];
    },
  };
}
