// The ten-job demo of `npm run demo`: the article's usage on zeropipe's module API, plus
// the one thing a script that should end by itself needs — close() after the last job.
import { close, pull, push } from "zeropipe";

let received = 0;
const worker = pull(async ([job]) => {
    console.log(`Received Job ${job}`);
    if (++received === 10) await close();
});
worker.catch(console.error);

async function main() {
    for (let i = 1; i <= 10; i++) {
        console.log("push", i);
        await push(`ok ${i}`);
    }
}

main().catch(console.error);
