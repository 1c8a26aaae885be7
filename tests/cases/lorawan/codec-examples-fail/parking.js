// A parking sensor codec whose second example is deliberately wrong (expected.out lists the failure).
function decodeUplink(input) {
  return { data: { occupied: input.bytes[0] === 1, battery_mv: (input.bytes[1] << 8) | input.bytes[2] } };
}
