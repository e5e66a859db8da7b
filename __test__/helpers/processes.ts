// Processes of a multi-process example (servers, workers, clients), each in its own process
// group so a kill reaches whatever it started. Every process has a kill timer, `stopAll()`
// ends them all for an `after` hook (SIGTERM, then SIGKILL if one does not go), and
// whatever is still alive when the test process exits is killed with it.

import { existsSync, writeFileSync } from "node:fs";
import { setPriority } from "node:os";

import { runScript, type Exit, type ScriptRun } from "../fixtures/module-scripts";

export type { Exit, ScriptRun };

export interface Started extends ScriptRun {
  readonly name: string;
  /** Everything seen so far, for a failure message. */
  describe(): string;
}

const live = new Set<Started>();

process.on("exit", () => {
  for (const p of live) signalGroup(p, "SIGKILL");
});

function signalGroup(p: ScriptRun, signal: NodeJS.Signals): void {
  try {
    process.kill(-p.child.pid!, signal);
  } catch {
    // The group is already gone.
  }
}

/**
 * Spawns `command args` from the repository root. After `killAfterMs` the group is
 * killed whatever it is doing: a process nobody stopped must not outlive its test.
 */
export function start(
  name: string,
  command: string,
  args: string[],
  options: { env?: Record<string, string | undefined>; killAfterMs?: number } = {},
): Started {
  const run = runScript(command, args, options.env ?? {});
  const started: Started = Object.assign(run, {
    name,
    describe: () =>
      `--- ${name} (pid ${run.child.pid}) stdout:\n${run.lines.map((l) => `  [${l.at} ms] ${l.text}`).join("\n")}\n` +
      `--- ${name} stderr:\n${run.stderr()}`,
  });
  live.add(started);
  const timer = setTimeout(() => signalGroup(run, "SIGKILL"), options.killAfterMs ?? 120_000);
  timer.unref();
  void run.exited.then(() => {
    clearTimeout(timer);
    live.delete(started);
  });
  return started;
}

/** `node --import tsx <script> args…`: a TypeScript example script, as its README runs it. */
export function startTs(name: string, script: string, args: string[] = [], prefix: string[] = []): Started {
  const [command, ...rest] = [...prefix, process.execPath, "--import", "tsx", script, ...args];
  return start(name, command!, rest);
}

/** SIGTERM to one process group, SIGKILL after `graceMs` if it is still there; its exit. */
export async function stop(p: Started, graceMs = 5000): Promise<Exit> {
  if (!p.running()) return p.exited;
  signalGroup(p, "SIGTERM");
  const exit = await p.exitWithin(graceMs);
  if (exit !== "still running") return exit;
  signalGroup(p, "SIGKILL");
  return p.exited;
}

/** Stops every process still running: for `after`/`afterEach` hooks. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => stop(p)));
}

/**
 * Gives a process more of the CPU than the rest of the machine (`nice` < 0: higher), as a
 * latency-bound service is given in deployment. Under Linux autogroups every process
 * started here leads a session of its own, whose group's weight is what counts against
 * other sessions, so the group's nice is set too. Returns why it could not (not root),
 * or null.
 */
export function prioritize(p: Started, nice: number): string | null {
  const pid = p.child.pid!;
  try {
    setPriority(pid, nice);
    const autogroup = `/proc/${pid}/autogroup`;
    if (existsSync(autogroup)) writeFileSync(autogroup, String(nice));
    return null;
  } catch (err) {
    return `could not give ${p.name} nice ${nice}: ${(err as Error).message}`;
  }
}
