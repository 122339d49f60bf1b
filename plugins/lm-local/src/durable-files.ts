/**
 * Files that survive a crash: written whole and flushed to the device before they count. One
 * place for the adapter folders, checkpoints and reports of training.
 */
import * as fs from "node:fs";

/** Writes the whole file and flushes it to the device. */
export function writeSynced(file: string, data: string | Uint8Array): void {
  const fd = fs.openSync(file, "w");
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let written = 0;
    while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Writes through a temporary name, flushed, then renamed: a reader sees the old file or the new one, never a part. */
export function writeFileDurably(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeSynced(tmp, data);
  fs.renameSync(tmp, file);
}

/** Flushes a directory's entries (a rename into it); a no-op where directories cannot be synced. */
export function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename is still atomic.
  }
}
