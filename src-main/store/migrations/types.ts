/** One schema step: `sql` runs inside a transaction together with `PRAGMA user_version = version`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}
