// The interop suite (helpers/interop-suite.ts) against libzmq 4.3.5 (through pyzmq) with every connection
// over CURVE: each PULL a CURVE server, each PUSH a client, whichever side binds; our keys
// as 32-byte Buffers, the peer's as Z85. The CURVE-only cases are interop-curve.test.ts.

import { interopSuite } from "./helpers/interop-suite";

interopSuite("pyzmq", { curve: true });
