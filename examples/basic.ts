/**
 * Three local groups, one client: keys spread by slot, MGET/MSET across
 * groups, a transaction on one hash tag.
 *
 *   npx tsx examples/basic.ts
 */
import { ShardedRedis, slotOf } from "../src/index.js";
import { startRedisServers, stopAllRedisServers } from "../src/testing/index.js";

async function main(): Promise<void> {
  const servers = await startRedisServers(3);
  const client = new ShardedRedis({
    groups: servers.map((server, i) => ({ id: i + 1, master: server.address })),
    redisOptions: { keyPrefix: "example:" },
  });
  try {
    await client.set("greeting", "hello");
    console.log("greeting =", await client.get("greeting"), `(slot ${slotOf("example:greeting")})`);

    await client.mset({ a: "1", b: "2", c: "3" }); // split per group, sent in parallel
    console.log("mget a b c missing =", await client.mget("a", "b", "c", "missing"));

    // Keys that must change together share a hash tag, so they share a slot.
    const results = await client.multi().incr("{cart:42}:items").sadd("{cart:42}:skus", "sku-1").exec();
    console.log("multi =", results);

    for (const group of client.groups()) console.log(`group ${group.id} (${group.address}) holds ${await group.redis.dbsize()} keys`);
  } finally {
    await client.quit();
    await stopAllRedisServers();
  }
}

void main();
