import { MemoryStore } from "./memory_store.ts";
import { runStoreSuite } from "./_store_suite.ts";

runStoreSuite(
  "MemoryStore",
  () => Promise.resolve({ store: new MemoryStore(), dispose: () => Promise.resolve() }),
);
