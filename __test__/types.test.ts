// The public types, as a TypeScript user meets them: tsc accepts the right usages and
// refuses each wrong one, as CommonJS and as an ES module, against the package's own
// index.d.ts.

import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, it } from "node:test";

import { REPO, run } from "./fixtures/release-tarballs";

describe("TypeScript types", () => {
  const tsc = (args: string[]) =>
    run("npx", ["--no-install", "tsc", ...args], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 }).then(
      ({ stdout }) => ({ ok: true, out: stdout }),
      (err: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${err.stdout ?? ""}${err.stderr ?? ""}` }),
    );

  it("checks the types fixture as part of the project (tsc -p tsconfig.json)", async () => {
    const checked = await tsc(["-p", "tsconfig.json", "--noEmit", "--listFiles"]);
    assert.ok(checked.ok, checked.out);
    assert.match(checked.out, /\/__test__\/fixtures\/types-check\.ts$/m, "the fixture is part of the project");
  });

  it("accepts the public API and refuses each wrong usage, as CommonJS and as an ES module", async () => {
    // Every `@ts-expect-error` in the fixtures must meet an error, or tsc fails (TS2578).
    const checked = await tsc(["-p", "__test__/fixtures/types-tsconfig.json", "--noEmit", "--listFiles"]);
    assert.ok(checked.ok, checked.out);
    assert.match(checked.out, /\/types-check\.ts$/m);
    assert.match(checked.out, /\/types-esm\.mts$/m);
    assert.ok(checked.out.split("\n").includes(path.join(REPO, "index.d.ts")), "zeropipe resolves to the package's own index.d.ts");
  });
});
