// Sends enhanced-mode messages (MSH-15 AL, MSH-16 AL) with @medplum/hl7's Hl7Client and
// waits, with sendAndWait's ReturnAckCategory.APPLICATION, for each one's application ACK.
// The connection runs in enhanced mode, so the client answers each ACK it reads with a CA,
// as HL7 v2 chapter 2 lets a receiver of an application ACK do.
// Usage: node medplum_app_ack.cjs <node_modules folder> <port> <control id>...
// Prints one JSON line per message: {"sent": ..., "msa1": ..., "msa2": ..., "msh15": ...}.
const path = require("path");
const [modules, port, ...controlIds] = process.argv.slice(2);
const { Hl7Client, ReturnAckCategory } = require(path.join(modules, "@medplum/hl7"));
const { Hl7Message } = require(path.join(modules, "@medplum/core"));

async function main() {
  const client = new Hl7Client({ host: "127.0.0.1", port: Number(port) });
  const connection = await client.connect();
  connection.setEnhancedMode(true);
  try {
    for (const id of controlIds) {
      const message = Hl7Message.parse(
        `MSH|^~\\&|HIS|HOSP|AIG|FAC|20260101120000||ADT^A01^ADT_A01|${id}|P|2.5|||AL|AL\r` +
        "EVN|A01|20260101120000\r" +
        `PID|1||${id}^^^HOSP^PI||DOE^JOHN||19700101|M\r` +
        "PV1|1|I\r");
      const answer = await client.sendAndWait(message, {
        returnAck: ReturnAckCategory.APPLICATION, timeoutMs: 15000 });
      const msa = answer.getSegment("MSA");
      const msh = answer.getSegment("MSH");
      console.log(JSON.stringify({
        sent: id, msa1: msa.getField(1).toString(), msa2: msa.getField(2).toString(),
        msh15: msh.getField(15).toString() }));
    }
  } finally {
    await client.close();
  }
}

main().catch((error) => {
  console.error(error && error.stack ? error.stack : JSON.stringify(error));
  process.exit(1);
});
