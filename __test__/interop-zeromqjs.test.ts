// Wire compatibility of our Push/Pull with zeromq.js 6 (libzmq 4.3.5), over tcp and ipc.
// The cases are shared with interop-pyzmq.test.ts; see helpers/interop-suite.ts.

import { interopSuite } from "./helpers/interop-suite";

interopSuite("zeromqjs");
