// The peer of scripts/bench/upload_vs_tusd.py: a plain @tus/server with its FileStore,
// configured as its README shows and nothing more (no hooks, no checksum, no auth).
//
//   node server.mjs <port> <directory>
//
// Listens on 127.0.0.1:<port>, path /files, stores uploads under <directory>, and prints one
// line "ready http://127.0.0.1:<port>/files" to stdout once it accepts connections.

import { mkdirSync } from "node:fs";
import { FileStore } from "@tus/file-store";
import { Server } from "@tus/server";

const [portArg, directory] = process.argv.slice(2);
const port = Number.parseInt(portArg ?? "", 10);
if (!Number.isInteger(port) || port <= 0 || !directory) {
  console.error("usage: node server.mjs <port> <directory>");
  process.exit(2);
}
mkdirSync(directory, { recursive: true });

const server = new Server({
  path: "/files",
  datastore: new FileStore({ directory }),
});

const listener = server.listen({ host: "127.0.0.1", port }, () => {
  console.log(`ready http://127.0.0.1:${port}/files`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    listener.close(() => process.exit(0));
    listener.closeAllConnections?.();
  });
}
