// One debug namespace for the whole harness: enable with DEBUG=shardis:testing.
import createDebug from 'debug';

export const log = createDebug('shardis:testing');
