// Water meter codec in The Things Stack device-repository format.
// Uplink port 1: u32 total volume (litres, big-endian), u16 flow (l/h), u8 flags
// (bit 0 leak, bit 1 reverse flow), u8 battery (%). Downlink port 10: reporting interval.

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 1) {
    return { errors: ["unknown FPort " + input.fPort] };
  }
  if (b.length < 8) {
    return { errors: ["payload of " + b.length + " bytes is too short"] };
  }
  var volume = ((b[0] << 24) >>> 0) + (b[1] << 16) + (b[2] << 8) + b[3];
  var warnings = [];
  var battery = b[7];
  if (battery < 10) warnings.push("battery low");
  return {
    data: {
      volume: volume / 1000,
      flow: ((b[4] << 8) | b[5]) / 1000,
      leak: (b[6] & 1) === 1,
      reverse_flow: (b[6] & 2) === 2,
      battery: battery
    },
    warnings: warnings
  };
}

function encodeDownlink(input) {
  var minutes = input.data.report_interval;
  if (typeof minutes !== "number" || minutes < 1 || minutes > 1440) {
    return { errors: ["report_interval must be 1..1440 minutes"] };
  }
  return { fPort: 10, bytes: [(minutes >> 8) & 0xff, minutes & 0xff] };
}
