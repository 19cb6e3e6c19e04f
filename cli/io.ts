/**
 * Where the CLI writes: injectable so tests capture output without a subprocess.
 *
 * @module
 */

/** The CLI's output streams. */
export interface CliIo {
  /** Writes a line to standard output. */
  out(line: string): void;
  /** Writes a line to standard error. */
  err(line: string): void;
}

/** The process's real stdout and stderr. */
export const processIo: CliIo = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};
