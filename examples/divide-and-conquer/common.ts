// What the TypeScript processes of the pipeline share: command-line flags (`--name value`,
// endpoints included, so the same scripts run on one machine with the defaults and across
// hosts with addresses given by hand), stopping on a signal, and the worker's loop.

import { setTimeout as sleep } from "node:timers/promises";

/** The value after `--name` on the command line, else `fallback`. */
export function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const at = args.indexOf(`--${name}`);
  if (at === -1) return fallback;
  const value = args[at + 1];
  if (value === undefined) throw new Error(`--${name} needs a value`);
  return value;
}

/** As flag(), for a whole number. */
export function intFlag(name: string, fallback: number): number {
  const value = Number(flag(name, String(fallback)));
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} must be a whole number`);
  return value;
}

let stopping = false;

/**
 * Runs `stop` on SIGINT/SIGTERM, once. A worker holds its sockets open for ever, so
 * closing them on a signal is what lets it exit cleanly rather than by the default kill.
 */
export function onStop(stop: () => Promise<void>): void {
  const handler = () => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

/**
 * The worker's loop, the same whichever ZeroMQ carries it: take [id, ms], sleep ms (the
 * "work"), report [result, id, name]. Ends when `tasks` is closed; an error exits 1,
 * except once stopping, when a send on the closed sink is expected.
 */
export function work(name: string, tasks: AsyncIterable<Buffer[]>, sink: { send(message: string[]): Promise<void> }): void {
  const loop = async () => {
    for await (const [id, ms] of tasks) {
      await sleep(Number(ms));
      console.log(`${name} task ${id} ${ms} ms`);
      await sink.send(["result", id!.toString(), name]);
    }
  };
  loop().catch((err) => {
    if (stopping) return;
    console.error(err);
    process.exit(1);
  });
}
