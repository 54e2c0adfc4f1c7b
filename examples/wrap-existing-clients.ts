/**
 * Wrapping ioredis clients you already have. shardis routes through them and
 * leaves them open on quit(): they stay yours.
 *
 *   npx tsx examples/wrap-existing-clients.ts
 */
import IORedis from "ioredis";
import { ShardedRedis } from "../src/index.js";
import { startRedisServers, stopAllRedisServers } from "../src/testing/index.js";

async function main(): Promise<void> {
  const [a, b] = await startRedisServers(2);
  const redisA = new IORedis(a!.port, a!.host);
  const redisB = new IORedis(b!.port, b!.host);
  const client = ShardedRedis.fromGroups({ 1: redisA, 2: redisB });
  try {
    const pipeline = client.pipeline();
    for (let i = 0; i < 100; i++) pipeline.set(`user:${i}`, `name-${i}`);
    pipeline.mget("user:1", "user:2", "user:3");
    const results = await pipeline.exec();
    console.log("last reply of the pipeline:", results?.at(-1));
    console.log("keys on A:", await redisA.dbsize(), "keys on B:", await redisB.dbsize());
  } finally {
    await client.quit(); // redisA and redisB stay open
    await Promise.all([redisA.quit(), redisB.quit()]);
    await stopAllRedisServers();
  }
}

void main();
