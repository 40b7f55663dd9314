/**
 * The task's own variables in the words of a command run without a shell (`argv`, as a
 * Marathon app's `args` and several words of `corral run` are): `$NAME` and `${NAME}`, where
 * NAME is one of the variables Corral sets for the task (`taskVariables`: PORT0…, PORT, PORTS,
 * HOST, CORRAL_TASK_ID, …), become its value. Nothing else is touched: another `$X` (HOME, an
 * unset PORT5, `$1`), `$$`, `\`, quotes, globs and `$(…)` stay exactly as written, so a word
 * means what it says except for the task's variables. There is no escape; a word that must keep
 * `$PORT0` as text goes through a shell (a `value`, where the shell's own quoting applies).
 *
 * As in the shell, a bare name is as long as it can be: `$PORT0x` names PORT0x (not a task
 * variable, so left as is); `${PORT0}x` is PORT0 followed by `x`.
 */
const REF = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

/** `word` with each `$NAME` / `${NAME}` naming one of `vars` replaced by its value. */
export function expandTaskVars(word: string, vars: Readonly<Record<string, string>>): string {
  return word.replace(REF, (ref: string, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? "";
    const value = Object.hasOwn(vars, name) ? vars[name] : undefined;
    return value ?? ref;
  });
}
