// Wire compatibility of our Push/Pull with libzmq 4.3.5 (through pyzmq), over tcp and ipc.
// The cases are shared with interop-zeromqjs.test.ts; see helpers/interop-suite.ts.

import { interopSuite } from "./helpers/interop-suite";

interopSuite("pyzmq");
