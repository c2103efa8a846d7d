// Upload one file with the official tus-js-client, aborting it (the connection drops mid-chunk)
// once at each given byte offset and resuming from the server's offset each time, as a phone
// losing signal would.
//   node upload.mjs <endpoint> <file> <token> <metadata-json> <chunk-size> <offsets-csv>
// Prints one JSON line: {"ok": true, "url": ..., "resumes": n} or {"ok": false, "error": ...}.
import fs from "node:fs";
import * as tus from "tus-js-client";

const [endpoint, file, token, metadataJson, chunkSize, offsetsCsv] = process.argv.slice(2);
const data = fs.readFileSync(file);
const stops = (offsetsCsv || "").split(",").filter(Boolean).map(Number);
let url = null;

function attempt(stopAt) {
  return new Promise((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint,
      uploadUrl: url,
      chunkSize: Number(chunkSize),
      retryDelays: [0, 200, 500],
      headers: { Authorization: `Bearer ${token}` },
      metadata: JSON.parse(metadataJson),
      storeFingerprintForResuming: false,
      onUploadUrlAvailable() {
        url = upload.url;
      },
      onProgress(sent) {
        if (stopAt !== undefined && sent >= stopAt) {
          upload.abort().then(() => resolve("stopped"), reject);
        }
      },
      onError: reject,
      onSuccess() {
        resolve("done");
      },
    });
    upload.start();
  });
}

try {
  let outcome = "stopped";
  let resumes = 0;
  for (const stop of stops) {
    outcome = await attempt(stop);
    if (outcome === "done") break;
    resumes += 1;
  }
  if (outcome !== "done") outcome = await attempt(undefined);
  console.log(JSON.stringify({ ok: outcome === "done", url, resumes }));
} catch (error) {
  console.log(JSON.stringify({ ok: false, url, error: String((error && error.message) || error) }));
  process.exitCode = 1;
}
