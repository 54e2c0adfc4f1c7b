/**
 * One client process of benchmarks/ack-latency.ts: follows the cluster and
 * does nothing else. Prints "ready" once it has a table; exits when its stdin closes.
 */
import { ShardedRedis } from "../dist/cjs/index.js";

const [url, cluster] = process.argv.slice(2);
const client = new ShardedRedis({ coordinator: url!, cluster: cluster! });
client.on("error", (error) => process.stderr.write(`follower: ${error.message}\n`));
client.connect().then(() => process.stdout.write("ready\n"));
process.stdin.on("end", () => void client.quit().then(() => process.exit(0)));
process.stdin.resume();
