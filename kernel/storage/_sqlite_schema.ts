/**
 * The SQLite schema, as an ordered table of migrations. `meta` holds `schema_version`; opening
 * a database applies, in one transaction, every migration above it. A database newer than
 * this code is refused rather than guessed at.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { StorageCode, StorageError } from "./errors.ts";

/** One schema step: the SQL that takes the database from `version - 1` to `version`. */
interface Migration {
  version: number;
  sql: string;
}

/** Every migration in order. Append only: a released step is never edited. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `CREATE TABLE kv (
      ns TEXT NOT NULL,
      key TEXT NOT NULL,
      value BLOB NOT NULL,
      PRIMARY KEY (ns, key)
    ) WITHOUT ROWID`,
  },
];

/** The schema version this code writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1].version;

/** Brings `db` to {@link SCHEMA_VERSION} in one `BEGIN IMMEDIATE` transaction. */
export function migrate(db: DatabaseSync, path: string): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    db.exec(
      "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    );
    const row = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").get();
    const current = row === undefined ? 0 : Number(row.value);
    if (!Number.isSafeInteger(current) || current < 0 || current > SCHEMA_VERSION) {
      throw new StorageError(
        StorageCode.STORE_BACKEND,
        `Cannot open store "${path}": its schema version "${row?.value}" is not one this Astrid knows (up to ${SCHEMA_VERSION}): upgrade Astrid or restore a matching backup`,
        { data: { backend: "sqlite", op: "open" } },
      );
    }
    for (const step of MIGRATIONS) if (step.version > current) db.exec(step.sql);
    if (current !== SCHEMA_VERSION) {
      db.prepare(
        "INSERT INTO meta (name, value) VALUES ('schema_version', ?) " +
          "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
      ).run(String(SCHEMA_VERSION));
    }
    db.exec("COMMIT");
  } catch (err) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw err;
  }
}
