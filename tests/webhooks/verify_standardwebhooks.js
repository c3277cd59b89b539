// Verify webhook deliveries with npm's `standardwebhooks` (tests/node), as a Node receiver would.
// Reads {"secret": "whsec_...", "deliveries": [{"body": "...", "headers": {...}}]} on stdin and
// prints one JSON line: {"verified": [payload, ...]} or {"error": "..."}.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const { secret, deliveries } = JSON.parse(input);
  const webhook = new Webhook(secret);
  try {
    const verified = deliveries.map(({ body, headers }) => webhook.verify(body, headers));
    console.log(JSON.stringify({ verified }));
  } catch (error) {
    console.log(JSON.stringify({ error: String(error) }));
  }
});
